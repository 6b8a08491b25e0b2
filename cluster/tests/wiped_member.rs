//! A member whose data directory is lost, restarted with its original flags (what a StatefulSet
//! does after a lost volume), must never vote or count toward a quorum with its forgotten state;
//! and a cluster whose first founder never starts still forms. Real node processes on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proto::ipam as pb;
use raft_store::types::{incarnation, ordinal};
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions, QUICK_RAFT};
use testkit::requests;

fn cluster(n: u64) -> LoopbackOptions {
    LoopbackOptions::new(env!("CARGO_BIN_EXE_whereabouts-node"), n)
        .args(QUICK_RAFT)
        .args(["--bootstrap-wait-ms", "1000"])
}

fn add(owner: &str) -> pb::AllocateRequest {
    requests::allocate("", "10.40.0.0/16").request_id(format!("rid-{owner}")).container(owner).cni_network("n").build()
}

/// One attempt to allocate `owner` through node `id` within `timeout`.
async fn try_add(c: &LoopbackCluster, id: u64, owner: &str, timeout: Duration) -> Result<String, tonic::Status> {
    let mut req = tonic::Request::new(add(owner));
    req.set_timeout(timeout);
    Ok(c.client(id).allocate(req).await?.into_inner().leases[0].ip.clone())
}

/// Allocates `owner` through `via`, retrying (same request id) for at most 30 s.
async fn add_retrying(c: &LoopbackCluster, via: &[u64], owner: &str) -> String {
    for attempt in 0..300 {
        if let Ok(ip) = try_add(c, via[attempt % via.len()], owner, Duration::from_secs(2)).await {
            return ip;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{owner} was never acknowledged\n{}", c.logs());
}

/// The voters as node `id` reports them (local view), if it answers.
async fn voters(c: &LoopbackCluster, id: u64) -> Option<BTreeSet<u64>> {
    let mut req = tonic::Request::new(pb::StatusRequest { local: true });
    req.set_timeout(Duration::from_secs(1));
    let status = c.client(id).status(req).await.ok()?.into_inner();
    Some(status.members.iter().filter(|m| m.voter).map(|m| m.id).collect())
}

/// Regression (the reproduction): node `stale` paused; 100 allocations acknowledged by the
/// other two; the leader killed; the other holder's data directory wiped and the node restarted
/// with its flags; `stale` resumed. The wiped node and the stale one formed a quorum and handed out
/// 50 of the 100 acknowledged addresses again (seen with the code before this change). Now the
/// wiped node stays out of Raft under its old identity: nothing is handed out twice, and once the
/// old leader is back the wiped node rejoins as a new incarnation and every allocation is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_never_forms_a_quorum_with_forgotten_state() {
    let mut c = cluster(3).start_ready(Duration::from_secs(60));
    let leader = c.leader().await;
    let (stale, holder) = {
        let others: Vec<u64> = (0..3).filter(|id| *id != leader).collect();
        (others[0], others[1])
    };
    // A first write reaches every node, so all have a history.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    acked.insert("first".into(), add_retrying(&c, &[leader], "first").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.nodes.pause(stale).unwrap();
    for i in 0..100 {
        let owner = format!("pod-{i}");
        let ip = add_retrying(&c, &[leader, holder], &owner).await;
        acked.insert(owner, ip);
    }
    c.kill(leader);
    c.kill(holder);
    std::fs::remove_dir_all(c.data_dir(holder)).unwrap();
    c.start_node(holder);
    c.nodes.resume(stale).unwrap();

    // The wiped node and the stale node alone: whatever they answer, never an acknowledged address.
    let taken: BTreeSet<&String> = acked.values().collect();
    let mut handed_out = 0;
    let window = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    while tokio::time::Instant::now() < window {
        let via = if i % 2 == 0 { stale } else { holder };
        if let Ok(ip) = try_add(&c, via, &format!("after-{i}"), Duration::from_secs(1)).await {
            handed_out += 1;
            assert!(!taken.contains(&ip), "{ip} was handed out again while the leader was down\n{}", c.logs());
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handed_out, 0, "no quorum without the old leader: the wiped node must not count\n{}", c.logs());

    // The old leader comes back: the wiped node rejoins as a new incarnation, replacing itself.
    c.start_node(leader);
    let rejoined = async {
        loop {
            if let Some(v) = voters(&c, leader).await {
                let replaced = v.len() == 3
                    && v.iter().any(|id| ordinal(*id) == holder && incarnation(*id) >= 1)
                    && !v.contains(&holder);
                if replaced {
                    return v;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let v = tokio::time::timeout(Duration::from_secs(60), rejoined)
        .await
        .unwrap_or_else(|_| panic!("node {holder} did not rejoin as a new incarnation\n{}", c.logs()));
    assert_eq!(v.iter().map(|id| ordinal(*id)).collect::<BTreeSet<_>>(), BTreeSet::from([0, 1, 2]));

    // Every acknowledged allocation is there, once, and a new one gets a new address.
    let held: BTreeMap<String, String> = c
        .allocations("")
        .into_iter()
        .map(|a| (a.attachment.unwrap().container_id, a.ip))
        .filter(|(owner, _)| !owner.starts_with("after-"))
        .collect();
    assert_eq!(held, acked, "acknowledged allocations lost or changed\n{}", c.logs());
    let next = add_retrying(&c, &[0, 1, 2], "last").await;
    assert!(!taken.contains(&next), "{next} handed out twice");
    c.stop();
}

/// Regression: only node 0 could bootstrap, so a cluster whose node 0 never started never formed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_forms_without_its_first_founder_and_takes_it_in_later() {
    let mut c = cluster(3).prepare();
    c.start_node(1);
    c.start_node(2);
    let ip = add_retrying(&c, &[1, 2], "without-node-0").await;
    assert_eq!(ip, "10.40.0.1");
    // Node 0 starts at last, empty, after the others wrote: it joins as a new incarnation of 0.
    c.start_node(0);
    let joined = async {
        loop {
            if let Some(v) = voters(&c, 1).await {
                if v.len() == 3 && v.iter().any(|id| ordinal(*id) == 0 && incarnation(*id) >= 1) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), joined)
        .await
        .unwrap_or_else(|_| panic!("node 0 did not join\n{}", c.logs()));
    assert_eq!(add_retrying(&c, &[0], "through-node-0").await, "10.40.0.2");
    c.stop();
}
