//! The cluster version: raised only when every member answers and reads it, written through the
//! log (every replica applies it), deciding the format of the entries the leader writes; lowered
//! and compacted, it leaves no entry of the newer format (what a downgrade needs).

use proto::ipam as pb;

use testkit::inprocess_cluster::*;

async fn versions(c: &TestCluster, via: u64, set: Option<u32>, compact: bool) -> pb::ClusterVersionResponse {
    let req = pb::ClusterVersionRequest { set, compact };
    c.client(via).cluster_version(req).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_version_is_raised_written_through_the_log_and_lowered_for_a_downgrade() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    add(&c, leader, "before", "10.40.0.0/24").await.unwrap();

    // A cluster founded by this release raised its version by itself (TestCluster waits for it).
    let r = versions(&c, c.other_than(leader), None, false).await;
    assert_eq!((r.cluster_version, r.highest_possible), (ipam::FORMAT_MAX, ipam::FORMAT_MAX), "{r:?}");
    assert_eq!(r.members.len(), 3);
    for m in &r.members {
        assert!(m.reachable, "{m:?}");
        assert_eq!(m.binary_version, env!("CARGO_PKG_VERSION"));
        assert_eq!((m.format_min, m.format_max), (ipam::FORMAT_MIN, ipam::FORMAT_MAX));
        assert_eq!(m.newest_log_format, Some(2), "a founded cluster writes format 2: {m:?}");
    }
    assert!(r.downgrade_ready, "nothing is newer than the cluster version (2)");

    // A version this release cannot write is refused, naming the field.
    let err = c.client(leader).cluster_version(pb::ClusterVersionRequest { set: Some(9), compact: false }).await;
    let err = err.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("cluster_version"), "{}", err.message());

    // Lowered: the format-2 entries are still in the logs until compacted.
    let r = versions(&c, leader, Some(1), false).await;
    assert_eq!(r.cluster_version, 1);
    assert!(!r.downgrade_ready, "format-2 entries are newer than cluster version 1: {r:?}");
    add(&c, leader, "lowered", "10.40.0.0/24").await.unwrap();
    let r = versions(&c, leader, None, true).await;
    assert!(r.downgrade_ready, "compacted: {r:?}");
    for m in &r.members {
        assert!(m.error.is_empty(), "{m:?}");
        assert!(m.newest_log_format.unwrap_or(1) <= 1 && m.snapshot_format.unwrap_or(1) <= 1, "{m:?}");
    }

    // Raised through a follower (forwarded): every replica applies it, new entries are format 2.
    let r = versions(&c, c.other_than(leader), Some(2), false).await;
    assert_eq!(r.cluster_version, 2, "{r:?}");
    add(&c, leader, "after", "10.40.0.0/24").await.unwrap();
    c.applied_everywhere(c.applied(leader)).await;
    for id in [0, 1, 2] {
        assert_eq!(c.nodes[&id].ctx.with_machine(|m| m.state.cluster_version()), 2, "node {id}");
    }
    let r = versions(&c, leader, None, false).await;
    assert!(r.members.iter().all(|m| m.newest_log_format == Some(2)), "{r:?}");
    let r = versions(&c, leader, Some(1), false).await;
    assert_eq!(r.cluster_version, 1);
    assert_eq!(c.table(leader).len(), 3, "the allocations are all there");

    // At cluster version 1 members may run 0.1.0, which cannot read a settings change: refused,
    // naming the step that allows it; reading the settings still works.
    let change = pb::SettingsRequest { request_cache: None, history: Some(5) };
    let err = c.client(leader).settings(change).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("cluster-version --set 2"), "{}", err.message());
    let read = pb::SettingsRequest { request_cache: None, history: None };
    assert!(c.client(leader).settings(read).await.is_ok());

    // A member that does not answer: a change is refused, naming it; reading still works.
    let stopped = c.other_than(leader);
    c.stop(stopped).await;
    let err = c.client(leader).cluster_version(pb::ClusterVersionRequest { set: Some(2), compact: false }).await;
    let err = err.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("did not answer"), "{}", err.message());
    let r = versions(&c, leader, None, false).await;
    assert_eq!(r.members.iter().filter(|m| !m.reachable).count(), 1, "{r:?}");
    assert_eq!(r.highest_possible, 1, "an unreachable member counts as the oldest");
    assert_eq!(r.cluster_version, 1);
    c.shutdown().await;
}
