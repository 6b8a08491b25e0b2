//! Model-based property test: random event sequences applied to the real state and to a naive
//! reference model (a linear scan over a flat list of allocations) must give identical replies
//! and identical allocation tables, and never hold one address twice in a network.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipam::ip::{ip_to_u128, u128_to_ip, Family};
use ipam::{
    apply, snapshot, Allocate, Attachment, Command, Event, Gc, IpamError, Lease, Limits, Outcome, Owner, Range,
    RangeSpec, Release, ReleaseIp, Reply, State,
};
use ipnet::IpNet;
use proptest::prelude::*;

/// The ranges requests pick from: overlapping IPv4 pools (with bounds and excludes), IPv6.
fn catalogue() -> Vec<Range> {
    let spec = |range: &str, start: Option<&str>, end: Option<&str>, exclude: &[&str]| RangeSpec {
        range: range.into(),
        range_start: start.map(Into::into),
        range_end: end.map(Into::into),
        exclude: exclude.iter().map(|e| e.to_string()).collect(),
    };
    [
        spec("10.0.0.0/28", None, None, &["10.0.0.4/31"]),
        spec("10.0.0.0/29", None, None, &[]),
        spec("10.0.0.8/29", Some("10.0.0.10"), None, &[]),
        spec("10.1.0.250-10.1.1.3/23", None, None, &["10.1.1.1"]),
        spec("fd00::/125", None, None, &[]),
    ]
    .iter()
    .map(|s| Range::parse(s, "ipam").unwrap().0)
    .collect()
}

/// One allocation as the model keeps it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    network: String,
    pool: IpNet,
    ip: IpAddr,
    cid: String,
    ifname: String,
    /// (namespace, name).
    pod: Option<(String, String)>,
    node: Option<String>,
    cni: String,
    /// Made with overlapping ranges on: other pools of the network see it.
    reserved: bool,
}

#[derive(Default)]
struct Model {
    held: Vec<Held>,
    /// Pools in creation order.
    pools: Vec<(String, IpNet)>,
    replies: Vec<(String, Reply)>,
}

impl Model {
    fn apply(&mut self, ev: &Event) -> Reply {
        if let Some(id) = &ev.request_id {
            if let Some((_, r)) = self.replies.iter().find(|(i, _)| i == id) {
                return r.clone();
            }
        }
        let reply = match &ev.command {
            Command::Allocate(a) => self.allocate(a),
            Command::Release(r) => Ok(Outcome::Released(self.free_where(&r.network, |h| {
                h.cid == r.owner.container_id
                    && h.ifname == r.owner.ifname
                    && r.only_node.as_ref().is_none_or(|n| h.node.as_ref() == Some(n))
            }))),
            Command::ReleaseIp(r) => self.release_ip(r),
            Command::Gc(g) => {
                let keep: BTreeSet<(String, String)> =
                    g.keep.iter().map(|o| (o.container_id.clone(), o.ifname.clone())).collect();
                Ok(Outcome::Released(self.free_where(&g.network, |h| {
                    h.cni == g.cni_network
                        && h.node.as_deref() == Some(&g.node)
                        && !keep.contains(&(h.cid.clone(), h.ifname.clone()))
                })))
            }
            // Limits are tested in apply's own tests; the model remembers every reply.
            Command::Configure(_) => panic!("the strategy generates no Configure"),
            // Format versions are tested in the snapshot and codec tests.
            Command::SetClusterVersion(_) => panic!("the strategy generates no SetClusterVersion"),
        };
        if let Some(id) = &ev.request_id {
            self.replies.push((id.clone(), reply.clone()));
        }
        reply
    }

