use std::net::IpAddr;

use super::*;
use crate::event::{Allocate, Command, Configure, Event, Gc, Outcome, Release, ReleaseIp};
use crate::limits::Limits;
use crate::owner::{Attachment, Owner};
use crate::range::{Range, RangeSpec};
use crate::snapshot;
use crate::state::State;
use crate::test_support::{att, range};
use crate::{FieldProblem, IpamError};

fn range_with(s: &str, start: Option<&str>, end: Option<&str>, exclude: &[&str]) -> Range {
    let spec = RangeSpec {
        range: s.into(),
        range_start: start.map(String::from),
        range_end: end.map(String::from),
        exclude: exclude.iter().map(|e| e.to_string()).collect(),
    };
    Range::parse(&spec, "ipam").unwrap().0
}

fn alloc_cmd(network: &str, ranges: &[Range], a: Attachment) -> Command {
    Command::Allocate(Allocate {
        network: network.into(),
        ranges: ranges.to_vec(),
        statics: vec![],
        overlapping: true,
        attachment: a,
    })
}

fn run(state: &mut State, cmd: Command) -> Reply {
    apply(state, &Event::new(cmd, 1_000))
}

fn ips(reply: Reply) -> Vec<String> {
    match reply {
        Ok(Outcome::Allocated(l)) | Ok(Outcome::Released(l)) => l.iter().map(|l| l.ip.to_string()).collect(),
        Ok(other) => panic!("not leases: {other:?}"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn add(state: &mut State, r: &Range, cid: &str) -> String {
    ips(run(state, alloc_cmd("", std::slice::from_ref(r), att(cid)))).remove(0)
}

fn del(state: &mut State, cid: &str) -> Vec<String> {
    ips(run(state, Command::Release(Release { network: "".into(), owner: Owner::new(cid, "eth0"), only_node: None })))
}

#[test]
fn lowest_free_first_and_reuse_after_release() {
    let mut s = State::default();
    let r = range("192.168.2.0/24");
    assert_eq!(add(&mut s, &r, "a"), "192.168.2.1");
    assert_eq!(add(&mut s, &r, "b"), "192.168.2.2");
    assert_eq!(add(&mut s, &r, "c"), "192.168.2.3");
    assert_eq!(del(&mut s, "b"), ["192.168.2.2"]);
    assert_eq!(add(&mut s, &r, "d"), "192.168.2.2");
    assert_eq!(del(&mut s, "nobody"), Vec::<String>::new(), "unknown owner is success");
}

#[test]
fn repeated_add_returns_the_same_address() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    assert_eq!(add(&mut s, &r, "a"), "10.0.0.1");
    assert_eq!(add(&mut s, &r, "a"), "10.0.0.1");
    assert_eq!(s.allocation_count(), 1);
}

#[test]
fn same_pod_new_sandbox_keeps_its_address_and_late_del_does_not_free_it() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    let first = att("sandbox-1").with_pod("ns", "web-0");
    assert_eq!(ips(run(&mut s, alloc_cmd("", std::slice::from_ref(&r), first))), ["10.0.0.1"]);
    let second = att("sandbox-2").with_pod("ns", "web-0");
    assert_eq!(ips(run(&mut s, alloc_cmd("", std::slice::from_ref(&r), second))), ["10.0.0.1"]);
    assert_eq!(del(&mut s, "sandbox-1"), Vec::<String>::new(), "the old sandbox no longer owns it");
    let held = s.who_has(&"10.0.0.1".parse().unwrap());
    assert_eq!(held[0].attachment.owner.container_id, "sandbox-2");
    assert_eq!(s.history().last().unwrap().action, crate::HistoryAction::Reowned);
    assert_eq!(del(&mut s, "sandbox-2"), ["10.0.0.1"]);
}

#[test]
fn bounds_excludes_and_dot_zero_are_respected() {
    let mut s = State::default();
    let r = range_with("10.0.0.0/16", Some("10.0.0.250"), Some("10.0.1.3"), &["10.0.0.252/31", "10.0.1.1"]);
    let got: Vec<String> = (0..6).map(|i| add(&mut s, &r, &format!("c{i}"))).collect();
    assert_eq!(got, ["10.0.0.250", "10.0.0.251", "10.0.0.254", "10.0.0.255", "10.0.1.2", "10.0.1.3"]);
    let err = run(&mut s, alloc_cmd("", std::slice::from_ref(&r), att("c6"))).unwrap_err();
    assert_eq!(err, IpamError::Exhausted { network: "".into(), range: "10.0.0.0/16[10.0.0.250-10.0.1.3]".into() });
}

#[test]
fn ipv6_uses_the_whole_slash_64() {
    // whereabouts can only reach the first /65 of a /64; the upper half must work too.
    let mut s = State::default();
    let r = range_with("2001:db8::/64", Some("2001:db8::ffff:ffff:ffff:fffd"), None, &[]);
    assert_eq!(add(&mut s, &r, "a"), "2001:db8::ffff:ffff:ffff:fffd");
    assert_eq!(add(&mut s, &r, "b"), "2001:db8::ffff:ffff:ffff:fffe");
    assert!(run(&mut s, alloc_cmd("", &[r], att("c"))).is_err(), "the last address is never given");
}

#[test]
fn ip_ranges_are_all_or_nothing() {
    let mut s = State::default();
    let v4 = range("10.0.0.0/24");
    let v6 = range("2001:db8::/126"); // 2 usable
    let both = [v4.clone(), v6.clone()];
    assert_eq!(ips(run(&mut s, alloc_cmd("", &both, att("a")))), ["10.0.0.1", "2001:db8::1"]);
    assert_eq!(ips(run(&mut s, alloc_cmd("", &both, att("b")))), ["10.0.0.2", "2001:db8::2"]);
    let before = s.pool_usage();
    assert!(matches!(run(&mut s, alloc_cmd("", &both, att("c"))), Err(IpamError::Exhausted { .. })));
    assert_eq!(s.pool_usage(), before, "nothing reserved by the failed request");
    assert_eq!(del(&mut s, "a"), ["10.0.0.1", "2001:db8::1"]);
}

#[test]
fn failed_requests_leave_no_empty_pools_behind() {
    let mut s = State::default();
    let tiny = range("10.9.0.0/30");
    add(&mut s, &tiny, "a");
    add(&mut s, &tiny, "b");
    let fresh = range("10.8.0.0/24");
    assert!(run(&mut s, alloc_cmd("", &[fresh, tiny], att("c"))).is_err());
    assert_eq!(s.pool_usage().len(), 1);
}

#[test]
fn overlapping_ranges_of_one_network_never_share_an_address() {
    let mut s = State::default();
    let wide = range("10.0.0.0/24");
    let narrow = range("10.0.0.0/28");
    let a = ips(run(&mut s, alloc_cmd("n", std::slice::from_ref(&wide), att("a"))));
    let b = ips(run(&mut s, alloc_cmd("n", std::slice::from_ref(&narrow), att("b"))));
    assert_eq!((a[0].as_str(), b[0].as_str()), ("10.0.0.1", "10.0.0.2"));
    // A pool created after the other already holds addresses sees them too.
    let mid = range("10.0.0.0/26");
    assert_eq!(ips(run(&mut s, alloc_cmd("n", &[mid], att("c")))), ["10.0.0.3"]);
    // Released in one range: free again for all.
    ips(run(
        &mut s,
        Command::Release(Release { network: "n".into(), owner: Owner::new("a", "eth0"), only_node: None }),
    ));
    assert_eq!(ips(run(&mut s, alloc_cmd("n", std::slice::from_ref(&narrow), att("d")))), ["10.0.0.1"]);
    // Overlap disabled: ranges are independent.
    let mut cmd = alloc_cmd("n", std::slice::from_ref(&wide), att("e"));
    if let Command::Allocate(a) = &mut cmd {
        a.overlapping = false;
    }
    assert_eq!(ips(run(&mut s, cmd)), ["10.0.0.1"], "only the wide pool's own holdings count (none)");
}

#[test]
fn network_names_keep_pools_apart_and_unnamed_configs_share_one() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    let mut other_cni = att("x");
    other_cni.cni_network = "other".into();
    assert_eq!(ips(run(&mut s, alloc_cmd("", std::slice::from_ref(&r), att("a")))), ["10.0.0.1"]);
    assert_eq!(ips(run(&mut s, alloc_cmd("", std::slice::from_ref(&r), other_cni))), ["10.0.0.2"], "same pool");
    assert_eq!(ips(run(&mut s, alloc_cmd("tenant-b", std::slice::from_ref(&r), att("b")))), ["10.0.0.1"], "own pool");
    assert_eq!(s.pool_usage().len(), 2);
}

