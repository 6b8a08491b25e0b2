//! `enable_overlapping_ranges: false` as whereabouts has it (an allocation made with the flag off
//! records no cluster-wide reservation, so other ranges of the network do not see it), and pods
//! without a namespace (podman), which are recorded but never identify an attachment.

use super::*;
use crate::event::{Command, Event, Release};
use crate::owner::{Attachment, Owner};
use crate::range::Range;
use crate::state::State;
use crate::test_support::{allocate_event, att, first_ip, range, state_v2};

fn alloc(state: &mut State, network: &str, r: &Range, a: Attachment, overlapping: bool) -> Reply {
    apply(state, &allocate_event(network, r, a, overlapping))
}

fn ip(reply: Reply) -> String {
    first_ip(reply)
}

fn release(state: &mut State, network: &str, cid: &str) {
    let cmd = Command::Release(Release { network: network.into(), owner: Owner::new(cid, "eth0"), only_node: None });
    apply(state, &Event::new(cmd, 2_000)).unwrap();
}

/// whereabouts_test.go L1236-1357: the first pod (flag off, /24) gets .1; the second pod (flag on,
/// /28 of the same CIDR start) gets .1 as well, since the first left no reservation.
#[test]
fn an_allocation_made_with_overlap_off_is_invisible_to_other_ranges() {
    let mut s = state_v2();
    let (wide, narrow) = (range("192.168.33.0/24"), range("192.168.33.0/28"));
    assert_eq!(ip(alloc(&mut s, "", &wide, att("first"), false)), "192.168.33.1");
    assert_eq!(ip(alloc(&mut s, "", &narrow, att("second"), true)), "192.168.33.1");
    // Its own pool still holds it: the next pod of the /24 gets .2.
    assert_eq!(ip(alloc(&mut s, "", &wide, att("third"), true)), "192.168.33.2");
}

#[test]
fn a_pool_created_after_an_unreserved_allocation_is_not_blocked_by_it() {
    let mut s = state_v2();
    assert_eq!(ip(alloc(&mut s, "n", &range("10.0.0.0/24"), att("a"), false)), "10.0.0.1");
    assert_eq!(ip(alloc(&mut s, "n", &range("10.0.0.0/25"), att("b"), true)), "10.0.0.1");
    // ...while a reserved one does block a pool created later.
    assert_eq!(ip(alloc(&mut s, "n", &range("10.0.0.0/26"), att("c"), true)), "10.0.0.2");
}

#[test]
fn freeing_an_unreserved_allocation_keeps_the_reservation_of_another() {
    let mut s = state_v2();
    let (wide, narrow, mid) = (range("10.0.0.0/24"), range("10.0.0.0/28"), range("10.0.0.0/26"));
    assert_eq!(ip(alloc(&mut s, "n", &wide, att("unreserved"), false)), "10.0.0.1");
    assert_eq!(ip(alloc(&mut s, "n", &narrow, att("reserved"), true)), "10.0.0.1");
    release(&mut s, "n", "unreserved");
    // .1 is still reserved by the /28's holder: a third range must not take it.
    assert_eq!(ip(alloc(&mut s, "n", &mid, att("third"), true)), "10.0.0.2");
    release(&mut s, "n", "reserved");
    assert_eq!(ip(alloc(&mut s, "n", &mid, att("fourth"), true)), "10.0.0.1");
}

#[test]
fn a_repeated_add_keeps_the_reservation_it_was_given_with() {
    let mut s = state_v2();
    let (wide, narrow) = (range("10.0.0.0/24"), range("10.0.0.0/28"));
    assert_eq!(ip(alloc(&mut s, "", &wide, att("a"), false)), "10.0.0.1");
    // The same attachment again, now with the flag on: same address, still unreserved.
    assert_eq!(ip(alloc(&mut s, "", &wide, att("a"), true)), "10.0.0.1");
    assert_eq!(ip(alloc(&mut s, "", &narrow, att("b"), true)), "10.0.0.1");
}

/// podman sends `K8S_POD_NAME` without a namespace: the pod ref is `/<name>` (as whereabouts
/// records it), and it is not a key — two containers of the same name on two hosts (or a new
/// container reusing a name) do not share an address.
#[test]
fn pods_without_a_namespace_are_recorded_but_not_used_as_keys() {
    let mut s = state_v2();
    let r = range("10.0.0.0/24");
    let podman = |cid: &str| att(cid).with_pod("", "web").with_node("host-a");
    assert_eq!(ip(alloc(&mut s, "", &r, podman("c1"), true)), "10.0.0.1");
    assert_eq!(ip(alloc(&mut s, "", &r, podman("c2"), true)), "10.0.0.2", "another container named web");
    assert_eq!(ip(alloc(&mut s, "", &r, podman("c1"), true)), "10.0.0.1", "same container: same address");
    let views = s.allocations(None);
    assert_eq!(views[0].attachment.pod.as_ref().map(ToString::to_string).as_deref(), Some("/web"));
    // With a namespace the pod is a key, as before: a new sandbox gets the pod's address back.
    let k8s = |cid: &str| att(cid).with_pod("ns", "web");
    assert_eq!(ip(alloc(&mut s, "", &r, k8s("s1"), true)), "10.0.0.3");
    assert_eq!(ip(alloc(&mut s, "", &r, k8s("s2"), true)), "10.0.0.3");
}

/// At cluster version 1 every member may still run release 0.1.0, which reserves every address
/// across the network whatever the flag says: this release applies the same, or the replicas of a
/// mixed cluster would hand out different addresses.
#[test]
fn at_cluster_version_1_an_allocation_with_overlap_off_still_reserves_as_release_0_1_0_does() {
    let mut s = State::default();
    assert_eq!(s.cluster_version(), 1);
    let (wide, narrow) = (range("192.168.33.0/24"), range("192.168.33.0/28"));
    assert_eq!(ip(alloc(&mut s, "", &wide, att("a"), false)), "192.168.33.1");
    assert_eq!(ip(alloc(&mut s, "", &narrow, att("b"), true)), "192.168.33.2");
}

/// Release 0.1.0 refuses a pod without a namespace: a leader writing format 1 leaves such a pod
/// out (the attachment is keyed by its container either way); format 2 keeps it.
#[test]
fn a_pod_without_namespace_is_left_out_in_format_1_only() {
    let cmd = allocate_event("", &range("10.0.0.0/24"), att("c1").with_pod("", "web"), true).command;
    let pod_of = |c: Command| match c {
        Command::Allocate(a) => a.attachment.pod,
        other => panic!("{other:?}"),
    };
    assert_eq!(pod_of(cmd.clone().fit_to_format(1)), None);
    assert!(pod_of(cmd.clone().fit_to_format(2)).is_some());
    let namespaced = allocate_event("", &range("10.0.0.0/24"), att("c1").with_pod("ns", "web"), true).command;
    assert_eq!(namespaced.clone().fit_to_format(1), namespaced);
}

/// `Configure` did not exist in release 0.1.0: it needs cluster version 2 and format 2.
#[test]
fn configure_needs_cluster_version_2() {
    let cmd = Command::Configure(crate::event::Configure { request_cache: None, history: Some(5) });
    assert_eq!((cmd.min_format(), cmd.min_cluster_version()), (2, 2));
    let raise = Command::SetClusterVersion(crate::event::SetClusterVersion { version: 2 });
    assert_eq!((raise.min_format(), raise.min_cluster_version()), (2, 1));
}
