//! The compatibility table: every row of `tests/data/compat.jsonl` is a network configuration,
//! an environment and a CNI command with the answer whereabouts gives (from its code and its own
//! `_test.go` files; the row's `source` says where), run through the real `whereabouts` binary
//! against a real local 3-node `whereabouts-node` cluster. Where we differ on purpose the row
//! says what whereabouts answers (`whereabouts`) and why we do not (`difference`); `expect` is
//! what we answer. docs/configuration.md lists the differences.
//!
//! Row keys (all optional but `id`, `source`, `command`, `expect`):
//! - `stdin`: the network configuration (`null`: nothing on stdin). The runner adds `endpoints`,
//!   `timeout_seconds` and, unless the configuration or the flat file names one, a `network_name`
//!   unique to the row to every `ipam` object, and points `log_file` at its own directory;
//! - `flat_file`: an object written as the flat file (`"(same as stdin)"`: the configuration
//!   itself, as whereabouts' tests do) and named by `configuration_path`;
//! - `cni_args`, `container_id` (default `c1`), `ifname` (`eth0`), `env` (extra variables),
//!   `env_unset` (variables removed);
//! - `prior`: ADDs run first, each `{container_id, cni_args?, ifname?, stdin?}` (default: the row's
//!   configuration), to hold addresses before the row's command;
//! - `expect`: `code` (0: success), then for a success `result` (the whole printed JSON) or any of
//!   `ips`, `routes`, `dns`; for an error `msg_contains`; and `allocations` (the row's network's
//!   held addresses afterwards: `{ip, container?, pod?}`).
//! - `note`: free text (what the source says about the case).
//!
//! Needs the node binary (see `testkit::node_binary`); no root. Run:
//! `cargo test -p plugin --test compat`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions};

const WHEREABOUTS: &str = env!("CARGO_BIN_EXE_whereabouts");
const TABLE: &str = include_str!("data/compat.jsonl");
/// Bound on one plugin call (its own budget is 10 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(40);

struct Runner {
    cluster: LoopbackCluster,
    dir: tempfile::TempDir,
}

fn ipam_objects(conf: &mut Value) -> Vec<&mut Map<String, Value>> {
    let mut out = Vec::new();
    let Value::Object(top) = conf else { return out };
    let has_plugins = top.contains_key("plugins") && !top.contains_key("type");
    if has_plugins {
        if let Some(Value::Array(plugins)) = top.get_mut("plugins") {
            for p in plugins {
                if let Some(Value::Object(ipam)) = p.get_mut("ipam") {
                    out.push(ipam);
                }
            }
        }
    } else {
        for (k, v) in top.iter_mut() {
            if k.eq_ignore_ascii_case("ipam") {
                if let Value::Object(ipam) = v {
                    out.push(ipam);
                }
            }
        }
    }
    out
}

fn names_network(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("network_name")))
}

impl Runner {
    /// The configuration of `row` as the runner sends it, and the network name its pools use.
    fn prepare(&self, row: &Value, index: usize, stdin: &Value) -> (Option<String>, String) {
        if stdin.is_null() {
            return (None, String::new());
        }
        let mut conf = stdin.clone();
        let flat = row.get("flat_file").filter(|f| !f.is_null());
        let flat_value = flat.map(|f| if f == "(same as stdin)" { stdin.clone() } else { f.clone() });
        let flat_ipam = flat_value.as_ref().map(|f| f.get("ipam").cloned().unwrap_or_else(|| f.clone()));
        let flat_names =
            flat_value.as_ref().is_some_and(names_network) || flat_ipam.as_ref().is_some_and(names_network);
        let flat_path = flat_value.as_ref().map(|f| {
            let path = self.dir.path().join(format!("flat-{index}.conf"));
            std::fs::write(&path, f.to_string()).expect("write the flat file");
            path
        });
        let mut network = format!("compat-{index}");
        for ipam in ipam_objects(&mut conf) {
            ipam.entry("endpoints").or_insert_with(|| json!(self.cluster.endpoints()));
            ipam.entry("timeout_seconds").or_insert(json!(10));
            ipam.insert("state_dir".into(), json!(self.dir.path().join(format!("state-{index}"))));
            if ipam.contains_key("log_file") {
                ipam.insert("log_file".into(), json!(self.dir.path().join(format!("log-{index}.txt"))));
            }
            if let Some(path) = &flat_path {
                ipam.insert("configuration_path".into(), json!(path));
            }
            match ipam.iter().find(|(k, _)| k.eq_ignore_ascii_case("network_name")) {
                Some((_, Value::String(name))) => network = name.clone(),
                _ if flat_names => {
                    network = flat_ipam
                        .as_ref()
                        .and_then(|f| f.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case("network_name")))
                        .and_then(|(_, v)| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                }
                _ => {
                    ipam.insert("network_name".into(), json!(network));
                }
            }
        }
        (Some(conf.to_string()), network)
    }