#[test]
fn static_addresses_are_unique_cluster_wide() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    let cmd = |cid: &str, statics: &[&str]| {
        Command::Allocate(Allocate {
            network: "n".into(),
            ranges: vec![r.clone()],
            statics: statics.iter().map(|x| x.parse().unwrap()).collect(),
            overlapping: true,
            attachment: att(cid),
        })
    };
    assert_eq!(ips(run(&mut s, cmd("a", &["10.0.0.50/24"]))), ["10.0.0.50"], "satisfies the range");
    assert_eq!(ips(run(&mut s, cmd("a", &["10.0.0.50/24"]))), ["10.0.0.50"], "idempotent");
    assert!(matches!(run(&mut s, cmd("b", &["10.0.0.50/24"])), Err(IpamError::AddressTaken { .. })));
    assert_eq!(ips(run(&mut s, cmd("c", &["192.168.5.5/24"]))), ["10.0.0.1", "192.168.5.5"], "outside: extra");
    assert_eq!(ips(run(&mut s, cmd("d", &[]))), ["10.0.0.2"]);
    let err = run(&mut s, cmd("e", &["10.0.0.1/24"])).unwrap_err();
    assert_eq!(err.to_string(), "address 10.0.0.1 is already held by c/eth0 (network \"n\")");
}

