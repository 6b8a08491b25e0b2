//! End to end: Debian's real `bridge` (and `macvlan`) plugins delegating IPAM to our
//! `whereabouts` binary, against a real local 3-node `whereabouts-node` cluster, in network
//! namespaces this test creates. The bridge, the cluster and every plugin run inside a "host"
//! namespace owned by the test; containers are further namespaces. Everything is removed on drop.
//!
//! Needs root, iproute2, ping, `/usr/lib/cni/{bridge,macvlan}` and the node binary (see
//! `testkit::node_binary`). Run: `cargo test -p plugin --test e2e_bridge` (after building
//! `whereabouts-node` into the same target directory, or with `WHEREABOUTS_NODE_BIN=...`).

mod e2e;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use e2e::cni::{debian_plugin, exec, Call, Outcome, WHEREABOUTS};
use proto::ipam::ReleaseIpRequest;
use serde_json::{json, Value};
use testkit::loopback_cluster::{connect, LoopbackCluster, LoopbackOptions};
use testkit::netns::{block_on_in, can_create_namespaces, Netns};

/// One test at a time: each starts its own cluster, and the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());
/// Bound on any single plugin call.
const CALL_TIMEOUT: Duration = Duration::from_secs(40);
/// Slack for scheduling on a loaded machine; never a speed assertion.
const MARGIN: Duration = Duration::from_secs(5);

/// A cluster and namespaces for one test. Fields drop in order: nodes first, then namespaces.
struct Fixture {
    cluster: LoopbackCluster,
    containers: Vec<Netns>,
    host: Netns,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(tag: &str, containers: usize) -> Fixture {
        if let Err(why) = can_create_namespaces() {
            panic!("{why}");
        }
        debian_plugin("bridge");
        let pid = std::process::id();
        let netns = |name: String| Netns::create(&name).unwrap_or_else(|e| panic!("netns {name}: {e}"));
        let host = netns(format!("wb-{tag}-{pid}-h"));
        let containers = (0..containers).map(|i| netns(format!("wb-{tag}-{pid}-{i}"))).collect();
        let cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3)
            .netns(Some(host.name()))
            .start_ready(Duration::from_secs(60));
        let dir = tempfile::tempdir().expect("tempdir");
        Fixture { cluster, containers, host, dir }
    }

    fn host(&self) -> Option<&str> {
        Some(self.host.name())
    }

    /// The whereabouts `ipam` section for this cluster.
    fn ipam(&self, range: &str, extra: Value) -> Value {
        let mut ipam = json!({
            "type": "whereabouts",
            "range": range,
            "endpoints": self.cluster.endpoints(),
            "timeout_seconds": 20,
            "log_file": self.dir.path().join("whereabouts.log").to_str().unwrap(),
            "log_level": "debug",
        });
        ipam.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        ipam
    }

    fn bridge_conf(&self, version: &str, range: &str) -> Value {
        json!({"cniVersion": version, "name": "wbe2e", "type": "bridge", "bridge": "wbbr0",
               "isGateway": false, "ipMasq": false, "ipam": self.ipam(range, json!({}))})
    }

    fn bridge(&self, call: &Call, conf: &Value) -> Outcome {
        exec(&debian_plugin("bridge"), self.host(), call, &conf.to_string(), CALL_TIMEOUT)
    }

    fn ours(&self, call: &Call, conf: &Value) -> Outcome {
        exec(Path::new(WHEREABOUTS), self.host(), call, &conf.to_string(), CALL_TIMEOUT)
    }

    fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("whereabouts.log")).unwrap_or_default()
    }
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The IPv4 address (without prefix) and full CIDR of a result's first IP.
fn first_ip(result: &Value) -> (String, String) {
    let cidr = result["ips"][0]["address"].as_str().unwrap_or_else(|| panic!("no ips in {result:#}")).to_string();
    (cidr.split('/').next().unwrap().to_string(), cidr)
}

