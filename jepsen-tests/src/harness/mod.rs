//! `jepsen-tests run`: the chaos harness. Starts N real `whereabouts-node` processes, each in its
//! own network namespace ([`lab`], [`nodes`], together the [`testbed`]), runs concurrent
//! clients ([`client`], over [`crate::workload`]) while the [`nemesis`] injects faults, heals
//! ([`heal`]), takes the final reads ([`finals`]), tears everything down and checks the history
//! with [`crate::checker`]. Everything a run's tasks share is in [`run_state`].
//!
//! Module arrows point one way: `run_state` ← `testbed` ← `heal` ← `nemesis/*` (one file per
//! fault family, none importing another) ← `nemesis` (the dispatcher) ← this module.

pub mod admin;
pub mod client;
pub mod clocks;
pub mod disks;
pub mod finals;
pub mod heal;
pub mod lab;
pub mod nemesis;
pub mod nodes;
pub mod options;
pub mod rpc;
pub mod run_state;
pub mod testbed;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use serde_json::json;

pub use options::RunArgs;

use crate::checker::{check_file, CheckOptions, Report, Verdict};
use crate::history::HistoryWriter;
use crate::rng::Rng;
use heal::{heal, HealMoment};
use nodes::NodeConfig;
use run_state::RunState;
use testbed::Testbed;

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// `results/<run>`.
    pub dir: PathBuf,
    /// The checker's report on the history.
    pub report: Report,
    /// Whether the run passes (valid; or, with `--expect-anomalies`, invalid).
    pub passed: bool,
}

/// The previous release's node binary of a mixed-version run (`roll`), with this tree's.
fn builds(args: &RunArgs, new: &Path) -> anyhow::Result<Option<testbed::Builds>> {
    let Some(old) = &args.old_node_bin else { return Ok(None) };
    if !old.is_file() {
        bail!("no old node binary at {} (scripts/upgrade-test.sh builds release 0.1.0's)", old.display());
    }
    Ok(Some(testbed::Builds { old: old.canonicalize()?, new: new.to_path_buf() }))
}

fn node_bin(args: &RunArgs) -> anyhow::Result<PathBuf> {
    let bin = match &args.node_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("whereabouts-node"),
    };
    if !bin.is_file() {
        bail!("no node binary at {} (build it: cargo build -p cluster --bins, or pass --node-bin)", bin.display());
    }
    Ok(bin.canonicalize()?)
}

/// The `lazyfs` binary, when the run puts the data directories on lazyfs mounts.
fn lazyfs_bin(args: &RunArgs) -> anyhow::Result<Option<PathBuf>> {
    if !(args.lazyfs || args.nemesis.0.iter().any(|f| f.needs_lazyfs())) {
        return Ok(None);
    }
    let bin = match &args.lazyfs_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("lazyfs"),
    };
    if !bin.is_file() {
        bail!("no lazyfs binary at {} (build it: cargo build -p lazyfs, or pass --lazyfs-bin)", bin.display());
    }
    Ok(Some(bin.canonicalize()?))
}

fn is_root() -> bool {
    testkit::netns::run_command("id", &["-u"]).is_ok_and(|s| s.trim() == "0")
}

