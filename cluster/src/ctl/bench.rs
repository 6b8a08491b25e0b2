//! `whereabouts-ctl bench`: a load generator against running nodes, like `etcdctl check perf`.
//!
//! `--clients` tokio tasks, each with its own HTTP/2 connection to one endpoint (client `c` to
//! endpoint `c % n`, as plugins on every host start), on pool `c % --pools`. A follower forwards
//! writes to the leader and names it in its answer; the client then moves to the leader, as the
//! plugin does, unless `--no-follow-leader`. Each operation is a real Allocate or Release with a
//! fresh request id and a realistic owner; `--mix a:r` makes `a` allocations then `r` releases of
//! the oldest address the client holds. A run stops starting operations at `--duration` or after `--ops`; operations
//! still running at duration + `--grace` are cut and counted as errors. `--prefill` allocations
//! per pool are made first, unmeasured. The report (`-o json`) has `etcd-scheme-bench`'s schema.

mod client;
mod node_client;
mod report;
mod timeline;
mod workload;

use crate::tls::Transport;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use loadgen::{driver, limits, Limits, Mix, Plan, PoolRange, PoolSize, Progress, Setup};
use tokio::time::Instant;

use super::Output;
use client::{Conn, Op};
use node_client::NodeClient;
use report::{NodeExtras, Report, SYSTEM};

/// `whereabouts-ctl bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients (tokio tasks, one connection each, spread over the endpoints).
    #[arg(long, default_value_t = 1)]
    pub clients: u32,
    /// Pools; client `c` works on pool `c % pools`.
    #[arg(long, default_value_t = 1)]
    pub pools: u32,
    /// Addresses per pool, a power of two (4096 = a /20; up to 2^24 for IPv4, 2^64 for IPv6).
    #[arg(long, default_value_t = 4096)]
    pub pool_size: u128,
    /// Stop after this many operations in total.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Stop starting operations after this many seconds [default: 10, or 60 with --ops].
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds after --duration at which operations still running are cut (counted as errors).
    #[arg(long, default_value_t = 5.0)]
    pub grace: f64,
    /// Budget of one operation, retries included, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub op_timeout: f64,
    /// allocate:release ratio per client: 1:1 steady state, 1:0 fills.
    #[arg(long, default_value = "1:1")]
    pub mix: Mix,
    /// Allocations made in each pool before the run (unmeasured), e.g. 2048 for a half-full /20.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// Longest the prefill may take, in seconds.
    #[arg(long, default_value_t = 900.0)]
    pub prefill_timeout: f64,
    /// IPv6 pools.
    #[arg(long)]
    pub ipv6: bool,
    /// Network name of the pools [default: a fresh `bench-<random>`, so every run starts empty].
    #[arg(long)]
    pub network: Option<String>,
    /// Retry UNAVAILABLE as the CNI plugin does (same request id, next endpoint, leader hint
    /// first, 10–100 ms backoff per round) until --op-timeout; without it a failure ends the op.
    #[arg(long)]
    pub retry: bool,
    /// Keep every client on its own endpoint even when a follower's forwarded success names the
    /// leader (by default a client then sends its next operations to the leader, as the plugin
    /// does): measures the cost of forwarding.
    #[arg(long)]
    pub no_follow_leader: bool,
    /// Write every operation to this CSV file: `op_start_ns,attempt_sent_ns,end_ns,op,ok,attempts`
    /// (Unix nanoseconds; `attempt_sent_ns` of the successful attempt).
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Print no progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Makes `per_pool` allocations in each pool with 128 concurrent clients spread over the
/// endpoints (not measured), each retried as with `--retry`, within `limit`.
async fn prefill(
    transport: &Transport,
    endpoints: &[String],
    network: &str,
    cidrs: &[String],
    per_pool: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let total = per_pool * cidrs.len() as u64;
    let workers = 128u64.min(total) as usize;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + limit;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut conn = Conn::connect(transport, endpoints, w % endpoints.len(), true).await?;
        let (next, done, failed) = (next.clone(), done.clone(), failed.clone());
        let (network, cidrs) = (network.to_string(), cidrs.to_vec());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Relaxed);
                if n >= total || Instant::now() >= deadline {
                    return;
                }
                let op = {
                    let mut rng = rand::rng();
                    let cidr = &cidrs[(n % cidrs.len() as u64) as usize];
                    let a = workload::attachment(&mut rng);
                    Op::Allocate(workload::allocate(&network, cidr, a, workload::request_id(&mut rng)))
                };
                let op_deadline = (Instant::now() + Duration::from_secs(30)).min(deadline);
                match conn.run(&op, op_deadline, true).await {
                    Ok(_) => {
                        done.fetch_add(1, Relaxed);
                    }
                    Err(f) => {
                        if failed.fetch_add(1, Relaxed) < 5 {
                            eprintln!("prefill: an allocation failed: {f:?}");
                        }
                    }
                }
            }
        }));
    }
    let start = Instant::now();
    let progress = tokio::spawn({
        let done = done.clone();
        async move {
            let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
            loop {
                tick.tick().await;
                eprintln!("[prefill {:6.1}s] {} / {total}", start.elapsed().as_secs_f64(), done.load(Relaxed));
            }
        }
    });
    for t in tasks {
        t.await.context("prefill task panicked")?;
    }
    progress.abort();
    let (ok, bad) = (done.load(Relaxed), failed.load(Relaxed));
    anyhow::ensure!(ok == total, "prefill made {ok} of {total} allocations ({bad} failed) within {limit:?}");
    Ok(())
}

