use std::time::{Duration, Instant};

use proto::ipam as pb;

use testkit::inprocess_cluster::*;

/// Without a quorum a call is refused (UNAVAILABLE: no leader, no quorum) or times out
/// (DEADLINE_EXCEEDED: outcome unknown) — never served from what this node alone knows.
fn assert_not_served(err: &tonic::Status) {
    assert!(matches!(err.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quorum_calls_fail_unavailable_within_the_deadline() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    add(&c, leader, "before", "10.4.0.0/24").await.unwrap();
    let survivor = c.other_than(leader);
    let others: Vec<u64> = c.nodes.keys().copied().filter(|id| *id != survivor).collect();
    for id in others {
        c.stop(id).await;
    }
    let started = Instant::now();
    let err = add(&c, survivor, "after", "10.4.0.0/24").await.unwrap_err();
    assert_not_served(&err);
    let read = c
        .client(survivor)
        .check(pb::CheckRequest { network_name: "".into(), container_id: "before".into(), ifname: "eth0".into() })
        .await;
    assert_not_served(&read.unwrap_err());
    // request_timeout_ms is 3 s in tests; both calls together end well within twice that plus slack.
    assert!(started.elapsed() < Duration::from_secs(15), "bounded: {:?}", started.elapsed());
    let local = c.client(survivor).status(pb::StatusRequest { local: true }).await.unwrap().into_inner();
    assert_eq!(local.node_id, survivor, "the local view still answers");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_cannot_commit_and_the_majority_moves_on() {
    let c = TestCluster::start(3).await;
    let old = c.leader().await;
    add(&c, old, "a", "10.5.0.0/24").await.unwrap();
    let new = c.isolate_leader(old).await;
    assert_eq!(add(&c, new, "b", "10.5.0.0/24").await.unwrap(), "10.5.0.2");
    // The old leader cannot reach a quorum: its writes and reads fail rather than diverge.
    let mut req = allocate("c", "", "10.5.0.0/24");
    req.request_id = "isolated".into();
    let err = c.client(old).allocate(req).await.unwrap_err();
    assert_not_served(&err);
    c.faults.heal();
    eventually("the old leader to follow the new one", || async {
        (c.nodes[&old].raft.metrics().borrow().current_leader == Some(new)).then_some(())
    })
    .await;
    let index = c.applied(new);
    c.applied_everywhere(index).await;
    for id in 0..3 {
        let t = c.table(id);
        let mut ips: Vec<&str> = t.iter().map(|(_, ip, _)| ip.as_str()).collect();
        ips.dedup();
        assert_eq!(ips.len(), t.len(), "node {id}: no address twice");
        assert_eq!(t, c.table(new), "node {id} agrees with the leader");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_lost_its_followers_times_out_instead_of_guessing() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    add(&c, leader, "before", "10.8.0.0/24").await.unwrap();
    let followers: Vec<u64> = c.nodes.keys().copied().filter(|id| *id != leader).collect();
    for id in followers {
        c.stop(id).await;
    }
    let started = Instant::now();
    let err = add(&c, leader, "after", "10.8.0.0/24").await.unwrap_err();
    assert_not_served(&err);
    let reason = err.metadata().get(proto::ERROR_REASON_KEY).map(|v| v.to_str().unwrap().to_string());
    // Timed out waiting for a quorum, or refused at once once the leader lease ran out.
    assert!(matches!(reason.as_deref(), Some("timeout") | Some("no_leader") | Some("no_quorum")), "{reason:?}");
    let read = c.client(leader).status(pb::StatusRequest { local: false }).await;
    assert_not_served(&read.unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(15), "bounded: {:?}", started.elapsed());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_stops_acting_as_leader() {
    let c = TestCluster::start(3).await;
    let old = c.leader().await;
    add(&c, old, "a", "10.9.0.0/24").await.unwrap();
    assert!(cluster::node::http::readiness(&c.nodes[&old].ctx).is_ok());
    c.isolate_leader(old).await;
    let ctx = &c.nodes[&old].ctx;
    let why = eventually("the cut-off leader to say it cannot serve a write", || async {
        cluster::node::http::readiness(ctx).err()
    })
    .await;
    assert!(why.contains("no quorum"), "{why}");
    eventually("the cut-off leader to refuse calls", || async {
        match ctx.leadership() {
            cluster::leader_lease::Leadership::Isolated { silent_ms } => {
                ctx.lease.refuses_calls(silent_ms).then_some(())
            }
            _ => None,
        }
    })
    .await;
    // openraft still has it as a leader; it refuses at once (nothing proposed) instead of timing
    // out, with no hint to itself, so the plugin moves to another member.
    assert_eq!(c.nodes[&old].raft.metrics().borrow().state, openraft::ServerState::Leader);
    let err = add(&c, old, "b", "10.9.0.0/24").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    let reason = err.metadata().get(proto::ERROR_REASON_KEY).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(reason.as_deref(), Some("no_quorum"));
    assert!(err.metadata().get(proto::LEADER_KEY).is_none(), "no leader hint to itself");
    c.faults.heal();
    eventually("the old leader to follow again and be ready", || async {
        cluster::node::http::readiness(&c.nodes[&old].ctx).ok()
    })
    .await;
    c.shutdown().await;
}