/// Runs the harness end to end (setup, load + faults, heal, final reads, teardown, check).
pub async fn run(args: &RunArgs) -> anyhow::Result<RunOutcome> {
    args.validate().map_err(anyhow::Error::msg)?;
    if !is_root() {
        bail!("jepsen-tests run needs root (network namespaces, nftables)");
    }
    let bin = node_bin(args)?;
    let builds = builds(args, &bin)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let seed = args.seed.unwrap_or(now.as_nanos() as u64 % 1_000_000_007);
    let dir = args.results.join(format!("{}-s{seed}", now.as_secs()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    tracing::info!(seed, dir = %dir.display(), node = %bin.display(), old_node = ?builds.as_ref().map(|b| &b.old),
        "chaos run starting");
    let history_path = dir.join("history.jsonl");
    let started = Instant::now();
    let (stats, nemesis_done) = drive(args, &bin, builds.clone(), seed, &dir, &history_path).await?;
    let wall = started.elapsed();

    let opts = CheckOptions {
        max_states: args.max_states,
        time_limit: Some(Duration::from_secs(args.check_time_limit_secs)),
        max_examples: 5,
        max_recovery: args.max_recovery_secs.map(Duration::from_secs_f64),
    };
    let check_started = Instant::now();
    let report = check_file(&history_path, &opts)?;
    let check_secs = check_started.elapsed().as_secs_f64();
    std::fs::write(dir.join("report.txt"), report.to_string())?;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    let summary = json!({
        "seed": seed, "nodes": args.nodes, "clients": args.clients, "node_bin": bin,
        "old_node_bin": builds.map(|b| b.old),
        "wall_secs": wall.as_secs_f64(), "check_secs": check_secs, "ops_invoked": stats.0,
        "node_starts": stats.1, "episodes": nemesis_done, "finals": stats.2,
        "verdict": report.verdict, "anomalies": report.anomaly_count(),
        "max_recovery_ms": report.liveness.max_recovery_ns.map(|n| n / 1_000_000),
    });
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    let passed =
        if args.expect_anomalies { report.verdict == Verdict::Invalid } else { report.verdict == Verdict::Valid };
    if passed && !args.expect_anomalies && !args.keep_data {
        let _ = std::fs::remove_dir_all(dir.join("nodes"));
        let _ = std::fs::remove_dir_all(dir.join("lazyfs"));
    }
    Ok(RunOutcome { dir, report, passed })
}

type DriveStats = (u64, u64, finals::Finals);

/// Everything that needs the lab; the lab is torn down when this returns (or fails).
async fn drive(
    args: &RunArgs,
    bin: &Path,
    builds: Option<testbed::Builds>,
    seed: u64,
    dir: &Path,
    history_path: &Path,
) -> anyhow::Result<(DriveStats, serde_json::Value)> {
    let mut rng = Rng::new(seed);
    let config = NodeConfig {
        // A mixed-version run starts every node on the previous release.
        bin: builds.as_ref().map_or(bin, |b| b.old.as_path()).to_path_buf(),
        dir: dir.join("nodes"),
        snapshot_threshold: args.snapshot_threshold,
        heartbeat_ms: args.heartbeat_ms,
        election_timeout_ms: args.election_timeout_ms,
        request_timeout_ms: args.request_timeout_ms,
    };
    let founders: Vec<u64> = (0..args.nodes).collect();
    let _lock = lab::RunLock::take()?;
    let lab = lab::Lab::create()?;
    let nodes = nodes::launcher(config, &founders)?;
    let disks = match lazyfs_bin(args)? {
        Some(bin) => Some(disks::Disks::new(&bin, &dir.join("lazyfs"))?),
        None => None,
    };
    let clocks = match args.nemesis.0.iter().any(|f| f.needs_fake_clock()) {
        true => Some(clocks::Clocks::new(&args.faketime_lib, &dir.join("clocks"))?),
        false => None,
    };
    let mut tb = Testbed::start(lab, nodes, args.nodes, disks, clocks, builds)?;
    let history = HistoryWriter::create(history_path)?;
    let budget = Duration::from_secs(args.op_budget_secs);
    let think = Duration::from_millis(args.think_ms);
    let st = Arc::new(RunState::new(history, founders, args.ops, budget, think));
    if tb.leader(&st, Duration::from_secs(60)).await.is_none() {
        bail!("no leader within 60 s; node logs in {}", dir.join("nodes").display());
    }
    let stopper = {
        let st = st.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!("interrupted: stopping clients, then healing and checking");
                st.stop.store(true, Ordering::Relaxed);
            }
        })
    };
    let nets = Arc::new(crate::workload::networks(args.networks));
    let mut tasks = Vec::new();
    for p in 0..args.clients {
        tasks.push(tokio::spawn(client::run_client(p, st.clone(), nets.clone(), rng.fork())));
    }
    let until = Instant::now() + Duration::from_secs(args.time);
    let timing = nemesis::Timing {
        interval: Duration::from_millis(args.interval_ms),
        hold: Duration::from_millis(args.hold_ms),
    };
    let progress = progress_reporter(st.clone());
    let done = nemesis::run(&mut tb, &st, &args.nemesis.0, timing, &mut rng, until, args.episodes).await;
    let clients_running = |tasks: &[tokio::task::JoinHandle<_>]| !tasks.iter().all(|t| t.is_finished());
    let episodes_done = |done: &anyhow::Result<std::collections::BTreeMap<String, u64>>| {
        args.episodes.is_some_and(|m| done.as_ref().is_ok_and(|d| d.values().sum::<u64>() >= m))
    };
    while !st.stop.load(Ordering::Relaxed) && Instant::now() < until && clients_running(&tasks) && !episodes_done(&done)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The final heal happens under load, so the checker measures how fast service comes back.
    heal(&mut tb, &st, HealMoment::Final)?;
    let tail = Instant::now() + Duration::from_secs(args.tail_secs);
    while !st.stop.load(Ordering::Relaxed) && Instant::now() < tail && clients_running(&tasks) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    st.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(args.op_budget_secs + 30), t).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e.context("a client failed")),
            Ok(Err(e)) => bail!("a client panicked: {e}"),
            Err(_) => bail!("a client did not stop in time"),
        }
    }
    progress.abort();
    stopper.abort();
    let done = done?;
    let finals = finals::finish(&mut tb, &st, args.clients).await?;
    let starts = tb.nodes.starts();
    drop(tb);
    Ok(((st.invoked.load(Ordering::Relaxed).min(args.ops), starts, finals), json!(done)))
}

fn progress_reporter(st: Arc<RunState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for _ in 0..100_000u32 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            tracing::info!(invoked = st.invoked.load(Ordering::Relaxed).min(st.max_ops), "progress");
        }
    })
}
