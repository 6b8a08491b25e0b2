use testkit::inprocess_cluster::*;

fn low_snapshot_threshold(o: &mut cluster::node::NodeOptions) {
    o.snapshot_threshold = 20;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_many_writes_catches_up_through_a_snapshot() {
    let mut c = TestCluster::start_tweaked(3, low_snapshot_threshold).await;
    let leader = c.leader().await;
    let lagger = c.other_than(leader);
    c.stop(lagger).await;
    for i in 0..200 {
        add(&c, leader, &format!("c{i}"), "10.6.0.0/16").await.unwrap();
    }
    let snapshot = c.nodes[&leader].raft.metrics().borrow().snapshot;
    assert!(snapshot.is_some_and(|s| s.index > 20), "the leader compacted its log: {snapshot:?}");
    c.restart(lagger).await;
    let index = c.applied(leader);
    c.applied_everywhere(index).await;
    assert_eq!(c.table(lagger), c.table(leader));
    let lagger_snapshot = c.nodes[&lagger].raft.metrics().borrow().snapshot;
    assert!(lagger_snapshot.is_some(), "the restarted node installed a snapshot");
    // And it restarts from its own snapshot afterwards.
    c.stop(lagger).await;
    c.restart(lagger).await;
    c.applied_everywhere(index).await;
    assert_eq!(c.table(lagger), c.table(leader));
    c.shutdown().await;
}