#[test]
fn release_by_ip_is_guarded_by_the_owner() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    add(&mut s, &r, "a");
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let wrong = Command::ReleaseIp(ReleaseIp { network: "".into(), ip, expected: Owner::new("b", "eth0") });
    assert!(matches!(run(&mut s, wrong), Err(IpamError::OwnerMismatch { .. })));
    assert_eq!(s.allocation_count(), 1);
    let right = Command::ReleaseIp(ReleaseIp { network: "".into(), ip, expected: Owner::new("a", "eth0") });
    assert_eq!(ips(run(&mut s, right.clone())), ["10.0.0.1"]);
    assert_eq!(ips(run(&mut s, right)), Vec::<String>::new(), "not held: nothing to do");
}

#[test]
fn gc_sweeps_only_this_node_and_cni_network() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    for (cid, node, net) in
        [("a", "n1", "cni-net"), ("b", "n1", "cni-net"), ("c", "n2", "cni-net"), ("d", "n1", "other")]
    {
        let mut a = att(cid).with_node(node);
        a.cni_network = net.into();
        run(&mut s, alloc_cmd("", std::slice::from_ref(&r), a)).unwrap();
    }
    let gc = Command::Gc(Gc {
        network: "".into(),
        cni_network: "cni-net".into(),
        node: "n1".into(),
        keep: vec![Owner::new("a", "eth0")],
    });
    assert_eq!(ips(run(&mut s, gc)), ["10.0.0.2"]);
    assert_eq!(s.allocation_count(), 3);
}

