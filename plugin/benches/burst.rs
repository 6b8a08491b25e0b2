//! A node-drain / scale-up burst: BURST plugin ADDs exec'd PARALLEL at a time, spread over
//! NODES Kubernetes node identities (each its own mutual-TLS certificate and state directory, as
//! on real nodes), against a real local 3-node cluster speaking TLS; then the BURST DELs the
//! same way. Beside it, host-local does the same burst in the same run (one data directory: it
//! is node-local by design).
//!
//! Run: `cargo bench -p plugin --bench burst` (binaries: `whereabouts-node` and `whereabouts-ctl`
//! from `WHEREABOUTS_NODE_BIN`'s directory, else the target profile directory; see
//! `testkit::node_binary`). `BENCH_BURST` (default 1000), `BENCH_PARALLEL` (64), `BENCH_NODES`
//! (10). Every ADD must succeed with a distinct address and every DEL must succeed; afterwards
//! the next ADD must get the pool's first address again (all released). Prints a Markdown table.

mod exec;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use exec::{ms, Series, HOST_LOCAL};
use serde_json::json;
use testkit::loopback_cluster::LoopbackOptions;

const OURS: &str = env!("CARGO_BIN_EXE_whereabouts");
const RANGE: &str = "10.94.0.0/16";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One phase: `count` calls of `command`, `parallel` at a time; call `i` uses `config(i)`.
/// Returns the series, the wall time, and each call's stdout (in call order).
fn phase(
    binary: &str,
    command: &str,
    count: usize,
    parallel: usize,
    config: &(dyn Fn(usize) -> String + Sync),
) -> (Series, Duration, Vec<String>) {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![(Duration::ZERO, String::new()); count]);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let (container, pod) = (format!("burst-{i}"), format!("pod-{i}"));
                results.lock().unwrap()[i] = exec::call(binary, command, &container, &pod, None, &config(i));
            });
        }
    });
    let wall = start.elapsed();
    let results = results.into_inner().unwrap();
    let name = format!("{} {command}", Path::new(binary).file_name().unwrap().to_string_lossy());
    let mut series = Series::new(&name);
    series.samples = results.iter().map(|(d, _)| *d).collect();
    (series, wall, results.into_iter().map(|(_, o)| o).collect())
}

fn address(stdout: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(stdout).expect("ADD result JSON");
    v["ips"][0]["address"].as_str().expect("ips[0].address").to_string()
}

fn main() {
    let (burst, parallel, nodes) =
        (env_or("BENCH_BURST", 1000), env_or("BENCH_PARALLEL", 64), env_or("BENCH_NODES", 10));
    assert!(Path::new(HOST_LOCAL).exists(), "{HOST_LOCAL} missing: apt-get install containernetworking-plugins");
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let ctl = testkit::node_binary::locate().with_file_name("whereabouts-ctl");
    let mut init = Command::new(&ctl);
    init.args(["certs", "init", "--out", certs.to_str().unwrap()]);
    for i in 0..3 {
        init.args(["--peer", &format!("n{i}=127.0.0.1")]);
    }
    for k in 0..nodes {
        init.args(["--node", &format!("worker-{k}")]);
    }
    init.stdout(std::process::Stdio::null());
    assert!(init.status().expect("whereabouts-ctl certs init").success(), "certs init");
    let tls = certs.clone();
    let mut cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3)
        .tls(move |id| {
            let file = |name: String| tls.join(name).display().to_string();
            let (cert, key) = (file(format!("peer-n{id}.pem")), file(format!("peer-n{id}-key.pem")));
            vec!["--tls-ca".into(), file("ca.pem".into()), "--tls-cert".into(), cert, "--tls-key".into(), key]
        })
        .start();
    let endpoints = cluster.endpoints().to_vec();
    let file = |name: String| -> PathBuf { certs.join(name) };
    let configs: Vec<String> = (0..nodes)
        .map(|k| {
            json!({"cniVersion": "1.1.0", "name": "burst", "type": "bridge", "ipam": {
                "type": "whereabouts", "range": RANGE, "endpoints": endpoints, "timeout_seconds": 30,
                "tls_ca": file("ca.pem".into()),
                "tls_cert": file(format!("node-worker-{k}.pem")),
                "tls_key": file(format!("node-worker-{k}-key.pem")),
                "state_dir": dir.path().join(format!("state-worker-{k}"))}})
            .to_string()
        })
        .collect();
    let mut last = String::new();
    let ready = (0..60).any(|_| {
        let (_, out) = exec::exec(OURS, "STATUS", "ready", "ready", None, &configs[0]);
        last = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out.status.success() || {
            std::thread::sleep(Duration::from_millis(500));
            false
        }
    });
    assert!(ready, "the TLS cluster never became ready for the plugin; last STATUS: {last}\n{}", cluster.logs());
    let theirs = json!({"cniVersion": "1.0.0", "name": "burst", "type": "bridge", "ipam": {
        "type": "host-local", "dataDir": dir.path().join("host-local"), "ranges": [[{"subnet": "10.95.0.0/16"}]]}})
    .to_string();

    let ours_of = |i: usize| configs[i % nodes].clone();
    let theirs_of = |_: usize| theirs.clone();
    let (ours_add, ours_add_wall, added) = phase(OURS, "ADD", burst, parallel, &ours_of);
    let distinct: HashSet<String> = added.iter().map(|o| address(o)).collect();
    assert_eq!(distinct.len(), burst, "every ADD of the burst must get its own address");
    let (ours_del, ours_del_wall, _) = phase(OURS, "DEL", burst, parallel, &ours_of);
    let (after, out) = exec::call(OURS, "ADD", "after-burst", "after-burst", None, &configs[0]);
    let first = address(&out);
    assert_eq!(first, "10.94.0.1/16", "after every DEL the pool's first address is free again");
    let (hl_add, hl_add_wall, _) = phase(HOST_LOCAL, "ADD", burst, parallel, &theirs_of);
    let (hl_del, hl_del_wall, _) = phase(HOST_LOCAL, "DEL", burst, parallel, &theirs_of);
    cluster.stop();

    println!(
        "\n{burst} ADDs then {burst} DELs, exec'd {parallel} at a time, whereabouts over {nodes} node identities \
         (mutual TLS), host-local on one data directory; the next ADD after the burst took {} ms\n",
        ms(after)
    );
    println!("| phase | wall s | calls/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (s, wall) in
        [(&ours_add, ours_add_wall), (&ours_del, ours_del_wall), (&hl_add, hl_add_wall), (&hl_del, hl_del_wall)]
    {
        println!(
            "| {} | {:.2} | {:.0} | {} | {} | {} |",
            s.name,
            wall.as_secs_f64(),
            s.samples.len() as f64 / wall.as_secs_f64(),
            ms(s.quantile(0.5)),
            ms(s.quantile(0.99)),
            ms(s.quantile(1.0))
        );
    }
    println!(
        "\nratio whereabouts / host-local, wall time: ADD {:.2}, DEL {:.2}",
        ours_add_wall.as_secs_f64() / hl_add_wall.as_secs_f64(),
        ours_del_wall.as_secs_f64() / hl_del_wall.as_secs_f64()
    );
}
