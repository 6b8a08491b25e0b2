//! Backup round trip with the real binaries: save a running cluster with `whereabouts-ctl snapshot
//! save`, rebuild a new cluster from the file with `snapshot restore`, and find every allocation.

use std::process::Command;

use proto::ipam as pb;
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions, QUICK_RAFT};
use testkit::requests;

/// Three nodes on loopback with quick elections.
fn three_nodes() -> LoopbackOptions {
    LoopbackOptions::new(env!("CARGO_BIN_EXE_whereabouts-node"), 3).args(QUICK_RAFT)
}

fn ctl(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_whereabouts-ctl"))
        .arg("--insecure")
        .args(args)
        .output()
        .expect("run whereabouts-ctl");
    assert!(out.status.success(), "whereabouts-ctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn allocate(container: &str) -> pb::AllocateRequest {
    requests::allocate("tenant", "10.30.0.0/24")
        .request_id(format!("r-{container}"))
        .container(container)
        .cni_network("n")
        .build()
}

async fn table(p: &LoopbackCluster, id: u64) -> Vec<(String, String)> {
    let all = p.client(id).list_allocations(requests::list_all(false).build()).await.unwrap().into_inner().allocations;
    all.into_iter().map(|a| (a.ip, a.attachment.unwrap().container_id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_backup_rebuilds_a_new_cluster_with_every_allocation() {
    let old = three_nodes().start();
    let leader = old.leader().await;
    for i in 0..30 {
        old.client(leader).allocate(allocate(&format!("c{i}"))).await.unwrap();
    }
    let before = table(&old, leader).await;
    let keep = tempfile::tempdir().unwrap();
    let file = keep.path().join("backup.wrbk");
    let endpoint = old.endpoint((leader + 1) % 3).to_string();
    let saved = ctl(&["--endpoints", &endpoint, "snapshot", "save", file.to_str().unwrap()]);
    assert!(saved.contains("saved 30 allocations"), "{saved}");
    let inspected = ctl(&["snapshot", "inspect", file.to_str().unwrap()]);
    assert!(inspected.contains("30 allocations") && inspected.contains("checksum ok"), "{inspected}");
    drop(old);

    // A damaged file is refused.
    let mut damaged = std::fs::read(&file).unwrap();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let bad = file.with_extension("bad");
    std::fs::write(&bad, &damaged).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_whereabouts-ctl"))
        .args(["snapshot", "inspect", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("damaged"), "{}", String::from_utf8_lossy(&out.stderr));

    let mut new = three_nodes().prepare();
    for id in 0..3u64 {
        let dir = new.data_dir(id);
        let out = ctl(&[
            "snapshot",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            dir.to_str().unwrap(),
            "--id",
            &id.to_string(),
            "--initial-cluster",
            new.initial_cluster(),
        ]);
        assert!(out.contains("restored 30 allocations"), "{out}");
    }
    for id in 0..3 {
        new.start_node(id);
    }
    let leader = new.leader().await;
    assert_eq!(table(&new, leader).await, before, "the new cluster holds exactly the saved allocations");
    let next = new.client(leader).allocate(allocate("after-restore")).await.unwrap().into_inner();
    assert_eq!(next.leases[0].ip, "10.30.0.31", "and keeps allocating after them");
    // Restoring into a used directory is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_whereabouts-ctl"))
        .args([
            "snapshot",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            new.data_dir(0).to_str().unwrap(),
            "--id",
            "0",
            "--initial-cluster",
            new.initial_cluster(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
