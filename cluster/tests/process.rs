//! Real `whereabouts-node` processes on loopback: kill -9 the leader while clients allocate, and
//! check that every acknowledged allocation survives and no address is handed out twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions, QUICK_RAFT};
use testkit::requests;
use tonic::transport::Channel;

/// `n` nodes on loopback with quick elections.
fn cluster(n: u64) -> LoopbackCluster {
    LoopbackOptions::new(env!("CARGO_BIN_EXE_whereabouts-node"), n).args(QUICK_RAFT).start()
}

fn client_at(endpoint: &str) -> IpamClient<Channel> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}")).unwrap().connect_lazy();
    IpamClient::new(ch)
}

/// Allocates `owner`, retrying on UNAVAILABLE against every node with the same request id (as the
/// plugin does); `None` if it never got an answer.
async fn allocate_retrying(endpoints: &[String], owner: &str) -> Option<String> {
    let req = requests::allocate("", "10.20.0.0/16")
        .request_id(format!("rid-{owner}"))
        .container(owner)
        .cni_network("n")
        .build();
    for attempt in 0..400 {
        let mut r = tonic::Request::new(req.clone());
        r.set_timeout(Duration::from_secs(3));
        match client_at(&endpoints[attempt % endpoints.len()]).allocate(r).await {
            Ok(resp) => return Some(resp.into_inner().leases[0].ip.clone()),
            // A definite answer about the request itself ends it; anything else (node down,
            // connection reset mid-call, no leader, timeout) is retried with the same request id.
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::ResourceExhausted
                        | tonic::Code::AlreadyExists
                        | tonic::Code::FailedPrecondition
                ) =>
            {
                panic!("unexpected error for {owner}: {s:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    None
}

/// Waits until `target` allocations were acknowledged (bounded: 180 s, a bound for a loaded
/// 2-core machine, not a speed), failing early if a client task died.
async fn wait_for_progress<T>(progress: &AtomicUsize, target: usize, tasks: &[tokio::task::JoinHandle<T>]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while progress.load(Ordering::Relaxed) < target {
        assert!(
            tasks.iter().all(|t| !t.is_finished()) || progress.load(Ordering::Relaxed) >= target,
            "a client task ended early"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress: {} of {target} acknowledged",
            progress.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_loses_no_acknowledged_allocation() {
    let mut p = cluster(3);
    let leader = p.leader().await;
    let endpoints: Arc<Vec<String>> = Arc::new(p.endpoints().to_vec());
    let progress = Arc::new(AtomicUsize::new(0));

    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 200;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (endpoints, progress) = (endpoints.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_CLIENT {
                let owner = format!("c{client}-{i}");
                if let Some(ip) = allocate_retrying(&endpoints, &owner).await {
                    acked.push((format!("{owner}/eth0"), ip));
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }
            acked
        }));
    }
    // Kill the leader once a quarter of the writes were acknowledged (progress, not time), and
    // bring it back once half were.
    wait_for_progress(&progress, CLIENTS * PER_CLIENT / 4, &tasks).await;
    p.kill(leader);
    wait_for_progress(&progress, CLIENTS * PER_CLIENT / 2, &tasks).await;
    p.start_node(leader);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len(), CLIENTS * PER_CLIENT, "every allocation was eventually acknowledged");

    // Every node, including the one killed and restarted, holds every acknowledged allocation.
    let last = p.leader().await;
    let expected: BTreeMap<String, String> = acked.into_iter().collect();
    for id in 0..3u64 {
        let mut table = BTreeMap::new();
        for _ in 0..300 {
            // Linearizable reads are answered by the leader; compare the restarted node's own
            // state machine through its local view of the count as well.
            let mut c = p.client(id);
            if let Ok(all) = c.list_allocations(requests::list_all(false).build()).await {
                table = all
                    .into_inner()
                    .allocations
                    .into_iter()
                    .map(|a| {
                        let att = a.attachment.unwrap();
                        (format!("{}/{}", att.container_id, att.ifname), a.ip)
                    })
                    .collect();
                let local = c.status(pb::StatusRequest { local: true }).await.unwrap().into_inner();
                if local.allocations as usize == expected.len() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(table, expected, "node {id} (leader {last}) holds exactly the acknowledged allocations");
        let local = p.client(id).status(pb::StatusRequest { local: true }).await.unwrap().into_inner();
        assert_eq!(local.allocations as usize, expected.len(), "node {id}'s own state machine caught up");
    }
    let mut ips: Vec<&String> = expected.values().collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), expected.len(), "no address twice");
}

/// TLS is the default: without certificate files a node and `whereabouts-ctl` refuse to run
/// unless plain TCP is asked for with `--insecure`, and they say how to fix it.
#[test]
fn plain_tcp_needs_an_explicit_insecure_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = std::process::Command::new(env!("CARGO_BIN_EXE_whereabouts-node"))
        .args(["--id", "0", "--listen", "127.0.0.1:0", "--initial-cluster", "0=127.0.0.1:1"])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("WHEREABOUTS_INSECURE")
        .output()
        .unwrap();
    assert!(!node.status.success(), "a node without TLS files and without --insecure must not start");
    let stderr = String::from_utf8_lossy(&node.stderr);
    assert!(stderr.contains("TLS is required") && stderr.contains("--insecure"), "{stderr}");
    assert!(!data.exists(), "nothing was written to the data directory");

    let ctl = std::process::Command::new(env!("CARGO_BIN_EXE_whereabouts-ctl"))
        .args(["--endpoints", "127.0.0.1:1", "status"])
        .env_remove("WHEREABOUTS_INSECURE")
        .output()
        .unwrap();
    assert!(!ctl.status.success());
    assert!(
        String::from_utf8_lossy(&ctl.stderr).contains("TLS is required"),
        "{}",
        String::from_utf8_lossy(&ctl.stderr)
    );

    // The environment variable takes the usual boolean spellings.
    for value in ["1", "true", "yes"] {
        let insecure = std::process::Command::new(env!("CARGO_BIN_EXE_whereabouts-ctl"))
            .args(["--endpoints", "127.0.0.1:1", "--timeout", "0.2", "status"])
            .env("WHEREABOUTS_INSECURE", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&insecure.stderr);
        assert!(!insecure.status.success(), "nothing listens on port 1");
        assert!(!stderr.contains("TLS is required") && !stderr.contains("invalid value"), "{value}: {stderr}");
    }

    // Half of the TLS files is an error too, and --insecure does not mix with them.
    let half = std::process::Command::new(env!("CARGO_BIN_EXE_whereabouts-ctl"))
        .args(["--endpoints", "127.0.0.1:1", "--insecure", "--tls-ca", "/nonexistent/ca.pem", "status"])
        .output()
        .unwrap();
    assert!(!half.status.success());
    assert!(
        String::from_utf8_lossy(&half.stderr).contains("cannot be combined"),
        "{}",
        String::from_utf8_lossy(&half.stderr)
    );
}

/// Regression: an empty node started with `--initial-cluster-state existing` and no members to
/// ask (the documented way to add a member used to leave `--initial-cluster` out) waited
/// forever, so the `add-learner` that followed added a node that never took part. It now
/// refuses to start and names the flag; with members to ask it starts and waits to be added.
#[test]
fn an_empty_joiner_without_members_to_ask_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    // Runs the node for at most `secs`: its exit status and stderr, or None if it still ran.
    let run = |extra: &[&str], data: &str, secs: u64| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whereabouts-node"))
            .args(["--id", "3", "--listen", "127.0.0.1:0", "--insecure", "--initial-cluster-state", "existing"])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.path().join(data))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
                return Some((status, stderr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        None
    };
    let (status, stderr) = run(&[], "alone", 20).expect("a joiner with no one to ask must exit, not wait forever");
    assert!(!status.success());
    assert!(stderr.contains("--initial-cluster listing members"), "{stderr}");
    // Only itself to ask is no one to ask.
    let (status, _) = run(&["--initial-cluster", "3=127.0.0.1:1"], "itself", 20).expect("must exit");
    assert!(!status.success());
    // With a member to ask (none answers here) it keeps running, waiting to find out.
    assert!(run(&["--initial-cluster", "0=127.0.0.1:1"], "with-peer", 3).is_none(), "it waits for the members");
}