    /// Frees matching allocations, visiting pools in creation order and addresses in order.
    fn free_where(&mut self, network: &str, matches: impl Fn(&Held) -> bool) -> Vec<Lease> {
        let mut out = Vec::new();
        for (net, pool) in self.pools.clone() {
            if net != network {
                continue;
            }
            let mut doomed: Vec<Held> =
                self.held.iter().filter(|h| h.network == net && h.pool == pool && matches(h)).cloned().collect();
            doomed.sort_by_key(|h| ip_to_u128(&h.ip));
            for d in doomed {
                self.held.retain(|h| *h != d);
                out.push(Lease { ip: d.ip, pool: d.pool });
            }
        }
        out
    }

    fn release_ip(&mut self, r: &ReleaseIp) -> Reply {
        let holders: Vec<Held> = self.held.iter().filter(|h| h.network == r.network && h.ip == r.ip).cloned().collect();
        let order = |h: &Held| self.pools.iter().position(|p| p.0 == h.network && p.1 == h.pool);
        let mut holders = holders;
        holders.sort_by_key(order);
        let mine: Vec<&Held> =
            holders.iter().filter(|h| h.cid == r.expected.container_id && h.ifname == r.expected.ifname).collect();
        if mine.is_empty() {
            if let Some(h) = holders.first() {
                return Err(IpamError::OwnerMismatch {
                    ip: r.ip,
                    holder: format!("{}/{}", h.cid, h.ifname),
                    expected: r.expected.to_string(),
                });
            }
            return Ok(Outcome::Released(vec![]));
        }
        let out = mine.iter().map(|h| Lease { ip: h.ip, pool: h.pool }).collect();
        let mine: Vec<Held> = mine.into_iter().cloned().collect();
        self.held.retain(|h| !mine.contains(h));
        Ok(Outcome::Released(out))
    }

    fn find_held(&self, network: &str, pool: IpNet, att: &Attachment) -> Result<Option<IpAddr>, ()> {
        let in_pool = |h: &&Held| h.network == network && h.pool == pool && h.ifname == att.owner.ifname;
        // A pod without a namespace (podman) is never a key.
        let pod = att.pod.as_ref().filter(|p| !p.namespace.is_empty()).map(|p| (p.namespace.clone(), p.name.clone()));
        let by_pod = pod
            .as_ref()
            .and_then(|p| self.held.iter().filter(in_pool).find(|h| h.pod.as_ref() == Some(p)))
            .map(|h| h.ip);
        let by_cid = self.held.iter().filter(in_pool).find(|h| h.cid == att.owner.container_id).map(|h| h.ip);
        match (by_pod, by_cid) {
            (Some(a), Some(b)) if a != b => Err(()),
            (a, b) => Ok(a.or(b)),
        }
    }

    fn allocate(&mut self, a: &Allocate) -> Reply {
        let created: Vec<IpNet> = {
            let mut needed: Vec<IpNet> = a
                .statics
                .iter()
                .map(|s| a.ranges.iter().map(|r| r.network()).find(|n| n.contains(&s.addr())).unwrap_or(s.trunc()))
                .collect();
            needed.extend(a.ranges.iter().map(|r| r.network()));
            let mut created = Vec::new();
            for cidr in needed {
                if !self.pools.contains(&(a.network.clone(), cidr)) {
                    self.pools.push((a.network.clone(), cidr));
                    created.push(cidr);
                }
            }
            created
        };
        match self.plan(a) {
            Ok(plan) => {
                let mut leases = Vec::new();
                for (pool, ip, held) in plan {
                    leases.push(Lease { ip, pool });
                    if held {
                        let h = self
                            .held
                            .iter_mut()
                            .find(|h| h.network == a.network && h.pool == pool && h.ip == ip)
                            .unwrap();
                        h.cid = a.attachment.owner.container_id.clone();
                        h.pod = a.attachment.pod.as_ref().map(|p| (p.namespace.clone(), p.name.clone()));
                        h.node = a.attachment.node.clone();
                        h.cni = a.attachment.cni_network.clone();
                    } else if !self.held.iter().any(|h| h.network == a.network && h.pool == pool && h.ip == ip) {
                        self.held.push(Held {
                            network: a.network.clone(),
                            pool,
                            ip,
                            cid: a.attachment.owner.container_id.clone(),
                            ifname: a.attachment.owner.ifname.clone(),
                            pod: a.attachment.pod.as_ref().map(|p| (p.namespace.clone(), p.name.clone())),
                            node: a.attachment.node.clone(),
                            cni: a.attachment.cni_network.clone(),
                            reserved: a.overlapping,
                        });
                    }
                }
                Ok(Outcome::Allocated(leases))
            }
            Err(e) => {
                self.pools.retain(|p| !(p.0 == a.network && created.contains(&p.1)));
                Err(e)
            }
        }
    }

