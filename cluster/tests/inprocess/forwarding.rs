use proto::ipam as pb;

use testkit::inprocess_cluster::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_writes_and_reads_are_fresh_everywhere() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = c.other_than(leader);
    assert_eq!(add(&c, follower, "via-follower", "10.1.0.0/24").await.unwrap(), "10.1.0.1");
    // A read right after the write, on any node, sees it (linearizable, not follower state).
    for id in 0..3 {
        let req =
            pb::CheckRequest { network_name: "".into(), container_id: "via-follower".into(), ifname: "eth0".into() };
        let held = c.client(id).check(req).await.unwrap().into_inner().allocations;
        assert_eq!(held.len(), 1, "node {id}");
        assert_eq!(held[0].ip, "10.1.0.1");
    }
    let status = c.client(follower).status(pb::StatusRequest { local: false }).await.unwrap().into_inner();
    assert_eq!(status.leader_id, Some(leader));
    assert_eq!(status.members.len(), 3);
    assert_eq!(status.allocations, 1);
    c.shutdown().await;
}

/// A forwarded success names the leader, so that clients (the plugin remembers it) go there
/// next; the leader's own answers carry no hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_success_names_the_leader() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = c.other_than(leader);
    let hint = |md: &tonic::metadata::MetadataMap| md.get(proto::LEADER_KEY).map(|v| v.to_str().unwrap().to_string());
    let via_follower = c.client(follower).allocate(allocate("hinted", "", "10.4.0.0/24")).await.unwrap();
    assert_eq!(hint(via_follower.metadata()), Some(c.addrs[&leader].to_string()));
    let released = c.client(follower).release(release("hinted", "")).await.unwrap();
    assert_eq!(hint(released.metadata()), Some(c.addrs[&leader].to_string()));
    let direct = c.client(leader).allocate(allocate("direct", "", "10.4.0.0/24")).await.unwrap();
    assert_eq!(hint(direct.metadata()), None, "the leader served it itself");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_the_same_request_id_do_not_allocate_twice() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let mut req = allocate("c1", "", "10.2.0.0/24");
    req.request_id = "same-id".into();
    let first = c.client(leader).allocate(req.clone()).await.unwrap().into_inner();
    c.client(leader).release(release("c1", "")).await.unwrap();
    let again = c.client(c.other_than(leader)).allocate(req).await.unwrap().into_inner();
    assert_eq!(first.leases, again.leases);
    assert!(c.table(leader).is_empty(), "the retry returned the first reply without allocating");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_and_changes_nothing() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let follower = c.other_than(leader);
    let mut bad = allocate("c1", "", "10.0.0.0/33");
    let err = c.client(follower).allocate(bad.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("ranges[0].range"), "{}", err.message());
    assert_eq!(err.metadata().get(proto::ERROR_REASON_KEY).unwrap(), "invalid");
    bad.ranges[0].range = "10.0.0.0/24".into();
    bad.attachment.as_mut().unwrap().ifname = "x".repeat(100);
    let err = c.client(leader).allocate(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let huge = allocate(&"c".repeat(8 << 20), "", "10.0.0.0/24");
    let err = c.client(leader).allocate(huge).await.unwrap_err();
    assert!(
        matches!(err.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument),
        "{err:?}"
    );
    let err = c.client(leader).who_has(pb::WhoHasRequest { ip: "not-an-ip".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(c.table(leader).is_empty());
    let status = c.client(leader).status(pb::StatusRequest { local: false }).await.unwrap().into_inner();
    assert!(status.pools.is_empty(), "no pool was created by the refused requests");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhaustion_is_resource_exhausted_naming_the_range() {
    let c = TestCluster::start(3).await;
    let leader = c.leader().await;
    add(&c, leader, "a", "10.3.0.0/30").await.unwrap();
    add(&c, leader, "b", "10.3.0.0/30").await.unwrap();
    let err = add(&c, leader, "c", "10.3.0.0/30").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(err.message().contains("10.3.0.0/30"), "{}", err.message());
    c.shutdown().await;
}
