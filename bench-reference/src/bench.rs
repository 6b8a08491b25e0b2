//! The load: N clients (tokio tasks) allocating and releasing with whereabouts' read-modify-write scheme
//! ([`crate::scheme`]), bounded by an op count and by time, with a progress line about once a second.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::time::{timeout_at, Instant};

use crate::etcd::Etcd;
use crate::pool::{Allocation, PoolObject, PoolRange};
use crate::scheme::{allocate, release, OpError, Pool, RaceCounters};
use crate::stats::{self, ErrorKinds, LatencySummary, Report};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// etcd client endpoints (loopback only); client `c` uses endpoint `c % len`.
    pub endpoints: Vec<SocketAddr>,
    /// Concurrent clients.
    pub clients: u32,
    /// Pools; client `c` works on pool `c % pools`.
    pub pools: u32,
    /// Addresses per pool (power of two).
    pub pool_size: u128,
    /// Stop after this many operations in total (if set).
    pub ops: Option<u64>,
    /// Stop starting operations after this long.
    pub duration: Duration,
    /// Operations still running at `duration + grace` are cut and counted as errors.
    pub grace: Duration,
    /// Per-operation budget, retries included (whereabouts' `RequestTimeout` is 10 s).
    pub op_timeout: Duration,
    /// `allocate:release` ratio, e.g. (1, 1) or (1, 0).
    pub mix: (u32, u32),
    /// IPv6 pools instead of IPv4.
    pub ipv6: bool,
    /// Allocations written into each pool (one plain PUT, unmeasured) before the run.
    pub prefill: u64,
    /// Key prefix of the pool objects; everything under it is deleted first.
    pub prefix: String,
}

/// Counters shared with the progress line.
#[derive(Debug, Default)]
struct Live {
    ok: AtomicU64,
    errors: AtomicU64,
    races: RaceCounters,
    issued: AtomicU64,
}

/// Per-client results, merged at the end.
struct ClientStats {
    alloc: Histogram<u64>,
    release: Histogram<u64>,
    errors: ErrorKinds,
}

struct ClientCtx {
    id: u32,
    pool: Pool,
    mix: (u32, u32),
    ops: Option<u64>,
    stop_at: Instant,
    hard_stop: Instant,
    op_timeout: Duration,
    live: Arc<Live>,
}

async fn run_client(ctx: ClientCtx, mut etcd: Etcd) -> ClientStats {
    let mut st =
        ClientStats { alloc: stats::new_histogram(), release: stats::new_histogram(), errors: ErrorKinds::default() };
    let mut held: VecDeque<Allocation> = VecDeque::new();
    let (a, r) = ctx.mix;
    let mut next_owner = 0u64;
    for cycle in 0u64.. {
        if Instant::now() >= ctx.stop_at {
            break;
        }
        if ctx.ops.is_some_and(|limit| ctx.live.issued.fetch_add(1, Relaxed) >= limit) {
            break;
        }
        let want_release = cycle % u64::from(a + r) >= u64::from(a);
        let to_release = if want_release { held.pop_front() } else { None };
        let (is_release, owner) = match to_release {
            Some(owner) => (true, owner),
            None => {
                next_owner += 1;
                let name = format!("bench-{}-{}", ctx.id, next_owner);
                (false, Allocation { podref: format!("bench/{name}"), id: name, ifname: "eth0".into() })
            }
        };
        let started = Instant::now();
        let deadline = (started + ctx.op_timeout).min(ctx.hard_stop);
        let result = timeout_at(deadline, async {
            if is_release {
                release(&mut etcd, &ctx.pool, &ctx.live.races, &owner).await
            } else {
                allocate(&mut etcd, &ctx.pool, &ctx.live.races, &owner).await
            }
        })
        .await
        .unwrap_or(Err(OpError::Timeout));
        match result {
            Ok(()) => {
                let hist = if is_release { &mut st.release } else { &mut st.alloc };
                stats::record(hist, started.elapsed());
                if !is_release {
                    held.push_back(owner);
                }
                ctx.live.ok.fetch_add(1, Relaxed);
            }
            Err(e) => {
                ctx.live.errors.fetch_add(1, Relaxed);
                match e {
                    OpError::Exhausted => st.errors.exhausted += 1,
                    OpError::RetriesExhausted => st.errors.retries_exhausted += 1,
                    OpError::Etcd(msg) => {
                        tracing::debug!(client = ctx.id, %msg, "etcd error");
                        st.errors.etcd += 1
                    }
                    OpError::Timeout if Instant::now() >= ctx.hard_stop => {
                        st.errors.cut_at_hard_stop += 1;
                        break;
                    }
                    OpError::Timeout => st.errors.timeout += 1,
                }
            }
        }
    }
    st
}

fn pools(cfg: &Config) -> anyhow::Result<Vec<Pool>> {
    (0..cfg.pools)
        .map(|i| {
            let range = PoolRange::new(i, cfg.pool_size, cfg.ipv6)?;
            // whereabouts names the IPPool after its range, ':' and '/' replaced by '-'.
            let name = range.cidr().replace([':', '/'], "-");
            Ok(Pool { key: format!("{}{}", cfg.prefix, name), name, range })
        })
        .collect()
}

