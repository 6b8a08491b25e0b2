//! The load: N clients allocating and releasing with one of the reference schemes ([`Scheme`]):
//! whereabouts' read-modify-write of the whole pool ([`crate::scheme`]) or one key per address
//! ([`crate::key_per_address`]), driven by loadgen's closed loop (bounded by an op count and by
//! time, with a progress line about once a second).

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use loadgen::{driver, Client, Limits, Mix, OpContext, OpKind, Plan, PoolRange, PoolSize, Progress, Setup};
use tokio::time::{timeout_at, Instant};

use crate::etcd::Etcd;
use crate::key_per_address;
use crate::pool::{Allocation, PoolObject};
use crate::report::{Failure, Report, SchemeExtras, SYSTEM, SYSTEM_KEY_PER_ADDRESS};
use crate::scheme::{allocate, release, OpError, Pool};
use fastrand::Rng;

/// Which etcd allocation scheme the clients use (`--scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Scheme {
    /// whereabouts' own: GET the whole pool object, lowest free address, compare-and-swap write of
    /// the whole object on mod_revision ([`crate::scheme`]).
    #[default]
    WholePool,
    /// One key per address claimed with create-if-absent at random offsets, released with a delete
    /// comparing the owner ([`crate::key_per_address`]).
    KeyPerAddress,
}

impl Scheme {
    /// The name on the command line and in the report's `scheme` field.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::WholePool => "whole-pool",
            Scheme::KeyPerAddress => "key-per-address",
        }
    }

    /// The report's `system`, by which `bench-report` tells the references apart (whole-pool keeps
    /// the name it always had, so older result directories read the same).
    pub fn system(self) -> &'static str {
        match self {
            Scheme::WholePool => SYSTEM,
            Scheme::KeyPerAddress => SYSTEM_KEY_PER_ADDRESS,
        }
    }
}

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
    /// Key prefix of the pool objects (or of the address keys); everything under it is deleted first.
    pub prefix: String,
    /// The allocation scheme.
    pub scheme: Scheme,
    /// Seed of the clients' random generators (key-per-address: client `c` uses
    /// [`client_rng`]`(seed, c)`), so a run's choices are reproducible.
    pub seed: u64,
}

/// One benchmark client: its own connection, its pool, the owners it makes
/// (`bench-<client>-<n>`, interface `eth0`) and what its scheme keeps between operations.
struct EtcdClient {
    id: u32,
    pool: Pool,
    etcd: Etcd,
    made: u64,
    scheme: ClientScheme,
}

/// What a client of each scheme keeps between operations.
enum ClientScheme {
    /// whereabouts' scheme reads the pool object every time: nothing.
    WholePool,
    /// Key per address: the random offsets' generator, and owner id → the offset it holds (what a
    /// release deletes, with no read).
    KeyPerAddress { rng: Rng, held: HashMap<String, u128> },
}

impl Client for EtcdClient {
    type Owner = Allocation;
    type Failure = Failure;
    /// A release that failed is not tried again (as before loadgen: the owner is dropped; with one
    /// key per address its key may stay behind).
    const KEEPS_OWNER_OF_FAILED_RELEASE: bool = false;

    fn new_owner(&mut self) -> Allocation {
        self.made += 1;
        bench_owner(self.id, self.made)
    }

    async fn run(&mut self, op: OpKind, owner: &Allocation, ctx: OpContext<'_>) -> Result<(), Failure> {
        let EtcdClient { etcd, pool, scheme, .. } = self;
        let attempt = async {
            match (scheme, op) {
                (ClientScheme::WholePool, OpKind::Allocate) => allocate(etcd, pool, ctx.attempts, owner).await,
                (ClientScheme::WholePool, OpKind::Release) => release(etcd, pool, ctx.attempts, owner).await,
                // An owner that already holds an address keeps it (as whereabouts' allocate).
                (ClientScheme::KeyPerAddress { held, .. }, OpKind::Allocate) if held.contains_key(&owner.id) => Ok(()),
                (ClientScheme::KeyPerAddress { rng, held }, OpKind::Allocate) => {
                    let offset = key_per_address::allocate(etcd, pool, rng, ctx.attempts, &owner.id).await?;
                    held.insert(owner.id.clone(), offset);
                    Ok(())
                }
                // Forgotten first: the driver drops the owner of a failed release too.
                (ClientScheme::KeyPerAddress { held, .. }, OpKind::Release) => match held.remove(&owner.id) {
                    Some(offset) => key_per_address::release(etcd, pool, offset, &owner.id).await,
                    None => Ok(()), // holds nothing: nothing to delete
                },
            }
        };
        classify(self.id, timeout_at(ctx.deadline, attempt).await.unwrap_or(Err(OpError::Timeout)), &ctx)
    }
}