#[test]
fn request_ids_make_retries_safe() {
    let mut s = State::new(Limits { request_cache: 2, history: 10 });
    let r = range("10.0.0.0/24");
    let ev = |cid: &str, id: &str| Event::new(alloc_cmd("", std::slice::from_ref(&r), att(cid)), 5).with_request_id(id);
    let first = apply(&mut s, &ev("a", "req-1"));
    del(&mut s, "a");
    assert_eq!(apply(&mut s, &ev("a", "req-1")), first, "retry after commit returns the first reply");
    assert_eq!(s.allocation_count(), 0, "and does not allocate again");
    apply(&mut s, &ev("b", "req-2")).unwrap();
    apply(&mut s, &ev("c", "req-3")).unwrap();
    assert_eq!(s.requests.len(), 2, "bounded cache");
    assert!(!s.requests.contains_key("req-1"));
}

#[test]
fn configure_sets_the_limits_through_the_log_and_forgets_at_once() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    for i in 0..1_500 {
        let cid = format!("c{i}");
        let ev = Event::new(alloc_cmd("", std::slice::from_ref(&r), att(&cid)), 5).with_request_id(format!("req-{i}"));
        // Past the /24's addresses: refused, still remembered.
        let _ = apply(&mut s, &ev);
    }
    assert_eq!(s.requests.len(), 1_500);
    assert!(s.history.len() > 200, "{}", s.history.len());
    let set = |request_cache, history| Command::Configure(Configure { request_cache, history });
    let reply = run(&mut s, set(Some(1_024), Some(3)));
    assert_eq!(reply, Ok(Outcome::Configured(Limits { request_cache: 1_024, history: 3 })));
    assert_eq!((s.requests.len(), s.request_order.len(), s.history.len()), (1_024, 1_024, 3));
    assert!(!s.requests.contains_key("req-0") && s.requests.contains_key("req-1499"), "oldest forgotten first");
    // Unset fields keep their value; out-of-bounds values are refused naming the field.
    assert_eq!(run(&mut s, set(None, Some(0))), Ok(Outcome::Configured(Limits { request_cache: 1_024, history: 0 })));
    assert!(s.history.is_empty());
    for (cmd, field) in [(set(Some(2), None), "request_cache"), (set(None, Some(u64::MAX)), "history")] {
        match run(&mut s, cmd) {
            Err(IpamError::Invalid(e)) => assert_eq!(e.field, field),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.limits(), Limits { request_cache: 1_024, history: 0 });
}

#[test]
fn invalid_events_are_refused_without_touching_state() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    let mut bad = att("a");
    bad.owner.ifname = "much-too-long-ifname".into();
    match run(&mut s, alloc_cmd("", std::slice::from_ref(&r), bad)) {
        Err(IpamError::Invalid(e)) => {
            assert_eq!((e.field.as_str(), e.problem), ("ifname", FieldProblem::TooLarge { limit: 15 }))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(run(&mut s, alloc_cmd("", &[], att("a"))), Err(IpamError::Invalid(_))));
    assert_eq!(s.allocation_count(), 0);
    assert!(s.pool_usage().is_empty());
}

#[test]
fn snapshot_round_trip_preserves_state_and_behaviour() {
    let mut s = State::default();
    let wide = range("10.0.0.0/24");
    let narrow = range("10.0.0.0/25");
    let v6 = range("2001:db8::/64");
    for i in 0..40 {
        let a = att(&format!("{i:064x}")).with_pod("ns", format!("pod-{i}")).with_node("node-1");
        let ranges = if i % 3 == 0 { vec![narrow.clone()] } else { vec![wide.clone(), v6.clone()] };
        apply(&mut s, &Event::new(alloc_cmd("n", &ranges, a), 1_000 + i)).unwrap();
    }
    del(&mut s, &format!("{:064x}", 4));
    let bytes = snapshot::encode(&s);
    let mut restored = snapshot::decode(&bytes).unwrap();
    assert_eq!(snapshot::encode(&restored), bytes, "same state, same bytes");
    assert_eq!(restored.allocations(None), s.allocations(None));
    let next = |st: &mut State| apply(st, &Event::new(alloc_cmd("n", std::slice::from_ref(&narrow), att("next")), 9));
    assert_eq!(next(&mut restored), next(&mut s), "same next decision");
}

