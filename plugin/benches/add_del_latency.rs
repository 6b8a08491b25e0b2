//! ADD+DEL latency of the `whereabouts` binary, exec'd once per call as a container runtime does,
//! against a real local 3-node `whereabouts-node` cluster on loopback, next to Debian's
//! `host-local` in the same run (interleaved, so both see the same machine load).
//!
//! Run: `cargo bench -p plugin --bench add_del_latency` (the node binary is taken from
//! `WHEREABOUTS_NODE_BIN`, else `target/release/whereabouts-node`; see `testkit::node_binary`). `BENCH_ITERS` sets the
//! number of ADD+DEL pairs per plugin (default 300, after 20 warm-up pairs). Prints a Markdown
//! table: p50, p99, mean per command and plugin, and the ratio ours / host-local.

mod exec;

use std::path::Path;
use std::time::Duration;

use exec::{ms, Series, HOST_LOCAL};
use serde_json::json;
use testkit::loopback_cluster::LoopbackOptions;

const OURS: &str = env!("CARGO_BIN_EXE_whereabouts");

/// One call of the latency loop: the same pod and node for every container, as before.
fn call(binary: &str, command: &str, container: &str, stdin: &str) -> Duration {
    exec::call(binary, command, container, "bench-pod", Some("bench-node"), stdin).0
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    assert!(Path::new(HOST_LOCAL).exists(), "{HOST_LOCAL} missing: apt-get install containernetworking-plugins");
    let cluster = LoopbackOptions::new(testkit::node_binary::locate(), 3).start_ready(Duration::from_secs(60));
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = json!({"cniVersion": "1.0.0", "name": "bench", "type": "bridge", "ipam": {
        "type": "whereabouts", "range": "10.91.0.0/16", "endpoints": cluster.endpoints(),
        "state_dir": dir.path().join("whereabouts-rs")}})
    .to_string();
    let theirs = json!({"cniVersion": "1.0.0", "name": "bench", "type": "bridge", "ipam": {
        "type": "host-local", "dataDir": dir.path().join("host-local"), "ranges": [[{"subnet": "10.92.0.0/16"}]]}})
    .to_string();

    let mut version = [Series::new("whereabouts VERSION"), Series::new("host-local VERSION")];
    let mut series = [
        Series::new("whereabouts ADD"),
        Series::new("host-local ADD"),
        Series::new("whereabouts DEL"),
        Series::new("host-local DEL"),
        Series::new("whereabouts ADD+DEL"),
        Series::new("host-local ADD+DEL"),
    ];
    for i in 0..iters + 20 {
        let container = format!("bench-{i}");
        let a1 = call(OURS, "ADD", &container, &ours);
        let a2 = call(HOST_LOCAL, "ADD", &container, &theirs);
        let d1 = call(OURS, "DEL", &container, &ours);
        let d2 = call(HOST_LOCAL, "DEL", &container, &theirs);
        let v1 = call(OURS, "VERSION", &container, "{\"cniVersion\":\"1.0.0\"}");
        let v2 = call(HOST_LOCAL, "VERSION", &container, "{\"cniVersion\":\"1.0.0\"}");
        if i < 20 {
            continue;
        }
        for (s, d) in series.iter_mut().zip([a1, a2, d1, d2, a1 + d1, a2 + d2]) {
            s.samples.push(d);
        }
        version[0].samples.push(v1);
        version[1].samples.push(v2);
    }
    drop(cluster);

    println!("\nADD/DEL through the real binaries, exec per call, {iters} pairs each (after 20 warm-up pairs)\n");
    println!("| series | p50 ms | p99 ms | mean ms |");
    println!("|---|---:|---:|---:|");
    for s in series.iter().chain(version.iter()) {
        println!("| {} | {} | {} | {} |", s.name, ms(s.quantile(0.5)), ms(s.quantile(0.99)), ms(s.mean()));
    }
    println!("\n| ratio whereabouts / host-local | p50 | p99 |");
    println!("|---|---:|---:|");
    for (label, ours, theirs) in [("ADD", 0, 1), ("DEL", 2, 3), ("ADD+DEL", 4, 5)] {
        let r = |q| series[ours].quantile(q).as_secs_f64() / series[theirs].quantile(q).as_secs_f64();
        println!("| {label} | {:.2} | {:.2} |", r(0.5), r(0.99));
    }
}