    fn plan(&self, a: &Allocate) -> Result<Vec<(IpNet, IpAddr, bool)>, IpamError> {
        let conflict = || IpamError::OwnerConflict {
            owner: String::new(),
            pool: String::new(),
            held: "0.0.0.0".parse().unwrap(),
            wanted: String::new(),
        };
        let mut slots: Vec<Option<(IpNet, IpAddr, bool)>> = vec![None; a.ranges.len()];
        let mut extra = Vec::new();
        for s in &a.statics {
            let slot = a.ranges.iter().position(|r| r.network().contains(&s.addr()));
            let pool = slot.map(|i| a.ranges[i].network()).unwrap_or(s.trunc());
            let already =
                slots.iter().flatten().chain(extra.iter()).find(|p: &&(IpNet, IpAddr, bool)| p.0 == pool).copied();
            let held = match (self.find_held(&a.network, pool, &a.attachment).map_err(|_| conflict())?, already) {
                (_, Some(p)) if p.1 != s.addr() => return Err(conflict()),
                (Some(h), _) if h != s.addr() => return Err(conflict()),
                (Some(_), _) => true,
                (None, _) => {
                    let mine = self.held.iter().any(|h| h.network == a.network && h.pool == pool && h.ip == s.addr());
                    let other = self.held.iter().any(|h| h.network == a.network && h.ip == s.addr() && h.reserved);
                    if mine || (a.overlapping && other) {
                        return Err(IpamError::AddressTaken {
                            network: a.network.clone(),
                            ip: s.addr(),
                            holder: String::new(),
                        });
                    }
                    false
                }
            };
            match slot {
                Some(i) if slots[i].is_none() => slots[i] = Some((pool, s.addr(), held)),
                _ => extra.push((pool, s.addr(), held)),
            }
        }
        for (i, r) in a.ranges.iter().enumerate() {
            if slots[i].is_some() {
                continue;
            }
            let pool = r.network();
            let planned: Vec<(IpNet, IpAddr, bool)> = slots.iter().flatten().chain(extra.iter()).copied().collect();
            if let Some(p) = planned.iter().find(|p| p.0 == pool) {
                slots[i] = Some(*p);
                continue;
            }
            if let Some(ip) = self.find_held(&a.network, pool, &a.attachment).map_err(|_| conflict())? {
                slots[i] = Some((pool, ip, true));
                continue;
            }
            let family = r.family();
            let base = ip_to_u128(&pool.network());
            let mut found = None;
            for o in r.first()..=r.last() {
                let ip = u128_to_ip(family, base + o);
                let dot_zero = family == Family::V4 && base.wrapping_add(o) % 256 == 0;
                let excluded = r.excludes().iter().any(|(lo, hi)| (*lo..=*hi).contains(&o));
                let held_here = self.held.iter().any(|h| h.network == a.network && h.pool == pool && h.ip == ip);
                let held_other =
                    a.overlapping && self.held.iter().any(|h| h.network == a.network && h.ip == ip && h.reserved);
                let clash = planned.iter().any(|p| p.1 == ip && (p.0 == pool || a.overlapping));
                if !(dot_zero || excluded || held_here || held_other || clash) {
                    found = Some(ip);
                    break;
                }
            }
            let ip = found.ok_or_else(|| IpamError::Exhausted { network: a.network.clone(), range: r.describe() })?;
            slots[i] = Some((pool, ip, false));
        }
        Ok(slots.into_iter().flatten().chain(extra).collect())
    }

