//! The load: N clients allocating and releasing with whereabouts' read-modify-write scheme
//! ([`crate::scheme`]), driven by loadgen's closed loop (bounded by an op count and by time, with
//! a progress line about once a second).

use std::net::SocketAddr;

use anyhow::Context;
use loadgen::{driver, Client, Limits, Mix, OpContext, OpKind, Plan, PoolRange, PoolSize, Progress, Setup};
use tokio::time::{timeout_at, Instant};

use crate::etcd::Etcd;
use crate::pool::{Allocation, PoolObject};
use crate::report::{Failure, Report, SchemeExtras, SYSTEM};
use crate::scheme::{allocate, release, OpError, Pool};

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
    /// When to stop: op count, duration, grace; the per-operation budget, retries included
    /// (whereabouts' `RequestTimeout` is 10 s).
    pub limits: Limits,
    /// `allocate:release` ratio.
    pub mix: Mix,
    /// IPv6 pools instead of IPv4.
    pub ipv6: bool,
    /// Allocations written into each pool (one plain PUT, unmeasured) before the run.
    pub prefill: u64,
    /// Key prefix of the pool objects; everything under it is deleted first.
    pub prefix: String,
}

/// One benchmark client: its own connection, its pool, and the owners it makes
/// (`bench-<client>-<n>`, interface `eth0`).
struct SchemeClient {
    id: u32,
    pool: Pool,
    etcd: Etcd,
    made: u64,
}

impl Client for SchemeClient {
    type Owner = Allocation;
    type Failure = Failure;
    /// A release that failed is not tried again (as before loadgen: the owner is dropped).
    const KEEPS_OWNER_OF_FAILED_RELEASE: bool = false;

    fn new_owner(&mut self) -> Allocation {
        self.made += 1;
        let name = format!("bench-{}-{}", self.id, self.made);
        Allocation { podref: format!("bench/{name}"), id: name, ifname: "eth0".into() }
    }

    async fn run(&mut self, op: OpKind, owner: &Allocation, ctx: OpContext<'_>) -> Result<(), Failure> {
        let attempt = async {
            match op {
                OpKind::Allocate => allocate(&mut self.etcd, &self.pool, ctx.attempts, owner).await,
                OpKind::Release => release(&mut self.etcd, &self.pool, ctx.attempts, owner).await,
            }
        };
        match timeout_at(ctx.deadline, attempt).await.unwrap_or(Err(OpError::Timeout)) {
            Ok(()) => Ok(()),
            Err(OpError::Exhausted) => Err(Failure::Exhausted),
            Err(OpError::RetriesExhausted) => Err(Failure::RetriesExhausted),
            Err(OpError::Etcd(msg)) => {
                tracing::debug!(client = self.id, %msg, "etcd error");
                Err(Failure::Etcd)
            }
            Err(OpError::Timeout) if Instant::now() >= ctx.hard_stop => Err(Failure::CutAtHardStop),
            Err(OpError::Timeout) => Err(Failure::Timeout),
        }
    }
}

fn pools(cfg: &Config) -> anyhow::Result<Vec<Pool>> {
    let ranges = PoolRange::layout(cfg.pools, cfg.pool_size, cfg.ipv6)?;
    let pools = ranges.into_iter().map(|range| {
        // whereabouts names the IPPool after its range, ':' and '/' replaced by '-'.
        let name = range.cidr().replace([':', '/'], "-");
        Pool { key: format!("{}{}", cfg.prefix, name), name, range }
    });
    Ok(pools.collect())
}

/// Deletes old pools under the prefix, writes the prefilled pools, compacts: nothing of it is measured.
async fn prepare(cfg: &Config, pools: &[Pool]) -> anyhow::Result<()> {
    let mut admin = Etcd::connect(cfg.endpoints[0], cfg.limits.op_timeout).await?;
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
    let pools = pools(&cfg)?;
    prepare(&cfg, &pools).await?;

    let mut clients = Vec::with_capacity(cfg.clients as usize);
    for id in 0..cfg.clients {
        let etcd = Etcd::connect(cfg.endpoints[id as usize % cfg.endpoints.len()], cfg.limits.op_timeout).await?;
        clients.push(SchemeClient { id, pool: pools[id as usize % pools.len()].clone(), etcd, made: 0 });
    }
    let plan = Plan { mix: cfg.mix, limits: cfg.limits, progress: Progress::Conflicts };
    let finished = driver::run(clients, plan).await?;

    if let Ok(mut admin) = Etcd::connect(cfg.endpoints[0], cfg.limits.op_timeout).await {
        if let Err(e) = admin.compact_now().await {
            tracing::warn!(error = %e, "compaction after the run failed");
        }
    }

    let setup = Setup {
        system: SYSTEM,
        clients: cfg.clients,
        pools: cfg.pools,
        pool_size: PoolSize::Number(u64::try_from(cfg.pool_size).unwrap_or(u64::MAX)),
        prefill: cfg.prefill,
        mix: cfg.mix,
        ipv6: cfg.ipv6,
    };
    Ok(Report::new(setup, finished.measured, SchemeExtras {}))
}
