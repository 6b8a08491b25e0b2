//! The state's limits (request cache, history) are replicated state: nodes started with
//! different flags keep identical state, and `Settings` changes every replica through the log.

use proto::ipam as pb;

use testkit::inprocess_cluster::*;

fn encoded(c: &TestCluster, id: u64) -> Vec<u8> {
    c.nodes[&id].ctx.with_machine(|m| ipam::snapshot::encode(&m.state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_different_limit_flags_keep_the_same_state() {
    // Node 2 is started as a rolling upgrade might: other limits on its command line. They used
    // to decide what its apply forgot, so its request cache and history diverged.
    let c = TestCluster::start_tweaked(3, |o| {
        if o.id == 2 {
            o.request_cache = Some(1);
            o.history = Some(1);
        }
    })
    .await;
    let leader = c.leader().await;
    for i in 0..6 {
        add(&c, leader, &format!("c{i}"), "10.30.0.0/24").await.unwrap();
    }
    c.applied_everywhere(c.applied(leader)).await;
    for id in [0, 1, 2] {
        assert!(encoded(&c, id) == encoded(&c, leader), "node {id}'s state differs from the leader's");
        let (requests, history) = c.nodes[&id].ctx.with_machine(|m| (m.state.limits(), m.state.history().count()));
        assert_eq!((requests, history), (ipam::Limits::default(), 6), "node {id}");
    }

    // Changed through any member (forwarded to the leader), applied by every replica.
    let via = c.other_than(leader);
    let set = pb::SettingsRequest { request_cache: Some(2_048), history: Some(2) };
    let r = c.client(via).settings(set).await.unwrap().into_inner();
    assert_eq!((r.request_cache, r.history), (2_048, 2));
    c.applied_everywhere(c.applied(leader)).await;
    for id in [0, 1, 2] {
        let limits = c.nodes[&id].ctx.with_machine(|m| m.state.limits());
        assert_eq!(limits, ipam::Limits { request_cache: 2_048, history: 2 }, "node {id}");
        assert!(encoded(&c, id) == encoded(&c, leader), "node {id}'s state differs after the change");
    }
    let read = c.client(leader).settings(pb::SettingsRequest::default()).await.unwrap().into_inner();
    assert_eq!((read.request_cache, read.history), (2_048, 2));
    let bad = pb::SettingsRequest { request_cache: Some(3), history: None };
    let err = c.client(via).settings(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("request_cache"), "{}", err.message());
    c.shutdown().await;
}
