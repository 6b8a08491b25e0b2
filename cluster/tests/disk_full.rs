//! A full disk: writes fail with a clear, retryable error, the node stops instead of serving
//! without durability, nothing acknowledged is lost, and it serves again once space returns.
//! Needs root (it mounts a small tmpfs); under CI it must run.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn start(data: &Path, port: u16, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_whereabouts-node"))
        .args([
            "--id",
            "0",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--initial-cluster",
            &format!("0=127.0.0.1:{port}"),
        ])
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--request-timeout-ms",
            "2000",
            "--snapshot-threshold",
            "100000",
            "--insecure",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
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
    pb::AllocateRequest {
        request_id: format!("disk-{i}"),
        network_name: String::new(),
        // Long owner names make every entry big, so the disk fills quickly.
        ranges: vec![pb::RangeSpec { range: "10.40.0.0/16".into(), ..Default::default() }],
        static_ips: vec![],
        enable_overlapping_ranges: None,
        attachment: Some(pb::Attachment {
            container_id: format!("{i:0>200}"),
            ifname: "eth0".into(),
            pod_namespace: "ns".into(),
            pod_name: format!("{i:0>200}"),
            cni_network: "n".into(),
            ..Default::default()
        }),
    }
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
    let data = mnt.join("data");
    let log = dir.path().join("node.log");
    let port = common::free_port();

    let mut node = start(&data, port, &log);
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
        if let Some(status) = node.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.unwrap_or_else(|| {
        let _ = node.kill();
        node.wait().unwrap()
    });
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
    let log = dir.path().join("node-restarted.log");
    let mut node = start(&data, port, &log);
    wait_ready(port, &log).await;
    let req = pb::ListAllocationsRequest { network_name: None, limit: 0, after: String::new(), local: false };
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
    let _ = node.kill();
    let _ = node.wait();
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