    fn table(&self) -> Vec<(String, IpNet, IpAddr, String)> {
        let mut t: Vec<_> =
            self.held.iter().map(|h| (h.network.clone(), h.pool, h.ip, format!("{}/{}", h.cid, h.ifname))).collect();
        t.sort_by(|a, b| (&a.0, a.1, ip_to_u128(&a.2)).cmp(&(&b.0, b.1, ip_to_u128(&b.2))));
        t
    }
}

fn real_table(s: &State) -> Vec<(String, IpNet, IpAddr, String)> {
    s.allocations(None).into_iter().map(|v| (v.network, v.pool, v.ip, v.attachment.owner.to_string())).collect()
}

/// Error replies are compared by kind: the model does not rebuild messages.
fn same_reply(a: &Reply, b: &Reply) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(x), Err(y)) => std::mem::discriminant(x) == std::mem::discriminant(y),
        _ => false,
    }
}

fn event_strategy() -> impl Strategy<Value = Event> {
    let networks = prop_oneof![Just(""), Just("n")];
    let owner = (0..6usize, prop_oneof![Just("eth0"), Just("net1")]).prop_map(|(c, i)| Owner::new(format!("c{c}"), i));
    let pod = prop_oneof![
        Just(None),
        (prop_oneof![3 => Just("ns"), 1 => Just("")], 0..4usize).prop_map(|(ns, p)| Some((ns, format!("pod-{p}"))))
    ];
    let node = prop_oneof![Just("node-a"), Just("node-b")];
    let cni = prop_oneof![Just("cni-1"), Just("cni-2")];
    let attachment = (owner.clone(), pod, node.clone(), cni.clone()).prop_map(|(o, p, n, c)| {
        let a = Attachment::new(o, c).with_node(n);
        match p {
            Some((ns, p)) => a.with_pod(ns, p),
            None => a,
        }
    });
    let catalogue = catalogue();
    let ranges = proptest::sample::subsequence((0..catalogue.len()).collect::<Vec<_>>(), 1..=2)
        .prop_map(move |idx| idx.into_iter().map(|i| catalogue[i].clone()).collect::<Vec<_>>());
    let statics = prop_oneof![
        6 => Just(vec![]),
        1 => (0..16u8).prop_map(|o| vec![format!("10.0.0.{o}/28").parse().unwrap()]),
        1 => (1..4u8).prop_map(|o| vec![format!("192.168.9.{o}/24").parse().unwrap()]),
    ];
    let ip = (0..20u8).prop_map(|o| IpAddr::from([10, 0, 0, o]));
    let command = prop_oneof![
        8 => (networks.clone(), ranges, statics, any::<bool>(), attachment).prop_map(|(n, r, s, o, a)| {
            Command::Allocate(Allocate { network: n.into(), ranges: r, statics: s, overlapping: o, attachment: a })
        }),
        4 => (networks.clone(), owner.clone(), prop_oneof![3 => Just(None), 1 => node.clone().prop_map(|n| Some(n.to_string()))])
            .prop_map(|(n, o, only_node)| Command::Release(Release { network: n.into(), owner: o, only_node })),
        1 => (networks.clone(), ip, owner.clone()).prop_map(|(n, ip, o)| Command::ReleaseIp(ReleaseIp { network: n.into(), ip, expected: o })),
        1 => (networks, cni, node, proptest::collection::vec(owner, 0..3)).prop_map(|(n, c, node, keep)| {
            Command::Gc(Gc { network: n.into(), cni_network: c.into(), node: node.into(), keep })
        }),
    ];
    (command, prop_oneof![3 => Just(None), 1 => (0..8u8).prop_map(Some), ], 0..1_000_000u64)
        .prop_map(|(command, id, time_ms)| Event { request_id: id.map(|i| format!("req-{i}")), time_ms, command })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn real_state_matches_the_naive_model(events in proptest::collection::vec(event_strategy(), 1..80)) {
        // The model is this release's semantics: cluster version 2 (at 1, overlap off reserves).
        let mut real = State::new(Limits { request_cache: 1_000, history: 50 });
        let raise = Command::SetClusterVersion(ipam::SetClusterVersion { version: 2 });
        apply(&mut real, &Event::new(raise, 0)).unwrap();
        let mut model = Model::default();
        for (i, ev) in events.iter().enumerate() {
            let got = apply(&mut real, ev);
            let want = model.apply(ev);
            prop_assert!(same_reply(&got, &want), "event {i} {ev:?}\n real: {got:?}\nmodel: {want:?}");
            prop_assert_eq!(real_table(&real), model.table(), "after event {} {:?}", i, ev);
            // Never one address twice in a network with overlap-aware requests only... checked in
            // general below: within one pool, one address has one owner by construction.
            let table = real_table(&real);
            let unique: BTreeSet<_> = table.iter().map(|(n, p, ip, _)| (n, p, ip)).collect();
            prop_assert_eq!(unique.len(), table.len());
        }
        // A snapshot rebuilds an equivalent state.
        let mut restored = snapshot::decode(&snapshot::encode(&real)).unwrap();
        prop_assert_eq!(real_table(&restored), real_table(&real));
        // ...that decides the same way (overlap reservations included).
        for ev in events.iter().take(5) {
            let ev = Event { request_id: None, ..ev.clone() };
            let (a, b) = (apply(&mut real, &ev), apply(&mut restored, &ev));
            prop_assert!(same_reply(&a, &b), "after restore: {:?} vs {:?}", a, b);
        }
    }

    #[test]
    fn overlap_aware_allocations_never_share_an_address(events in proptest::collection::vec(event_strategy(), 1..80)) {
        let mut real = State::default();
        for ev in &events {
            let mut ev = ev.clone();
            if let Command::Allocate(a) = &mut ev.command {
                a.overlapping = true;
            }
            let _ = apply(&mut real, &ev);
            let mut seen = BTreeSet::new();
            for v in real.allocations(None) {
                prop_assert!(seen.insert((v.network.clone(), v.ip)), "{} held twice in network {:?}", v.ip, v.network);
            }
        }
    }
}