/// The `n`-th owner client `client` makes: `bench-<client>-<n>` on `eth0` (both schemes alike).
fn bench_owner(client: u32, n: u64) -> Allocation {
    owner_named(format!("bench-{client}-{n}"))
}

/// The owner `name` (container id) of pod `bench/<name>` on `eth0`.
fn owner_named(name: String) -> Allocation {
    Allocation { podref: format!("bench/{name}"), id: name, ifname: "eth0".into() }
}

/// The report's failure kind of an operation's result (both schemes fail the same ways).
fn classify(client: u32, result: Result<(), OpError>, ctx: &OpContext<'_>) -> Result<(), Failure> {
    match result {
        Ok(()) => Ok(()),
        Err(OpError::Exhausted) => Err(Failure::Exhausted),
        Err(OpError::RetriesExhausted) => Err(Failure::RetriesExhausted),
        Err(OpError::Etcd(msg)) => {
            tracing::debug!(client, %msg, "etcd error");
            Err(Failure::Etcd)
        }
        Err(OpError::Timeout) if Instant::now() >= ctx.hard_stop => Err(Failure::CutAtHardStop),
        Err(OpError::Timeout) => Err(Failure::Timeout),
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

/// Deletes old pools under the prefix, writes the prefilled pools (one object each, or their address
/// keys), compacts: nothing of it is measured.
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
        if cfg.scheme == Scheme::KeyPerAddress {
            key_per_address::prefill(&mut admin, pool, cfg.prefill).await?;
            continue;
        }
        let mut object = PoolObject::new(&pool.name, &pool.range);
        for n in 0..cfg.prefill {
            object.allocate(&pool.range, &owner_named(format!("prefill-{n}")));
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

    let mut connections = Vec::with_capacity(cfg.clients as usize);
    for id in 0..cfg.clients {
        let etcd = Etcd::connect(cfg.endpoints[id as usize % cfg.endpoints.len()], cfg.limits.op_timeout).await?;
        connections.push((id, pools[id as usize % pools.len()].clone(), etcd));
    }
    let clients = connections.into_iter().map(|(id, pool, etcd)| {
        let scheme = match cfg.scheme {
            Scheme::WholePool => ClientScheme::WholePool,
            Scheme::KeyPerAddress => {
                ClientScheme::KeyPerAddress { rng: client_rng(cfg.seed, id), held: HashMap::new() }
            }
        };
        EtcdClient { id, pool, etcd, made: 0, scheme }
    });
    let plan = Plan { mix: cfg.mix, limits: cfg.limits, progress: Progress::Conflicts };
    let measured = driver::run(clients.collect(), plan).await?.measured;

    if let Ok(mut admin) = Etcd::connect(cfg.endpoints[0], cfg.limits.op_timeout).await {
        if let Err(e) = admin.compact_now().await {
            tracing::warn!(error = %e, "compaction after the run failed");
        }
    }

    let setup = Setup {
        system: cfg.scheme.system(),
        clients: cfg.clients,
        pools: cfg.pools,
        pool_size: PoolSize::Number(u64::try_from(cfg.pool_size).unwrap_or(u64::MAX)),
        prefill: cfg.prefill,
        mix: cfg.mix,
        ipv6: cfg.ipv6,
    };
    Ok(Report::new(setup, measured, SchemeExtras { scheme: cfg.scheme.name() }))
}

/// The random stream of client `client` in a run seeded with `seed`: the same pair gives the same
/// choices, different clients get different streams.
pub fn client_rng(seed: u64, client: u32) -> Rng {
    Rng::with_seed(seed ^ ((u64::from(client) << 32) | u64::from(client)).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}
