use super::*;

/// A string as a snapshot record holds it.
fn pack(s: &str) -> Packed {
    Packed::from_part(crate::packed::part(&crate::packed::pack(s)))
}

#[test]
fn packing_round_trips_every_kind_of_string() {
    for s in [
        "",
        "abc",
        "ABCD",
        "0123456789abcdef",
        "0a",
        "0",
        "123e4567-e89b-12d3-a456-426614174000",
        "123E4567-e89b-12d3-a456-426614174000",
        "a-b",
    ] {
        assert_eq!(pack(s).as_part().unpacked(), s, "{s}");
    }
    assert!(matches!(pack("123e4567-e89b-12d3-a456-426614174000"), Packed::Uuid(_)));
    assert!(matches!(pack(&"ab".repeat(32)), Packed::Hex(_)));
    assert!(matches!(pack("0"), Packed::Text(_)));
}

use crate::event::Reply;
use crate::owner::Attachment;
use crate::range::Range;
use crate::test_support::{allocate_event, att, first_ip, range};

fn alloc(state: &mut State, r: &Range, a: Attachment, overlapping: bool) -> Reply {
    crate::apply(state, &allocate_event("", r, a, overlapping))
}

fn ip(reply: Reply) -> String {
    first_ip(reply)
}

#[test]
fn snapshots_keep_the_reservation_and_use_version_1_at_cluster_version_1() {
    let mut s = State::default();
    let (wide, narrow) = (range("10.0.0.0/24"), range("10.0.0.0/28"));
    assert_eq!(ip(alloc(&mut s, &wide, att("a"), true)), "10.0.0.1");
    // Overlap off reserves too at cluster version 1 (release 0.1.0's semantics).
    assert_eq!(ip(alloc(&mut s, &wide, att("b"), false)), "10.0.0.2");
    let v1 = encode(&s);
    assert_eq!(v1[0] as u32, SNAPSHOT_VERSION, "readable by nodes that know version 1 only");
    let mut restored = decode(&v1).unwrap();
    assert_eq!(encode(&restored), v1, "same state, same bytes");
    let next = |st: &mut State| ip(alloc(st, &narrow, att("c"), true));
    assert_eq!(next(&mut restored), "10.0.0.3");
    assert_eq!(next(&mut s), "10.0.0.3");
}

#[test]
fn snapshots_keep_unreserved_allocations_at_cluster_version_2() {
    let mut s = crate::test_support::state_v2();
    let (wide, narrow) = (range("10.0.0.0/24"), range("10.0.0.0/28"));
    assert_eq!(ip(alloc(&mut s, &wide, att("a"), true)), "10.0.0.1");
    assert_eq!(ip(alloc(&mut s, &wide, att("b"), false)), "10.0.0.2");
    let v3 = encode(&s);
    assert_eq!(v3[0] as u32, SNAPSHOT_VERSION_CLUSTER);
    let mut restored = decode(&v3).unwrap();
    assert_eq!(restored.cluster_version(), 2);
    assert_eq!(encode(&restored), v3, "same state, same bytes");
    // .2 is free for the /28 on both (unreserved), .1 is not (reserved).
    let next = |st: &mut State| ip(alloc(st, &narrow, att("c"), true));
    assert_eq!(next(&mut restored), "10.0.0.2");
    assert_eq!(next(&mut s), "10.0.0.2");
}

#[test]
fn a_damaged_unreserved_list_is_refused() {
    let mut s = crate::test_support::state_v2();
    assert_eq!(ip(alloc(&mut s, &range("10.0.0.0/24"), att("a"), false)), "10.0.0.1");
    let mut bytes = encode(&s);
    // The trailer ends with the single offset (1), before the extension's cluster version (2):
    // point it at an offset nobody holds.
    let last = bytes.len() - 2;
    assert_eq!((bytes[last], bytes[last + 1]), (1, 2));
    bytes[last] = 7;
    assert!(matches!(decode(&bytes), Err(SnapshotError::Invalid(_))));
}

#[test]
fn two_allocations_of_one_namespaceless_pod_in_a_pool_are_accepted() {
    let mut s = State::default();
    let r = range("10.0.0.0/24");
    for cid in ["c1", "c2"] {
        ip(alloc(&mut s, &r, att(cid).with_pod("", "web"), true));
    }
    let restored = decode(&encode(&s)).unwrap();
    assert_eq!(restored.allocations(None), s.allocations(None));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(decode(&[]).is_err());
    assert!(matches!(decode(&[9]), Err(SnapshotError::Version(9))));
    let good = encode(&State::default());
    assert!(decode(&good).is_ok());
    for cut in 0..good.len() {
        let _ = decode(&good[..cut]);
    }
}

fn set_cluster_version(state: &mut State, version: u32) -> Reply {
    let cmd = crate::Command::SetClusterVersion(crate::SetClusterVersion { version });
    crate::apply(state, &crate::Event::new(cmd, 0).with_request_id(format!("set-{version}")))
}

#[test]
fn the_cluster_version_is_kept_by_version_3_snapshots_and_old_forms_return_when_it_is_lowered() {
    let mut s = State::default();
    let wide = range("10.0.0.0/24");
    alloc(&mut s, &wide, att("a"), true).unwrap();
    assert_eq!(s.cluster_version(), 1, "a cluster that never set one");
    assert_eq!(set_cluster_version(&mut s, 2), Ok(crate::Outcome::ClusterVersion { previous: 1, current: 2 }));
    let v3 = encode(&s);
    assert_eq!(peek_version(&v3).unwrap(), SNAPSHOT_VERSION_CLUSTER);
    let restored = decode(&v3).unwrap();
    assert_eq!(restored.cluster_version(), 2);
    assert_eq!(encode(&restored), v3, "same state, same bytes");
    assert_eq!(restored.allocations(None), s.allocations(None));

    // Lowered again (a downgrade): the snapshot is in the form release 0.1.0 reads.
    set_cluster_version(&mut s, 1).unwrap();
    let v1 = encode(&s);
    assert_eq!(peek_version(&v1).unwrap(), SNAPSHOT_VERSION);
    assert_eq!(decode(&v1).unwrap().cluster_version(), 1);
    // Setting the version is never remembered: no reply of a kind 0.1.0 lacks is in the snapshot.
    assert!(!s.requests.keys().any(|id| id.starts_with("set-")));
}

#[test]
fn unknown_snapshot_versions_and_cluster_versions_are_refused_naming_them() {
    let mut s = State::default();
    set_cluster_version(&mut s, 2).unwrap();
    let mut bytes = encode(&s);
    bytes[0] = 9;
    let err = decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("version 9") && err.contains("1 to 3"), "{err}");

    let mut bytes = encode(&s);
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 2, "the extension ends with the cluster version");
    bytes[last] = 7;
    let err = decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("cluster version 7"), "{err}");
    assert!(set_cluster_version(&mut s, 3).is_err(), "a version this build cannot write is refused");
    assert_eq!(s.cluster_version(), 2);
}