    fn exec(&self, command: &str, vars: &[(String, String)], stdin: Option<&str>) -> (i32, String, String) {
        let mut cmd = Command::new(WHEREABOUTS);
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("CNI_COMMAND", command);
        cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn whereabouts");
        let mut input = child.stdin.take().expect("stdin");
        // A plugin that fails before reading stdin (a missing variable, VERSION) closes it early.
        match input.write_all(stdin.unwrap_or("").as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
            _ => {}
        }
        drop(input);
        let start = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if start.elapsed() > CALL_TIMEOUT {
                let _ = child.kill();
                panic!("whereabouts {command} did not finish within {CALL_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (mut out, mut err) = (String::new(), String::new());
        child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
        child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
        (child.wait().expect("status").code().unwrap_or(-1), out, err)
    }

    fn vars(row: &Value, step: &Value) -> Vec<(String, String)> {
        let get = |key: &str, default: &str| {
            step.get(key).or_else(|| row.get(key)).and_then(Value::as_str).unwrap_or(default).to_string()
        };
        let mut vars = vec![
            ("CNI_CONTAINERID".to_string(), get("container_id", "c1")),
            ("CNI_NETNS".into(), "/var/run/netns/compat".into()),
            ("CNI_IFNAME".into(), get("ifname", "eth0")),
            ("CNI_PATH".into(), "/opt/cni/bin".into()),
            ("CNI_ARGS".into(), get("cni_args", "")),
            ("NODE_NAME".into(), "compat-node".into()),
        ];
        if let Some(Value::Object(env)) = row.get("env") {
            vars.extend(env.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())));
        }
        if let Some(Value::Array(unset)) = row.get("env_unset") {
            vars.retain(|(k, _)| !unset.iter().any(|u| u == k.as_str()));
        }
        vars
    }

