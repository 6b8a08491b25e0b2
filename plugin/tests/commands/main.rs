//! Every CNI command × version × error path, through `plugin::run` with an in-memory `Env` and
//! the real gRPC client against in-process mock IPAM servers on 127.0.0.1 (see
//! `plugin::testing`). One test binary, one module per topic.

mod add;
mod check;
mod del;
mod errors;
mod gc;
mod retry;
mod status;
mod version;

use plugin::testing::{invoke, MockServer, Outcome};
use plugin::TcpFactory;
use serde_json::{json, Value};

/// Every supported version.
pub const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The container id every test uses.
pub const CONTAINER: &str = "ctr-1";
/// Kubelet-style `CNI_ARGS`.
pub const K8S_ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns-a;K8S_POD_NAME=pod-a;K8S_POD_UID=uid-a;FOO=bar";

/// A network configuration: `ipam` is merged over a one-range whereabouts section.
pub fn conf(version: &str, endpoints: &[String], ipam: Value) -> String {
    let mut section = json!({"type": "whereabouts", "range": "10.10.0.0/16", "endpoints": endpoints});
    merge(&mut section, ipam);
    json!({"cniVersion": version, "name": "net-a", "type": "bridge", "ipam": section}).to_string()
}

/// Shallow merge of `extra` into `base` (a `null` removes the key).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
}

/// The environment of `command` as a kubelet-driven runtime sets it.
pub fn vars(command: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", CONTAINER),
        ("CNI_NETNS", "/var/run/netns/test"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", K8S_ARGS),
        ("CNI_PATH", "/opt/cni/bin"),
        ("NODE_NAME", "node-a"),
    ]
}

/// Runs `command` with `stdin` through the real TCP client.
pub fn run(command: &'static str, stdin: &str) -> Outcome {
    invoke(&vars(command), stdin, &TcpFactory)
}

/// A mock server and its endpoint list.
pub fn server() -> (MockServer, Vec<String>) {
    let s = MockServer::start(plugin::testing::MockIpam::new());
    let e = vec![s.endpoint()];
    (s, e)
}

/// Asserts success and returns the result JSON (or `Null` when nothing was printed).
pub fn ok(out: &Outcome) -> Value {
    assert_eq!(out.code, 0, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    if out.stdout.trim().is_empty() {
        Value::Null
    } else {
        out.json()
    }
}

/// Asserts a CNI error with `code` printed in `version`, and returns it.
pub fn err(out: &Outcome, code: u64, version: &str) -> Value {
    assert_eq!(out.error_code(), code, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    let e = out.json();
    assert_eq!(e["cniVersion"], version, "{e}");
    assert!(e["msg"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    e
}
