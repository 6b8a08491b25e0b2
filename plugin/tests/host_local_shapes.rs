//! The same configurations through Debian's `host-local` (the reference IPAM plugin) and through
//! our `whereabouts` binary (exec'd as a runtime does, against the in-process mock IPAM): both
//! results must have the spec's shape in every version — same top-level keys, `"version"` per IP
//! exactly in 0.x, same families and prefix lengths in the same order, same routes and DNS keys.
//!
//! Needs `/usr/lib/cni/host-local` (package `containernetworking-plugins`). Without it the test
//! says so and passes, unless `CI` is set: then it fails.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use plugin::testing::{MockIpam, MockServer};
use serde_json::{json, Value};

const HOST_LOCAL: &str = "/usr/lib/cni/host-local";
const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// One scenario: the whereabouts `ipam` keys and the equivalent host-local ones.
struct Scenario {
    name: &'static str,
    whereabouts: Value,
    host_local: Value,
}

fn scenarios(resolv_conf: &str) -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ipv4 with gateway",
            whereabouts: json!({"range": "10.30.0.0/24", "gateway": "10.30.0.1"}),
            host_local: json!({"ranges": [[{"subnet": "10.30.0.0/24", "gateway": "10.30.0.1"}]]}),
        },
        Scenario {
            name: "start, end, routes",
            whereabouts: json!({"range": "10.31.0.0/16", "range_start": "10.31.1.10", "range_end": "10.31.1.20",
                "gateway": "10.31.0.1", "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.31.0.254"}]}),
            host_local: json!({"ranges": [[{"subnet": "10.31.0.0/16", "rangeStart": "10.31.1.10",
                "rangeEnd": "10.31.1.20", "gateway": "10.31.0.1"}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.31.0.254"}]}),
        },
        Scenario {
            name: "dual stack",
            whereabouts: json!({"ipRanges": [{"range": "10.32.0.0/24"}, {"range": "fd00:32::/64"}], "gateway": "10.32.0.1"}),
            host_local: json!({"ranges": [[{"subnet": "10.32.0.0/24", "gateway": "10.32.0.1"}], [{"subnet": "fd00:32::/64"}]]}),
        },
        Scenario {
            name: "ipv6 with dns",
            whereabouts: json!({"range": "fd00:33::/120", "gateway": "fd00:33::1",
                "dns": {"nameservers": ["10.0.0.53"], "domain": "example.com", "search": ["example.com"]}}),
            host_local: json!({"ranges": [[{"subnet": "fd00:33::/120", "gateway": "fd00:33::1"}]], "resolvConf": resolv_conf}),
        },
    ]
}

struct Run {
    code: Option<i32>,
    json: Value,
}

fn exec(binary: &str, command: &str, container: &str, stdin: &str) -> Run {
    let mut child = Command::new(binary)
        .env_clear()
        .envs([
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", container),
            ("CNI_NETNS", "/var/run/netns/shape-test"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/usr/lib/cni"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Run { code: out.status.code(), json: Value::Null };
    }
    let json = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{binary} {command}: stdout is not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    Run { code: out.status.code(), json }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

/// (IP version field, family, prefix length, keys other than `gateway`) per IP.
fn ip_shapes(result: &Value) -> Vec<(Option<String>, bool, String, Vec<String>)> {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| {
            let address = ip["address"].as_str().unwrap();
            let prefix = address.rsplit_once('/').expect("address has a prefix").1.to_string();
            let mut k = keys(ip);
            k.retain(|k| k != "gateway");
            (ip.get("version").and_then(Value::as_str).map(str::to_string), address.contains(':'), prefix, k)
        })
        .collect()
}

/// Top-level keys, without a 1.x `dns` that is empty: Debian's host-local links libcni 1.1, which
/// prints `"dns": {}` in 1.x results; whereabouts v0.9.4 links libcni 1.3, which leaves an empty
/// `dns` out, and we print what whereabouts prints.
fn top_keys(v: &Value) -> Vec<String> {
    let mut k = keys(v);
    let v1 = v["cniVersion"].as_str().is_some_and(|c| c.starts_with('1'));
    if v1 && v["dns"].as_object().is_some_and(|d| d.is_empty()) {
        k.retain(|k| k != "dns");
    }
    k
}

fn assert_same_shape(ours: &Value, theirs: &Value, what: &str) {
    assert_eq!(top_keys(ours), top_keys(theirs), "{what}: top-level keys\nours {ours:#}\nhost-local {theirs:#}");
    assert_eq!(ip_shapes(ours), ip_shapes(theirs), "{what}: ips\nours {ours:#}\nhost-local {theirs:#}");
    assert_eq!(ours["routes"], theirs["routes"], "{what}: routes");
    assert_eq!(keys(&ours["dns"]), keys(&theirs["dns"]), "{what}: dns keys\nours {ours:#}\nhost-local {theirs:#}");
}

fn host_local_present() -> bool {
    if Path::new(HOST_LOCAL).exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "{HOST_LOCAL} is missing under CI: install containernetworking-plugins");
    eprintln!("SKIPPED: {HOST_LOCAL} not found (apt-get install containernetworking-plugins); set CI=true to fail");
    false
}

#[test]
fn results_have_the_same_shape_as_host_local_in_every_version() {
    if !host_local_present() {
        return;
    }
    let ours = env!("CARGO_BIN_EXE_whereabouts");
    let server = MockServer::start(MockIpam::new());
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.0.0.53\ndomain example.com\nsearch example.com\n").unwrap();
    let supported = exec(HOST_LOCAL, "VERSION", "v", "{\"cniVersion\":\"1.0.0\"}").json["supportedVersions"].clone();
    let mut compared = 0;
    for (i, s) in scenarios(resolv.to_str().unwrap()).into_iter().enumerate() {
        for v in VERSIONS {
            let container = format!("shape-{i}-{}", v.replace('.', "-"));
            let mut wb = json!({"type": "whereabouts", "endpoints": [server.endpoint()]});
            wb.as_object_mut().unwrap().extend(s.whereabouts.as_object().unwrap().clone());
            let mut hl = json!({"type": "host-local", "dataDir": dir.path().join("host-local").to_str().unwrap()});
            hl.as_object_mut().unwrap().extend(s.host_local.as_object().unwrap().clone());
            let conf = |ipam: &Value, version: &str| {
                json!({"cniVersion": version, "name": "shapes", "type": "bridge", "ipam": ipam}).to_string()
            };

            let our = exec(ours, "ADD", &container, &conf(&wb, v));
            assert_eq!(our.code, Some(0), "{}: ours {v}: {:#}", s.name, our.json);
            assert_eq!(our.json["cniVersion"], v);
            // host-local 1.1.x speaks up to 1.0.0; 1.1.0 has the same result shape as 1.0.0.
            let (their_version, same_label) = if supported.as_array().unwrap().iter().any(|x| x == v) {
                (v, true)
            } else {
                let refused = exec(HOST_LOCAL, "ADD", &container, &conf(&hl, v));
                assert_eq!(refused.json["code"], 1, "host-local refuses {v} with code 1: {:#}", refused.json);
                ("1.0.0", false)
            };
            let theirs = exec(HOST_LOCAL, "ADD", &container, &conf(&hl, their_version));
            assert_eq!(theirs.code, Some(0), "{}: host-local {their_version}: {:#}", s.name, theirs.json);
            if same_label {
                assert_eq!(theirs.json["cniVersion"], v);
            }
            assert_same_shape(&our.json, &theirs.json, &format!("{} @ {v}", s.name));
            assert_eq!(exec(HOST_LOCAL, "DEL", &container, &conf(&hl, their_version)).code, Some(0));
            assert_eq!(exec(ours, "DEL", &container, &conf(&wb, v)).code, Some(0));
            compared += 1;
        }
    }
    assert_eq!(compared, 20);
}

#[test]
fn both_refuse_check_before_0_4_0_with_code_1() {
    if !host_local_present() {
        return;
    }
    let ours = env!("CARGO_BIN_EXE_whereabouts");
    for v in ["0.3.0", "0.3.1"] {
        let hl = json!({"cniVersion": v, "name": "shapes", "ipam": {"type": "host-local", "subnet": "10.34.0.0/24"}});
        let wb = json!({"cniVersion": v, "name": "shapes", "ipam": {"type": "whereabouts", "range": "10.34.0.0/24"}});
        let theirs = exec(HOST_LOCAL, "CHECK", "c", &hl.to_string());
        let our = exec(ours, "CHECK", "c", &wb.to_string());
        assert_eq!(theirs.json["code"], 1);
        assert_eq!(our.json["code"], 1);
        assert_eq!(our.code, theirs.code);
    }
}
