//! Leader-only behaviour on a real three-node cluster: each node runs the exporter under
//! `while_leader`, each with its own fake API, so which node wrote is visible.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cluster::kube::exporter::{self, ExportSettings};
use cluster::kube::leader::{leadership, while_leader};
use cluster::kube::KubeMetrics;
use tokio::sync::watch;

use super::fake_api::FakeApi;
use testkit::inprocess_cluster::{add, eventually, TestCluster};

const POOLS: &str = "apis/whereabouts.cni.cncf.io/v1alpha1/ippools";

fn held(api: &FakeApi) -> Option<usize> {
    api.get(POOLS, "kube-system", "10.50.0.0-24").map(|p| p["spec"]["allocations"].as_object().unwrap().len())
}

#[tokio::test]
async fn only_the_leader_exports_and_a_new_leader_takes_over() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let term = |c: &TestCluster, id: u64| c.nodes[&id].raft.metrics().borrow().current_term;
    let term0 = term(&c, leader);
    let apis: BTreeMap<u64, FakeApi> = c.nodes.keys().map(|id| (*id, FakeApi::new())).collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = ExportSettings {
        namespace: "kube-system".into(),
        interval: Duration::from_millis(50),
        max_writes: 10,
        resync: Duration::from_secs(3600),
        reservations: false,
    };
    for (id, node) in &c.nodes {
        let (ctx, client, settings) = (node.ctx.clone(), apis[id].client(), settings.clone());
        let work =
            move || exporter::run(ctx.clone(), client.clone(), settings.clone(), Arc::new(KubeMetrics::default()));
        tokio::spawn(while_leader(
            "exporter",
            leadership(&node.raft, *id, node.ctx.lease),
            stop_rx.clone(),
            Duration::from_millis(50),
            work,
        ));
    }
    add(&c, leader, "a", "10.50.0.0/24").await.unwrap();
    eventually("the leader's exporter to write the pool", || async { (held(&apis[&leader]) == Some(1)).then_some(()) })
        .await;
    if term(&c, leader) == term0 && c.leader().await == leader {
        // No election happened since the exporters started: nobody else led, nobody else wrote.
        for (id, api) in &apis {
            if *id != leader {
                assert!(api.requests().is_empty(), "follower {id} talked to the API");
            }
        }
    }

    c.stop(leader).await;
    let next = c.leader().await;
    assert_ne!(next, leader);
    add(&c, next, "b", "10.50.0.0/24").await.unwrap();
    eventually("the new leader's exporter to write the pool", || async {
        (held(&apis[&next]) == Some(2)).then_some(())
    })
    .await;
    let _ = stop_tx.send(true);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_quorum_stops_leader_only_work() {
    let c = TestCluster::start(3).await;
    let old = c.leader().await;
    let node = &c.nodes[&old];
    let leading = leadership(&node.raft, old, node.ctx.lease);
    eventually("the leader's watch to say it leads", || async { (*leading.borrow()).then_some(()) }).await;
    c.isolate_leader(old).await;
    eventually("the cut-off leader's watch to stop its exporter", || async { (!*leading.borrow()).then_some(()) })
        .await;
    // openraft still has it as a leader (nothing told it otherwise): only the lease stopped it.
    assert_eq!(node.raft.metrics().borrow().state, openraft::ServerState::Leader);
    c.faults.heal();
    c.shutdown().await;
}