/// Runs the bench against `endpoints` and prints the report. `whereabouts-ctl` runs on a
/// current-thread runtime; the load generator gets its own multi-threaded one (one worker per
/// CPU, as `etcd-scheme-bench` has), so that the clients are not limited to one core.
pub async fn run(endpoints: Vec<String>, transport: Transport, out: Output, args: BenchArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        rt.block_on(bench(endpoints, transport, out, args))
    })
    .await
    .context("the bench thread panicked")?
}

async fn bench(endpoints: Vec<String>, transport: Transport, out: Output, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!endpoints.is_empty(), "no endpoints (use --endpoints)");
    anyhow::ensure!(args.clients > 0 && args.pools > 0, "--clients and --pools must be > 0");
    let limits = Limits::from_flags(args.ops, args.duration, args.grace, args.op_timeout)?;
    let prefill_limit = limits::seconds("prefill-timeout", args.prefill_timeout)?;
    let ranges = PoolRange::layout(args.pools, args.pool_size, args.ipv6)?;
    let usable = workload::usable(&ranges[0]);
    anyhow::ensure!(
        u128::from(args.prefill) <= usable,
        "--prefill {} exceeds the {usable} usable addresses of a pool",
        args.prefill
    );
    let cidrs: Vec<String> = ranges.iter().map(PoolRange::cidr).collect();
    let network: Arc<str> = match &args.network {
        Some(n) => n.as_str().into(),
        None => format!("bench-{:08x}", rand::random::<u32>()).into(),
    };

    let prefill_start = Instant::now();
    if args.prefill > 0 {
        prefill(&transport, &endpoints, &network, &cidrs, args.prefill, prefill_limit).await?;
    }
    let prefill_s = prefill_start.elapsed().as_secs_f64();

    let mut clients = Vec::with_capacity(args.clients as usize);
    for c in 0..args.clients as usize {
        clients.push(NodeClient {
            conn: Conn::connect(&transport, &endpoints, c % endpoints.len(), !args.no_follow_leader).await?,
            network: network.clone(),
            cidr: cidrs[c % cidrs.len()].clone(),
            retry: args.retry,
            timeline: args.timeline.is_some(),
            rows: Vec::new(),
        });
    }
    let progress = if args.quiet { Progress::Quiet } else { Progress::Retries };
    let finished = driver::run(clients, Plan { mix: args.mix, limits, progress }).await?;
    if let Some(path) = &args.timeline {
        let mut rows: Vec<_> = finished.clients.into_iter().flat_map(|c| c.rows).collect();
        timeline::write(path, &mut rows).with_context(|| format!("writing {}", path.display()))?;
    }

    let setup = Setup {
        system: SYSTEM,
        clients: args.clients,
        pools: args.pools,
        pool_size: PoolSize::Decimal(args.pool_size),
        prefill: args.prefill,
        mix: args.mix,
        ipv6: args.ipv6,
    };
    let extras =
        NodeExtras { network: network.to_string(), endpoints, prefill_s: (prefill_s * 1000.0).round() / 1000.0 };
    let report = Report::new(setup, finished.measured, extras);
    match out {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Table => print!("{}", report.to_text()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::{CommandFactory, Parser};
        super::super::Cli::command().debug_assert();
        let cli = super::super::Cli::try_parse_from([
            "whereabouts-ctl",
            "-o",
            "json",
            "bench",
            "--clients",
            "64",
            "--pool-size",
            "18446744073709551616",
            "--ipv6",
            "--mix",
            "1:0",
        ])
        .unwrap();
        match cli.command {
            super::super::Command::Bench(b) => {
                assert_eq!((b.clients, b.mix, b.pool_size), (64, Mix::new(1, 0).unwrap(), 1u128 << 64));
            }
            other => panic!("{other:?}"),
        }
        let bad_mix = super::super::Cli::try_parse_from(["whereabouts-ctl", "bench", "--mix", "0:1"]);
        assert!(bad_mix.is_err(), "a mix without allocations is refused");
    }
}
