//! DEL while the cluster cannot be reached, through the real binary against a real 3-node cluster
//! that is stopped and started again (issue 17). By default the DEL succeeds, as whereabouts' does,
//! and its release waits under `state_dir` until a later invocation on the node reaches the
//! cluster and delivers it (the node logs it and counts it); until then the address stays held.
//! With `strict_del: true` the DEL fails with code 11 and nothing waits.
//!
//! Needs the node binary (see `testkit::node_binary`); no root.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions};

const WHEREABOUTS: &str = env!("CARGO_BIN_EXE_whereabouts");
const NETWORK: &str = "del-unreachable";

fn conf(cluster: &LoopbackCluster, state_dir: &Path, extra: Value) -> String {
    let mut ipam = json!({
        "type": "whereabouts", "range": "10.70.0.0/24", "network_name": NETWORK,
        "endpoints": cluster.endpoints(), "timeout_seconds": 2, "state_dir": state_dir,
    });
    for (k, v) in extra.as_object().expect("object") {
        ipam[k] = v.clone();
    }
    json!({"cniVersion": "1.0.0", "name": "n", "ipam": ipam}).to_string()
}

/// Runs the plugin; returns (exit code, stdout, stderr). Bounded: 30 s.
fn plugin(command: &str, container: &str, stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(WHEREABOUTS)
        .env_clear()
        .envs([
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", container),
            ("CNI_NETNS", "/var/run/netns/none"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p"),
            ("NODE_NAME", "pending-node"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn whereabouts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("whereabouts {command} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    (child.wait().expect("status").code().unwrap_or(-1), out, err)
}

fn held(cluster: &LoopbackCluster) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = cluster
        .allocations(NETWORK)
        .into_iter()
        .map(|a| (a.ip, a.attachment.map(|a| a.container_id).unwrap_or_default()))
        .collect();
    v.sort();
    v
}

fn pending(state_dir: &Path) -> usize {
    std::fs::read_dir(state_dir.join("pending-releases"))
        .map(|d| d.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

fn restart(cluster: &mut LoopbackCluster) {
    for id in 0..3 {
        cluster.start_node(id);
    }
    cluster.wait_ready(Duration::from_secs(60));
}

#[test]
fn del_succeeds_while_the_cluster_is_down_and_is_delivered_by_the_next_call() {
    let mut cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3).start_ready(Duration::from_secs(60));
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let stdin = conf(&cluster, &state, json!({}));

    let (code, out, err) = plugin("ADD", "c1", &stdin);
    assert_eq!(code, 0, "ADD: {out} {err}");
    assert_eq!(held(&cluster), vec![("10.70.0.1".to_string(), "c1".to_string())]);

    cluster.stop();
    let (code, out, err) = plugin("DEL", "c1", &stdin);
    assert_eq!((code, out.as_str()), (0, ""), "DEL with the cluster down succeeds: {err}");
    assert!(err.contains("delivered by a later call"), "the DEL says what it did: {err}");
    assert_eq!(pending(&state), 1, "the release waits on the node");

    restart(&mut cluster);
    assert_eq!(held(&cluster), vec![("10.70.0.1".to_string(), "c1".to_string())], "held until delivered");
    let (code, out, err) = plugin("ADD", "c2", &stdin);
    assert_eq!(code, 0, "ADD after the outage: {out} {err}");
    assert_eq!(held(&cluster), vec![("10.70.0.2".to_string(), "c2".to_string())], "c1's DEL was delivered");
    assert_eq!(pending(&state), 0, "nothing waits any more");
    let logs = cluster.logs();
    assert!(logs.contains("could not reach the cluster when it ran is delivered now"), "the node counts it:\n{logs}");
}

#[test]
fn strict_del_fails_with_code_11_while_the_cluster_is_down() {
    let mut cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3).start_ready(Duration::from_secs(60));
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let stdin = conf(&cluster, &state, json!({"strict_del": true}));
    let (code, out, err) = plugin("ADD", "c1", &stdin);
    assert_eq!(code, 0, "ADD: {out} {err}");

    cluster.stop();
    let (code, out, _) = plugin("DEL", "c1", &stdin);
    let printed: Value = serde_json::from_str(&out).expect("a CNI error");
    assert_eq!((code, printed["code"].as_u64()), (1, Some(11)), "{out}");
    assert_eq!(pending(&state), 0, "strict: nothing waits");

    restart(&mut cluster);
    assert_eq!(held(&cluster), vec![("10.70.0.1".to_string(), "c1".to_string())]);
    let (code, out, err) = plugin("DEL", "c1", &stdin);
    assert_eq!(code, 0, "the retried DEL frees it: {out} {err}");
    assert_eq!(held(&cluster), vec![]);
}