#[test]
fn one_address_per_owner_and_pool() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    let with_static = |cid: &str, ip: &str| {
        Command::Allocate(Allocate {
            network: "".into(),
            ranges: vec![r.clone()],
            statics: vec![ip.parse().unwrap()],
            overlapping: true,
            attachment: att(cid),
        })
    };
    assert_eq!(add(&mut s, &r, "a"), "10.0.0.1");
    let err = run(&mut s, with_static("a", "10.0.0.9/24")).unwrap_err();
    assert!(matches!(err, IpamError::OwnerConflict { .. }), "{err}");
    // Pod p holds .2 under sandbox b; container a (holding .1) now claims to be pod p.
    run(&mut s, alloc_cmd("", std::slice::from_ref(&r), att("b").with_pod("ns", "p"))).unwrap();
    let err = run(&mut s, alloc_cmd("", std::slice::from_ref(&r), att("a").with_pod("ns", "p"))).unwrap_err();
    assert!(matches!(err, IpamError::OwnerConflict { .. }), "{err}");
    assert_eq!(s.allocation_count(), 2);
}

#[test]
fn a_node_scoped_release_frees_only_that_nodes_addresses() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    run(&mut s, alloc_cmd("", std::slice::from_ref(&r), att("victim").with_node("node-b"))).unwrap();
    let scoped = |node: &str| {
        Command::Release(Release {
            network: "".into(),
            owner: Owner::new("victim", "eth0"),
            only_node: Some(node.into()),
        })
    };
    assert_eq!(ips(run(&mut s, scoped("node-a"))), Vec::<String>::new(), "another node cannot free it");
    assert_eq!(s.allocation_count(), 1);
    assert_eq!(ips(run(&mut s, scoped("node-b"))), ["10.0.0.1"]);
}

/// Found by the `event_ops` fuzz target: one request asking for the same address in two
/// overlapping pools (`10.1.0.7/30` and `10.1.0.7/29`) was given it in both, so the network held
/// the address twice although the overlap rule was on. It is refused and changes nothing; without
/// the overlap rule both pools may hold it, as before.
#[test]
fn the_same_static_address_twice_in_overlapping_pools_of_one_request_is_refused() {
    let cmd = |overlapping: bool| {
        Command::Allocate(Allocate {
            network: String::new(),
            ranges: vec![],
            statics: vec!["10.1.0.7/30".parse().unwrap(), "10.1.0.7/29".parse().unwrap()],
            overlapping,
            attachment: att("c0"),
        })
    };
    let mut s = State::default();
    let err = run(&mut s, cmd(true)).unwrap_err();
    assert!(matches!(err, IpamError::AddressTaken { .. }), "{err}");
    assert!(err.to_string().contains("10.1.0.7") && err.to_string().contains("same request"), "{err}");
    assert!(s.allocations(None).is_empty(), "nothing allocated");

    let mut s = State::default();
    assert_eq!(ips(run(&mut s, cmd(false))), ["10.1.0.7", "10.1.0.7"]);
}

/// Found by the `event_apply` fuzz target: an event with a request id over 128 bytes (only
/// possible in a raw log entry: the cluster validates before proposing) was refused but its id
/// was remembered, and the next snapshot of the state did not decode. The reply is the same, the
/// id is not remembered, and the snapshot round trip holds.
#[test]
fn an_invalid_request_id_is_answered_but_not_remembered() {
    let mut s = State::default();
    let long = "r".repeat(200);
    let event = Event::new(alloc_cmd("", &[range("10.0.0.0/24")], att("a")), 1).with_request_id(long.clone());
    let first = apply(&mut s, &event);
    assert!(matches!(&first, Err(IpamError::Invalid(e)) if e.to_string().contains("request_id")), "{first:?}");
    assert_eq!(apply(&mut s, &event), first);
    assert!(s.allocations(None).is_empty());
    let bytes = crate::snapshot::encode(&s);
    crate::snapshot::decode(&bytes).expect("the snapshot decodes");
}