/// Deletes old pools under the prefix, writes the prefilled pools, compacts: nothing of it is measured.
async fn prepare(cfg: &Config, pools: &[Pool]) -> anyhow::Result<()> {
    let mut admin = Etcd::connect(cfg.endpoints[0], cfg.op_timeout).await?;
    let deleted = admin.delete_prefix(&cfg.prefix).await.context("deleting old pools")?;
    tracing::info!(deleted, prefix = %cfg.prefix, "old pools deleted");
    for pool in pools {
        anyhow::ensure!(
            u128::from(cfg.prefill) <= pool.range.usable(),
            "prefill {} exceeds the {} usable addresses of a pool",
            cfg.prefill,
            pool.range.usable()
        );
        if cfg.prefill == 0 {
            continue;
        }
        let mut object = PoolObject::new(&pool.name, &pool.range);
        for n in 0..cfg.prefill {
            let name = format!("prefill-{n}");
            let owner = Allocation { podref: format!("bench/{name}"), id: name, ifname: "eth0".into() };
            object.allocate(&pool.range, &owner);
        }
        admin.put(&pool.key, object.encode()).await.context("prefilling a pool")?;
    }
    admin.compact_now().await.context("compacting")?;
    Ok(())
}

/// Runs the benchmark and returns its report.
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    anyhow::ensure!(!cfg.endpoints.is_empty(), "no endpoints");
    anyhow::ensure!(cfg.clients > 0 && cfg.pools > 0, "clients and pools must be > 0");
    anyhow::ensure!(cfg.mix.0 > 0, "the mix needs allocations (allocate:release with allocate ≥ 1)");
    let pools = pools(&cfg)?;
    prepare(&cfg, &pools).await?;

    let mut conns = Vec::with_capacity(cfg.clients as usize);
    for c in 0..cfg.clients {
        conns.push(Etcd::connect(cfg.endpoints[c as usize % cfg.endpoints.len()], cfg.op_timeout).await?);
    }
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let stop_at = start + cfg.duration;
    let hard_stop = stop_at + cfg.grace;
    let mut tasks = Vec::with_capacity(conns.len());
    for (c, etcd) in (0..cfg.clients).zip(conns) {
        let ctx = ClientCtx {
            id: c,
            pool: pools[c as usize % pools.len()].clone(),
            mix: cfg.mix,
            ops: cfg.ops,
            stop_at,
            hard_stop,
            op_timeout: cfg.op_timeout,
            live: live.clone(),
        };
        tasks.push(tokio::spawn(run_client(ctx, etcd)));
    }
    let progress = tokio::spawn(progress(live.clone(), start));

    let mut alloc = stats::new_histogram();
    let mut rel = stats::new_histogram();
    let mut errors = ErrorKinds::default();
    for task in tasks {
        let st = task.await.context("client task panicked")?;
        alloc.add(&st.alloc).context("merging histograms")?;
        rel.add(&st.release).context("merging histograms")?;
        errors.add(&st.errors);
    }
    let elapsed = start.elapsed().as_secs_f64();
    progress.abort();

    if let Ok(mut admin) = Etcd::connect(cfg.endpoints[0], cfg.op_timeout).await {
        if let Err(e) = admin.compact_now().await {
            tracing::warn!(error = %e, "compaction after the run failed");
        }
    }

    let mut all = alloc.clone();
    all.add(&rel).context("merging histograms")?;
    let ops_ok = all.len();
    Ok(Report {
        system: "etcd-whereabouts-scheme".into(),
        clients: cfg.clients,
        pools: cfg.pools,
        ops_ok,
        errors: errors.total(),
        conflicts: live.races.conflicts.load(Relaxed),
        duration_s: (elapsed * 1000.0).round() / 1000.0,
        throughput: if elapsed > 0.0 { (ops_ok as f64 / elapsed * 10.0).round() / 10.0 } else { 0.0 },
        latency_ms: LatencySummary::from_histogram(&all),
        retries: live.races.retries.load(Relaxed),
        allocations_ok: alloc.len(),
        releases_ok: rel.len(),
        allocate_latency_ms: LatencySummary::from_histogram(&alloc),
        release_latency_ms: LatencySummary::from_histogram(&rel),
        pool_size: u64::try_from(cfg.pool_size).unwrap_or(u64::MAX),
        prefill: cfg.prefill,
        mix: format!("{}:{}", cfg.mix.0, cfg.mix.1),
        ipv6: cfg.ipv6,
        error_kinds: errors,
    })
}

/// About once a second: elapsed time, ok ops (and rate over the last second), conflicts, errors.
async fn progress(live: Arc<Live>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0;
    loop {
        tick.tick().await;
        let ok = live.ok.load(Relaxed);
        eprintln!(
            "[{:6.1}s] ok {ok} (+{}/s)  conflicts {}  errors {}",
            start.elapsed().as_secs_f64(),
            ok - last,
            live.races.conflicts.load(Relaxed),
            live.errors.load(Relaxed),
        );
        last = ok;
    }
}