#[test]
fn release_then_allocate_returns_the_lowest_again() {
    let r = catalogue()[1].clone(); // 10.0.0.0/29: .1 to .6
    let mut s = State::default();
    let alloc = |s: &mut State, cid: &str| {
        let cmd = Command::Allocate(Allocate {
            network: String::new(),
            ranges: vec![r.clone()],
            statics: vec![],
            overlapping: true,
            attachment: Attachment::new(Owner::new(cid, "eth0"), "net"),
        });
        match apply(s, &Event::new(cmd, 0)) {
            Ok(Outcome::Allocated(l)) => l[0].ip.to_string(),
            other => panic!("{other:?}"),
        }
    };
    for i in 1..=6 {
        assert_eq!(alloc(&mut s, &format!("c{i}")), format!("10.0.0.{i}"));
    }
    for victim in [4, 2, 6] {
        apply(
            &mut s,
            &Event::new(
                Command::Release(Release {
                    network: String::new(),
                    owner: Owner::new(format!("c{victim}"), "eth0"),
                    only_node: None,
                }),
                0,
            ),
        )
        .unwrap();
    }
    assert_eq!(alloc(&mut s, "x"), "10.0.0.2");
    assert_eq!(alloc(&mut s, "y"), "10.0.0.4");
    assert_eq!(alloc(&mut s, "z"), "10.0.0.6");
}
