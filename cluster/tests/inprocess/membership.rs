use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proto::ipam as pb;

use testkit::inprocess_cluster::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_to_five_to_three_while_allocating_loses_nothing() {
    let mut c = TestCluster::start(3).await;
    let leader = c.leader().await;
    let addr3 = c.spawn_joiner(3).await;
    let addr4 = c.spawn_joiner(4).await;

    // A writer keeps allocating through the whole change; it retries what the plugin retries with
    // the same request id: UNAVAILABLE, and DEADLINE_EXCEEDED (an indeterminate outcome — e.g. a
    // call forwarded to the leader that is being removed).
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..5).map(|id| c.client(id)).collect();
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..2_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let req = allocate(&format!("w{i}"), "", "10.7.0.0/16");
                for attempt in 0..100 {
                    let mut client = clients[(i + attempt) % 3].clone();
                    match client.allocate(req.clone()).await {
                        Ok(r) => {
                            acked.push((format!("w{i}/eth0"), r.into_inner().leases[0].ip.clone()));
                            break;
                        }
                        Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await
                        }
                        Err(s) => panic!("unexpected error: {s:?}"),
                    }
                }
            }
            acked
        })
    };

    let mut admin = c.client(leader);
    admin.add_learner(pb::AddLearnerRequest { id: 3, addr: addr3.to_string() }).await.unwrap();
    admin.add_learner(pb::AddLearnerRequest { id: 4, addr: addr4.to_string() }).await.unwrap();
    let applied = c.applied(leader);
    c.applied_everywhere(applied).await;
    admin.promote(pb::PromoteRequest { id: 3, replaces: vec![] }).await.unwrap();
    let members = admin.promote(pb::PromoteRequest { id: 4, replaces: vec![] }).await.unwrap().into_inner().members;
    assert_eq!(members.iter().filter(|m| m.voter).count(), 5);

    // Back to three: remove two of the founders, possibly the leader itself.
    let victims: Vec<u64> = vec![(leader + 1) % 3, leader];
    for v in &victims {
        let mut via = c.client(3);
        via.remove_node(pb::RemoveNodeRequest { id: *v }).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(!acked.is_empty());
    for v in victims {
        c.stop(v).await;
    }
    let leader = c.leader().await;
    let members = c.client(leader).status(pb::StatusRequest { local: false }).await.unwrap().into_inner().members;
    assert_eq!(members.iter().filter(|m| m.voter).count(), 3);
    let index = c.applied(leader);
    c.applied_everywhere(index).await;
    let table = c.table(leader);
    for (owner, ip) in &acked {
        assert!(table.iter().any(|(_, i, o)| i == ip && o == owner), "acknowledged {owner} {ip} is kept");
    }
    let mut ips: Vec<&String> = table.iter().map(|(_, ip, _)| ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), table.len(), "no address twice");
    for id in c.nodes.keys() {
        assert_eq!(c.table(*id), table, "node {id} agrees");
    }
    c.shutdown().await;
}
