//! The plugin against a real 3-node cluster speaking mutual TLS: with its node certificate it
//! allocates (and the cluster records its node from the certificate); without TLS settings it
//! cannot talk to the cluster at all (CNI error 11 within the budget). The real binary, with no
//! node name in its environment, takes the certificate's; a node name that is not the
//! certificate's is refused with code 104 naming both.

mod e2e;

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::cni::{exec, Call, WHEREABOUTS};
use std::process::Command;

use plugin::testing::invoke;
use plugin::TcpFactory;
use serde_json::json;
use testkit::loopback_cluster::LoopbackOptions;

fn sibling(name: &str) -> PathBuf {
    testkit::node_binary::locate().with_file_name(name)
}

fn conf(endpoints: &[String], tls: Option<&Path>) -> String {
    let mut ipam =
        json!({"type": "whereabouts", "range": "10.60.0.0/24", "endpoints": endpoints, "timeout_seconds": 3});
    if let Some(dir) = tls {
        ipam["tls_ca"] = json!(dir.join("ca.pem"));
        ipam["tls_cert"] = json!(dir.join("node-worker-1.pem"));
        ipam["tls_key"] = json!(dir.join("node-worker-1-key.pem"));
    }
    json!({"cniVersion": "1.1.0", "name": "tls-net", "ipam": ipam}).to_string()
}

fn run(command: &str, conf: &str) -> plugin::testing::Outcome {
    let vars = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", "tls-container"),
        ("CNI_NETNS", "/var/run/netns/none"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("NODE_NAME", "worker-1"),
    ];
    invoke(&vars, conf, &TcpFactory)
}

#[test]
fn the_plugin_speaks_mutual_tls_with_its_node_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let mut init = Command::new(sibling("whereabouts-ctl"));
    init.args(["certs", "init", "--out", certs.to_str().unwrap(), "--node", "worker-1"]);
    for i in 0..3 {
        init.args(["--peer", &format!("n{i}=127.0.0.1")]);
    }
    assert!(init.status().unwrap().success(), "certs init");
    let tls = certs.clone();
    let cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3)
        .tls(move |id| {
            let file = |name: String| tls.join(name).display().to_string();
            vec![
                "--tls-ca".into(),
                file("ca.pem".into()),
                "--tls-cert".into(),
                file(format!("peer-n{id}.pem")),
                "--tls-key".into(),
                file(format!("peer-n{id}-key.pem")),
            ]
        })
        .start();
    let endpoints = cluster.endpoints().to_vec();
    let with_tls = conf(&endpoints, Some(&certs));
    // STATUS answers 0 once the cluster elected a leader (bounded: 60 tries of a 3 s budget).
    let ready = (0..60).any(|_| run("STATUS", &with_tls).code == 0);
    assert!(ready, "the TLS cluster never became ready for the plugin");
    let add = run("ADD", &with_tls);
    assert_eq!(add.code, 0, "{} {}", add.stdout, add.stderr);
    assert_eq!(add.json()["ips"][0]["address"], "10.60.0.1/24");
    let without = run("ADD", &conf(&endpoints, None));
    assert_eq!(without.error_code(), 11, "no TLS settings: the cluster cannot be reached");
    let del = run("DEL", &with_tls);
    assert_eq!(del.code, 0, "{}", del.stderr);

    // Regression (issue 17): the binary without NODE_NAME used the host name, which the cluster
    // refused for a worker-1 certificate (reported as 999). Now the certificate names the node.
    let bare =
        |command| Call { command, container_id: "tls-bare", netns: "/var/run/netns/none", ifname: "eth0", env: vec![] };
    let add = exec(Path::new(WHEREABOUTS), None, &bare("ADD"), &with_tls, Duration::from_secs(30));
    assert_eq!(add.code, 0, "node name from the certificate: {}\n{}", add.stdout, add.stderr);
    let mut other: serde_json::Value = serde_json::from_str(&with_tls).unwrap();
    other["ipam"]["node_name"] = json!("not-this-node");
    let refused = exec(Path::new(WHEREABOUTS), None, &bare("ADD"), &other.to_string(), Duration::from_secs(30));
    assert_eq!(refused.error_code(), 104, "{}", refused.stdout);
    let msg = refused.json["msg"].as_str().unwrap();
    assert!(msg.contains("\"not-this-node\"") && msg.contains("worker-1") && msg.contains("ipam.node_name"), "{msg}");
    let del = exec(Path::new(WHEREABOUTS), None, &bare("DEL"), &with_tls, Duration::from_secs(30));
    assert_eq!(del.code, 0, "{}", del.stderr);
    drop(cluster);
}
