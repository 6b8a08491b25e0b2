//! Deterministic simulation (`jepsen-tests sim`): openraft nodes with the in-memory log and IPAM
//! state machine of `testkit` (`mem_log`, `mem_state_machine`: the real `ipam` domain) and an
//! in-process network ([`router`]),
//! on a current-thread tokio runtime with paused (simulated) time. A seed drives the workload,
//! the faults ([`world`]: crashes with downtime, partitions, loss, delay spikes, membership
//! changes), every message's delay and loss, and each node's election timeout. After every step
//! (10 ms of simulated time) the [`invariants`] are checked; at the end the clients' history goes
//! through the same checker as real runs.
//!
//! Determinism: everything the simulation decides comes from the seed, and simulated time makes
//! timing reproducible. openraft itself still draws from unseeded sources (its `select!` fairness
//! and std `HashMap` order), so two runs of one seed usually, not always, take the same path; the
//! report carries a fingerprint of the observed trajectory to compare runs. A failing seed prints
//! the command that re-runs it.

pub mod clients;
pub mod invariants;
pub mod oracle;
pub mod router;
pub mod world;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use testkit::mem_state_machine::MemSm;

use crate::checker::{check, CheckOptions, Verdict};
use crate::history::{parse_history, EventType, FinalRead, FinalTable, HistoryWriter, Op, Process};
use crate::rng::Rng;
use clients::ClientCtx;
use invariants::Invariants;
use world::{FaultCounts, World};

/// Simulated time per step.
pub const STEP: Duration = Duration::from_millis(10);

/// Arguments of `jepsen-tests sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many seeds, from `--seed` on.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Steps per seed (10 ms of simulated time each).
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// Founding nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: u64,
    /// Plant a bug in the simulated storage (the run is then expected to fail).
    #[arg(long, value_enum)]
    pub planted_bug: Option<PlantedBug>,
}

/// Bugs the simulation can plant, to show that its checks fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlantedBug {
    /// A crash loses the last 3 log entries even though they were acknowledged as durable
    /// (what skipping the flush does to a real disk).
    LoseAckedTail,
}

/// What to simulate.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// The seed.
    pub seed: u64,
    /// Steps (10 ms of simulated time each).
    pub steps: u64,
    /// Founding nodes.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// A planted bug, if any.
    pub planted: Option<PlantedBug>,
}

impl SimOptions {
    /// `steps` steps of seed `seed` with 3 nodes and 4 clients, no planted bug.
    pub fn new(seed: u64, steps: u64) -> SimOptions {
        SimOptions { seed, steps, nodes: 3, clients: 4, planted: None }
    }
}

/// The result of one seed.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Steps run.
    pub steps: u64,
    /// Faults injected.
    pub faults: FaultCounts,
    /// Terms that had a leader.
    pub terms: usize,
    /// Client operations invoked.
    pub ops: usize,
    /// Messages delivered / lost by the router.
    pub messages: (u64, u64),
    /// The checker's verdict on the clients' history.
    pub verdict: Verdict,
    /// Invariant violations and checker anomalies (empty when the seed passes).
    pub violations: Vec<String>,
    /// Hash of the observed trajectory (leaders, terms, applied indexes, state digests).
    pub fingerprint: u64,
}

impl SimReport {
    /// Whether the seed passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.verdict == Verdict::Valid
    }
}

/// Runs one seed on a fresh current-thread runtime with paused time.
pub fn simulate(opts: SimOptions) -> anyhow::Result<SimReport> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    rt.block_on(simulate_async(opts))
}

