//! A full disk: writes fail with a clear, retryable error, the node stops instead of serving
//! without durability, nothing acknowledged is lost, and it serves again once space returns.
//! Needs root (it mounts a small tmpfs); under CI it must run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use testkit::loopback_cluster::free_ports;
use testkit::node_processes::{Join, NodeProcesses, Placement};
use testkit::requests;

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// One node on `port`, its data directory under `data_root` (the small filesystem), its log in
/// `dir` (which stays writable).
fn launcher(dir: &Path, data_root: &Path, port: u16) -> NodeProcesses {
    let founders = BTreeMap::from([(0, Placement::at(format!("127.0.0.1:{port}")))]);
    NodeProcesses::new(env!("CARGO_BIN_EXE_whereabouts-node"), dir, founders)
        .unwrap()
        .with_data_root(data_root)
        .with_args(["--request-timeout-ms", "2000", "--snapshot-threshold", "100000", "--insecure"])
}

fn client(port: u16) -> IpamClient<tonic::transport::Channel> {
    IpamClient::new(tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect_lazy())
}

async fn wait_ready(port: u16, log: &Path) {
    for _ in 0..300 {
        if let Ok(s) = client(port).status(pb::StatusRequest { local: false }).await {
            if s.into_inner().leader_id.is_some() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("rror:") || l.contains("os error"))
        .take(10)
        .collect();
    panic!("node did not become ready; errors in its log:\n{}", errors.join("\n"));
}

fn allocate(i: usize) -> pb::AllocateRequest {
    // Long owner names make every entry big, so the disk fills quickly.
    requests::allocate("", "10.40.0.0/16")
        .request_id(format!("disk-{i}"))
        .container(format!("{i:0>200}"))
        .pod("ns", format!("{i:0>200}"))
        .cni_network("n")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_loses_nothing() {
    if effective_uid() != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: this test must run there");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"]).arg(&mnt).status().unwrap();
    assert!(ok.success(), "mount tmpfs");
    let _guard = Tmpfs(mnt.clone());
    let port = free_ports(1)[0];
    let mut node = launcher(dir.path(), &mnt, port);
    let log = node.log_path(0);
    node.start(0, Join::Founder, None).unwrap();
    wait_ready(port, &log).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let ip = client(port).allocate(allocate(i)).await.unwrap().into_inner().leases[0].ip.clone();
        acked.push((i, ip));
    }

    // Fill the disk.
    let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.flush();

    // Keep writing until the cluster refuses: bounded by count.
    let mut refused = None;
    for i in 20..20_000 {
        let mut req = tonic::Request::new(allocate(i));
        req.set_timeout(Duration::from_secs(5));
        match client(port).allocate(req).await {
            Ok(r) => acked.push((i, r.into_inner().leases[0].ip.clone())),
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk must stop acknowledging writes");
    eprintln!("{} writes acknowledged, then: {:?} {}", acked.len(), refused.code(), refused.message());
    assert!(
        matches!(
            refused.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled
        ),
        "{refused:?}"
    );

    // The node stops rather than serve without durability.
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = node.exited(0) {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.or_else(|| node.kill(0)).expect("the node process was known");
    assert!(!exited.success(), "it exits with an error");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("raft stopped on a fatal error") && text.contains("No space left on device"),
        "the log says why: {}",
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );

    // Space returns: restart, every acknowledged allocation is there, writes work again.
    drop(filler); // tmpfs frees an unlinked file's space only once it is closed
    std::fs::remove_file(mnt.join("filler")).unwrap();
    node.start(0, Join::Founder, None).unwrap();
    wait_ready(port, &log).await;
    let req = requests::list_all(false).build();
    let table: std::collections::BTreeMap<String, String> = client(port)
        .list_allocations(req)
        .await
        .unwrap()
        .into_inner()
        .allocations
        .into_iter()
        .map(|a| (a.attachment.unwrap().container_id, a.ip))
        .collect();
    for (i, ip) in &acked {
        assert_eq!(table.get(&format!("{i:0>200}")), Some(ip), "acknowledged allocation {i} survived");
    }
    client(port).allocate(allocate(99_999)).await.expect("writes work again");
    node.kill(0);
}

fn effective_uid() -> u32 {
    // The effective uid, from /proc (no libc dependency needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(u32::MAX)
}