    /// Runs one row; returns what did not match.
    fn run(&self, index: usize, row: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let stdin = row.get("stdin").cloned().unwrap_or(Value::Null);
        let (conf, network) = self.prepare(row, index, &stdin);
        for (i, prior) in row.get("prior").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let prior_conf = match prior.get("stdin") {
                Some(s) => self.prepare(row, index, s).0,
                None => conf.clone(),
            };
            let (code, out, err) = self.exec("ADD", &Self::vars(&Value::Null, prior), prior_conf.as_deref());
            if code != 0 {
                problems.push(format!("prior ADD {i} failed: {out} {err}"));
            }
        }
        let command = row["command"].as_str().expect("command");
        let (code, out, err) = self.exec(command, &Self::vars(row, &Value::Null), conf.as_deref());
        let expect = &row["expect"];
        let want_code = expect.get("code").and_then(Value::as_i64).unwrap_or(0);
        let printed: Value =
            if out.trim().is_empty() { Value::Null } else { serde_json::from_str(&out).unwrap_or(Value::Null) };
        let context = || format!("\n    stdout: {}\n    stderr: {}", out.trim(), err.trim());
        if want_code == 0 {
            if code != 0 {
                problems.push(format!("failed (exit {code}), expected success{}", context()));
                return problems;
            }
            if let Some(result) = expect.get("result") {
                if printed != *result {
                    problems.push(format!("result {printed}, expected {result}"));
                }
            }
            for key in ["ips", "routes"] {
                if let Some(want) = expect.get(key) {
                    let got = printed.get(key).cloned().unwrap_or(json!([]));
                    if got != *want {
                        problems.push(format!("{key} {got}, expected {want}{}", context()));
                    }
                }
            }
            if let Some(want) = expect.get("dns") {
                let got = printed.get("dns").cloned().unwrap_or(json!({}));
                if got != *want {
                    problems.push(format!("dns {got}, expected {want}"));
                }
            }
        } else {
            let got = printed.get("code").and_then(Value::as_i64);
            if code == 0 || got != Some(want_code) {
                problems.push(format!("exit {code} code {got:?}, expected code {want_code}{}", context()));
            }
            if let Some(text) = expect.get("msg_contains").and_then(Value::as_str) {
                let msg =
                    format!("{} {}", printed["msg"].as_str().unwrap_or(""), printed["details"].as_str().unwrap_or(""));
                if !msg.contains(text) {
                    problems.push(format!("message {msg:?} does not contain {text:?}"));
                }
            }
        }
        if let Some(Value::Array(want)) = expect.get("allocations") {
            let held: BTreeSet<(String, String, String)> = self
                .cluster
                .allocations(&network)
                .into_iter()
                .map(|a| {
                    let att = a.attachment.unwrap_or_default();
                    let pod = if att.pod_name.is_empty() {
                        String::new()
                    } else {
                        format!("{}/{}", att.pod_namespace, att.pod_name)
                    };
                    (a.ip, att.container_id, pod)
                })
                .collect();
            let matches = want.len() == held.len()
                && want.iter().all(|w| {
                    held.iter().any(|(ip, container, pod)| {
                        w["ip"] == ip.as_str()
                            && w.get("container").is_none_or(|c| c == container.as_str())
                            && w.get("pod").is_none_or(|p| p == pod.as_str())
                    })
                });
            if !matches {
                problems.push(format!("allocations {held:?}, expected {want:?}"));
            }
        }
        problems
    }
}

fn table() -> Vec<Value> {
    let rows: Vec<Value> = TABLE
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("compat.jsonl line {}: {e}", n + 1)))
        .collect();
    let mut ids = BTreeSet::new();
    for row in &rows {
        let id = row["id"].as_str().expect("every row has an id");
        assert!(ids.insert(id.to_string()), "row id {id} appears twice");
        assert!(row["source"].is_string() && row["command"].is_string() && row["expect"].is_object(), "row {id}");
        assert_eq!(
            row.get("whereabouts").is_some(),
            row.get("difference").is_some(),
            "row {id}: a difference says why"
        );
    }
    rows
}

#[test]
fn every_row_answers_as_the_table_says() {
    let rows = table();
    for path in plugin::config::FLAT_FILE_PATHS {
        assert!(!Path::new(path).exists(), "{path} exists: it would be merged into every row; remove it to run");
    }
    let runner = Runner {
        cluster: LoopbackOptions::new(testkit::node_binary::locate(), 3).start_ready(Duration::from_secs(60)),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let mut failed = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let problems = runner.run(i, row);
        if !problems.is_empty() {
            failed.push(format!(
                "{} ({}):\n  {}",
                row["id"].as_str().unwrap(),
                row["source"].as_str().unwrap(),
                problems.join("\n  ")
            ));
        }
    }
    let differences = rows.iter().filter(|r| r.get("difference").is_some()).count();
    eprintln!("{} rows, {} with a documented difference from whereabouts", rows.len(), differences);
    assert!(
        failed.is_empty(),
        "{} of {} rows failed:\n{}\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n"),
        runner.cluster.logs()
    );
}

/// The table file is where rows are added: keep it parseable and its ids unique.
#[test]
fn the_table_is_well_formed() {
    let rows = table();
    assert!(rows.len() >= 100, "{} rows", rows.len());
}
