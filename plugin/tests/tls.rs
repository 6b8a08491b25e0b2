//! The plugin against a real 3-node cluster speaking mutual TLS: with its node certificate it
//! allocates (and the cluster records its node from the certificate); without TLS settings it
//! cannot talk to the cluster at all (CNI error 11 within the budget).

mod e2e {
    pub mod cluster;
}

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use plugin::testing::invoke;
use plugin::TcpFactory;
use serde_json::json;

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sibling(name: &str) -> PathBuf {
    e2e::cluster::node_binary().with_file_name(name)
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
    let ports: Vec<u16> = e2e::cluster::free_ports(3);
    let mut init = Command::new(sibling("whereabouts-ctl"));
    init.args(["certs", "init", "--out", certs.to_str().unwrap(), "--node", "worker-1"]);
    for i in 0..3 {
        init.args(["--peer", &format!("n{i}=127.0.0.1")]);
    }
    assert!(init.status().unwrap().success(), "certs init");
    let cluster: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{i}=127.0.0.1:{p}")).collect();
    let mut nodes = Nodes(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let child = Command::new(e2e::cluster::node_binary())
            .args([
                "--id",
                &i.to_string(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--initial-cluster",
                &cluster.join(","),
            ])
            .args(["--data-dir", dir.path().join(format!("d{i}")).to_str().unwrap()])
            .args(["--tls-ca", certs.join("ca.pem").to_str().unwrap()])
            .args(["--tls-cert", certs.join(format!("peer-n{i}.pem")).to_str().unwrap()])
            .args(["--tls-key", certs.join(format!("peer-n{i}-key.pem")).to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        nodes.0.push(child);
    }
    let endpoints: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
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
    drop(nodes);
}