fn ping(from: &Netns, to: &str) {
    let out = from.exec("ping", &["-c", "1", "-W", "3", to]).expect("run ping");
    assert!(out.status.success(), "ping {to} from {}: {}", from.name(), String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bridge_two_namespaces_get_distinct_addresses_ping_and_del_frees_them() {
    let _g = serial();
    let f = Fixture::new("br", 2);
    let conf = f.bridge_conf("1.0.0", "10.77.0.0/24");
    let (p0, p1) = (f.containers[0].path(), f.containers[1].path());
    let a = f.bridge(&Call::new("ADD", "e2e-c0", &p0), &conf).ok();
    let b = f.bridge(&Call::new("ADD", "e2e-c1", &p1), &conf).ok();
    let (ip_a, cidr_a) = first_ip(&a.json);
    let (ip_b, cidr_b) = first_ip(&b.json);
    assert_ne!(ip_a, ip_b);
    for cidr in [&cidr_a, &cidr_b] {
        assert!(cidr.starts_with("10.77.0.") && cidr.ends_with("/24"), "{cidr}");
    }
    assert!(f.containers[0].ip(&["-o", "addr", "show", "eth0"]).expect("ip addr").contains(&cidr_a));
    assert!(f.containers[1].ip(&["-o", "addr", "show", "eth0"]).expect("ip addr").contains(&cidr_b));
    ping(&f.containers[0], &ip_b);
    ping(&f.containers[1], &ip_a);
    assert_eq!(f.cluster.allocations("").len(), 2, "{}", f.plugin_log());

    // A repeated ADD of the same attachment returns the same address (idempotent).
    let again = f.ours(&Call::new("ADD", "e2e-c0", &p0), &conf).ok();
    assert_eq!(first_ip(&again.json).1, cidr_a);

    f.bridge(&Call::new("DEL", "e2e-c0", &p0), &conf).ok();
    // The second container's namespace is gone before its DEL: still success, still freed.
    let gone = f.containers[1].name().to_string();
    testkit::netns::ip(&["netns", "del", &gone]).expect("delete the namespace");
    f.bridge(&Call::new("DEL", "e2e-c1", &p1), &conf).ok();
    f.bridge(&Call::new("DEL", "e2e-c1", &p1), &conf).ok();
    assert!(f.cluster.allocations("").is_empty(), "DEL frees every address");
}

/// The configuration `conf` with its `ipam` replaced, as our plugin receives it from `bridge`.
fn wrap(conf: &Value, ipam: Value) -> Value {
    let mut c = conf.clone();
    c["ipam"] = ipam;
    c
}

#[test]
fn check_passes_after_add_and_fails_after_a_release_behind_its_back() {
    let _g = serial();
    let f = Fixture::new("ck", 1);
    let conf = f.bridge_conf("1.0.0", "10.78.0.0/24");
    let p0 = f.containers[0].path();
    let added = f.bridge(&Call::new("ADD", "e2e-ck", &p0), &conf).ok();
    let mut check_conf = conf.clone();
    check_conf["prevResult"] = added.json.clone();
    f.bridge(&Call::new("CHECK", "e2e-ck", &p0), &check_conf).ok();

    let (ip, _) = first_ip(&added.json);
    let endpoint = f.cluster.endpoint(1).to_string();
    let released = block_on_in(f.host(), || async move {
        let mut c = connect(&endpoint).await.expect("connect");
        let req = ReleaseIpRequest {
            request_id: "e2e-release-behind-its-back".into(),
            network_name: String::new(),
            ip,
            container_id: "e2e-ck".into(),
            ifname: "eth0".into(),
        };
        c.release_ip(req).await.expect("ReleaseIp").into_inner().released
    });
    assert_eq!(released.len(), 1);
    let failed = f.bridge(&Call::new("CHECK", "e2e-ck", &p0), &check_conf);
    assert_eq!(failed.error_code(), 103, "{}\n{}", failed.stdout, failed.stderr);
    f.bridge(&Call::new("DEL", "e2e-ck", &p0), &conf).ok();
}

#[test]
fn gc_releases_this_nodes_attachments_that_are_not_listed() {
    let _g = serial();
    let f = Fixture::new("gc", 0);
    let conf = wrap(&json!({"cniVersion": "1.1.0", "name": "wbe2e-gc"}), f.ipam("10.79.0.0/24", json!({})));
    let ns = f.host.path();
    for id in ["gc-keep", "gc-drop"] {
        f.ours(&Call::new("ADD", id, &ns), &conf).ok();
    }
    let mut other_node = Call::new("ADD", "gc-other-node", &ns);
    other_node.env = vec![("NODE_NAME", "another-node")];
    f.ours(&other_node, &conf).ok();
    assert_eq!(f.cluster.allocations("").len(), 3);

    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/valid-attachments"] = json!([{"containerID": "gc-keep", "ifname": "eth0"}]);
    f.ours(
        &Call { command: "GC", container_id: "", netns: "", ifname: "", env: vec![("NODE_NAME", e2e::cni::NODE)] },
        &gc_conf,
    )
    .ok();
    let mut left: Vec<String> = f
        .cluster
        .allocations("")
        .into_iter()
        .map(|a| a.attachment.map(|a| a.container_id).unwrap_or_default())
        .collect();
    left.sort();
    assert_eq!(left, vec!["gc-keep", "gc-other-node"], "GC never touches another node's attachments");
}

#[test]
fn status_and_add_fail_the_right_way_when_the_cluster_is_stopped() {
    let _g = serial();
    let mut f = Fixture::new("st", 1);
    let status_conf = wrap(&json!({"cniVersion": "1.1.0", "name": "wbe2e"}), f.ipam("10.80.0.0/24", json!({})));
    let status = Call { command: "STATUS", container_id: "", netns: "", ifname: "", env: vec![] };
    f.ours(&status, &status_conf).ok();

    f.cluster.stop();
    let down = f.ours(&status, &status_conf);
    assert_eq!(down.error_code(), 50, "{}", down.stdout);

    let budget = Duration::from_secs(2);
    let conf =
        wrap(&json!({"cniVersion": "1.0.0", "name": "wbe2e"}), f.ipam("10.80.0.0/24", json!({"timeout_seconds": 2})));
    let start = Instant::now();
    let add = f.ours(&Call::new("ADD", "st-c0", &f.containers[0].path()), &conf);
    assert_eq!(add.error_code(), 11, "{}", add.stdout);
    assert!(start.elapsed() < budget + MARGIN, "ADD took {:?}", start.elapsed());

    let mut bridged = f.bridge_conf("1.0.0", "10.80.0.0/24");
    bridged["ipam"]["timeout_seconds"] = json!(2);
    let through_bridge = f.bridge(&Call::new("ADD", "st-c1", &f.containers[0].path()), &bridged);
    assert_eq!(through_bridge.error_code(), 11, "bridge passes our code through: {}", through_bridge.stdout);
}

#[test]
fn macvlan_namespaces_get_distinct_addresses_and_ping() {
    let _g = serial();
    let f = Fixture::new("mv", 2);
    debian_plugin("macvlan");
    // The parent link: a dummy where the kernel has it, else one end of a veth pair (both ends in
    // the test's host namespace).
    if f.host.ip(&["link", "add", "wbparent0", "type", "dummy"]).is_err() {
        f.host.ip(&["link", "add", "wbparent0", "type", "veth", "peer", "name", "wbparent1"]).expect("veth");
        f.host.ip(&["link", "set", "wbparent1", "up"]).expect("veth up");
    }
    f.host.ip(&["link", "set", "wbparent0", "up"]).expect("parent up");
    let conf = json!({"cniVersion": "1.0.0", "name": "wbe2e-mv", "type": "macvlan", "master": "wbparent0",
                      "mode": "bridge", "ipam": f.ipam("10.81.0.0/24", json!({}))});
    let (p0, p1) = (f.containers[0].path(), f.containers[1].path());
    let mv = debian_plugin("macvlan");
    let a = exec(&mv, f.host(), &Call::new("ADD", "mv-c0", &p0), &conf.to_string(), CALL_TIMEOUT).ok();
    let b = exec(&mv, f.host(), &Call::new("ADD", "mv-c1", &p1), &conf.to_string(), CALL_TIMEOUT).ok();
    let (ip_a, cidr_a) = first_ip(&a.json);
    let (ip_b, _) = first_ip(&b.json);
    assert_ne!(ip_a, ip_b);
    assert!(f.containers[0].ip(&["-o", "addr", "show", "eth0"]).expect("ip addr").contains(&cidr_a));
    ping(&f.containers[0], &ip_b);
    for (id, p) in [("mv-c0", &p0), ("mv-c1", &p1)] {
        exec(&mv, f.host(), &Call::new("DEL", id, p), &conf.to_string(), CALL_TIMEOUT).ok();
    }
    assert!(f.cluster.allocations("").is_empty());
}