async fn simulate_async(opts: SimOptions) -> anyhow::Result<SimReport> {
    let SimOptions { seed, steps, nodes, clients: n_clients, planted } = opts;
    let mut rng = Rng::new(seed);
    let mut world = World::new(nodes, rng.fork());
    world.lose_tail_on_crash = planted == Some(PlantedBug::LoseAckedTail);
    world.boot().await?;
    let ctx = Arc::new(ClientCtx {
        router: world.router.clone(),
        history: HistoryWriter::new(Vec::new()),
        start: tokio::time::Instant::now(),
        stop: Default::default(),
        nets: crate::workload::networks(3),
    });
    let tasks: Vec<_> = (0..n_clients).map(|p| tokio::spawn(clients::run(p, ctx.clone(), rng.fork()))).collect();
    let mut inv = Invariants::default();
    let mut fingerprint: u64 = 0;
    for step in 0..steps {
        world.faults(step, false).await?;
        tokio::time::sleep(STEP).await;
        let logs = world.disks.iter().map(|(id, d)| (*id, d.log.clone())).collect();
        fingerprint = fingerprint.rotate_left(5) ^ inv.check(step, &world.router, &logs);
        if inv.violations.len() >= 5 {
            break;
        }
    }
    // Calm down: heal, restart, stop the clients, let every member apply everything.
    world.faults(steps, true).await?;
    ctx.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
    }
    let mut settled = false;
    for step in steps..steps + 3_000 {
        world.faults(step, true).await?;
        tokio::time::sleep(STEP).await;
        let logs: BTreeMap<u64, _> = world.disks.iter().map(|(id, d)| (*id, d.log.clone())).collect();
        inv.check(step, &world.router, &logs);
        if world.leader().is_some() && converged(&world) {
            settled = true;
            break;
        }
    }
    let mut violations = inv.violations.clone();
    violations.extend(world.oracle.violations().into_iter().take(10));
    if !settled {
        violations.push("liveness: the members did not converge within 30 s of simulated time after healing".into());
    }
    final_reads(&world, &ctx, n_clients);
    let ctx = Arc::try_unwrap(ctx).map_err(|_| anyhow::anyhow!("client tasks still hold the history"))?;
    let bytes = ctx.history.into_inner()?;
    let events = parse_history(&bytes[..])?;
    let ops = events.iter().filter(|e| matches!(e.process, Process::Client(_)) && e.kind == EventType::Invoke).count();
    let report = check(&events, &CheckOptions { max_states: 2_000_000, ..CheckOptions::default() })?;
    for (kind, group) in &report.anomalies {
        for a in &group.examples {
            violations.push(format!("checker {kind:?}: {}", a.message));
        }
    }
    let messages = {
        let r = world.router.lock();
        (r.delivered, r.lost)
    };
    let up: Vec<u64> = world.router.lock().up.keys().copied().collect();
    for id in up {
        world.crash(id, u64::MAX).await;
    }
    Ok(SimReport {
        seed,
        steps,
        faults: world.faults.clone(),
        terms: inv.terms(),
        ops,
        messages,
        verdict: report.verdict,
        violations,
        fingerprint,
    })
}

/// Every running member applied the same log id.
fn converged(world: &World) -> bool {
    let up = world.router.lock().up.values().map(|(r, _)| r.metrics().borrow().last_applied).collect::<Vec<_>>();
    up.len() == world.disks.len() && up.windows(2).all(|w| w[0] == w[1])
}

fn final_reads(world: &World, ctx: &ClientCtx, n_clients: u64) {
    let up: Vec<(u64, MemSm)> = world.router.lock().up.iter().map(|(i, (_, m))| (*i, m.clone())).collect();
    for (k, (id, sm)) in up.into_iter().enumerate() {
        let mut table = FinalTable::default();
        for a in sm.volatile().state.allocations(None) {
            table.insert(&a.network, a.ip, &a.attachment.owner.to_string());
        }
        let p = Process::Client(n_clients + k as u64);
        let t = ctx.now_ns();
        let _ = ctx.history.record_at(t, p, EventType::Invoke, Some(id), Op::FinalRead(FinalRead::new()));
        let _ = ctx.history.record_at(
            t,
            p,
            EventType::Ok,
            Some(id),
            Op::FinalRead(FinalRead::new().with_allocations(table)),
        );
    }
}

/// Runs `sim`: every seed, one line each; returns 0 when all pass, 1 otherwise.
pub fn run_cli(args: &SimArgs) -> u8 {
    let mut failed = 0;
    for seed in args.seed..args.seed.saturating_add(args.seeds) {
        let started = std::time::Instant::now();
        let opts =
            SimOptions { seed, steps: args.steps, nodes: args.nodes, clients: args.clients, planted: args.planted_bug };
        match simulate(opts) {
            Ok(r) => {
                let f = &r.faults;
                println!(
                    "seed {seed}: {} in {:.1}s — {} steps, {} ops, {} terms, crashes {}, partitions {}, drops {}, delays {}, \
                     membership {}/{}, messages {}/{} lost, fingerprint {:016x}",
                    if r.passed() { "ok" } else { "FAILED" },
                    started.elapsed().as_secs_f64(),
                    r.steps,
                    r.ops,
                    r.terms,
                    f.crashes,
                    f.partitions,
                    f.drops,
                    f.delays,
                    f.membership_done,
                    f.membership,
                    r.messages.1,
                    r.messages.0 + r.messages.1,
                    r.fingerprint
                );
                if !r.passed() {
                    failed += 1;
                    for v in &r.violations {
                        println!("  {v}");
                    }
                    let planted = args.planted_bug.map(|_| " --planted-bug lose-acked-tail").unwrap_or_default();
                    println!(
                        "  reproduce: jepsen-tests sim --seed {seed} --steps {} --nodes {} --clients {}{planted}",
                        args.steps, args.nodes, args.clients
                    );
                }
            }
            Err(e) => {
                failed += 1;
                println!("seed {seed}: ERROR {e:#}");
                println!("  reproduce: jepsen-tests sim --seed {seed} --steps {}", args.steps);
            }
        }
    }
    println!("{} passed, {} failed", args.seeds - failed, failed);
    u8::from(failed > 0)
}
