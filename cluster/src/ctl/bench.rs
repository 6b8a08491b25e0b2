//! `whereabouts-ctl bench`: a load generator against running nodes, like `etcdctl check perf`.
//!
//! `--clients` tokio tasks, each with its own HTTP/2 connection to one endpoint (client `c` to
//! endpoint `c % n`, so followers forward as they would for plugins on every host), on pool
//! `c % --pools`. Each operation is a real Allocate or Release with a fresh request id and a
//! realistic owner; `--mix a:r` makes `a` allocations then `r` releases of the oldest address the
//! client holds. A run stops starting operations at `--duration` or after `--ops`; operations
//! still running at duration + `--grace` are cut and counted as errors. `--prefill` allocations
//! per pool are made first, unmeasured. The report (`-o json`) has `etcd-scheme-bench`'s schema.

mod client;
mod report;
mod workload;

use crate::tls::Transport;
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::Output;
use client::{unix_ns, Conn, Op};
use report::{ErrorKinds, LatencySummary, Report};
use workload::PoolRange;

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
    #[arg(long, default_value = "1:1", value_parser = parse_mix)]
    pub mix: (u32, u32),
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
    /// Write every operation to this CSV file: `op_start_ns,attempt_sent_ns,end_ns,op,ok,attempts`
    /// (Unix nanoseconds; `attempt_sent_ns` of the successful attempt).
    #[arg(long)]
    pub timeline: Option<PathBuf>,
    /// Print no progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_mix(s: &str) -> Result<(u32, u32), String> {
    let (a, r) = s.split_once(':').ok_or("expected allocate:release, e.g. 1:1")?;
    let a = a.trim().parse::<u32>().map_err(|e| format!("allocate part: {e}"))?;
    let r = r.trim().parse::<u32>().map_err(|e| format!("release part: {e}"))?;
    if a == 0 {
        return Err("allocate part must be ≥ 1".into());
    }
    Ok((a, r))
}

fn seconds(name: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("--{name} {s} is not a valid number of seconds"))
}

/// Counters shared with the progress line.
#[derive(Debug, Default)]
struct Live {
    ok: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    issued: AtomicU64,
}

/// One line of `--timeline`.
struct Row {
    op_start_ns: u64,
    attempt_sent_ns: u64,
    end_ns: u64,
    release: bool,
    ok: bool,
    attempts: u32,
}

/// Most timeline rows a client keeps (bounds memory on long runs).
const MAX_ROWS_PER_CLIENT: usize = 2_000_000;

struct ClientResult {
    alloc: Histogram<u64>,
    release: Histogram<u64>,
    errors: ErrorKinds,
    rows: Vec<Row>,
}

struct ClientPlan {
    network: Arc<str>,
    cidr: String,
    mix: (u32, u32),
    ops: Option<u64>,
    retry: bool,
    timeline: bool,
    stop_at: Instant,
    hard_stop: Instant,
    op_timeout: Duration,
    live: Arc<Live>,
}

async fn run_client(plan: ClientPlan, mut conn: Conn) -> ClientResult {
    let mut res = ClientResult {
        alloc: report::new_histogram(),
        release: report::new_histogram(),
        errors: ErrorKinds::default(),
        rows: Vec::new(),
    };
    let mut held: VecDeque<proto::ipam::Attachment> = VecDeque::new();
    let (a, r) = plan.mix;
    for cycle in 0u64.. {
        if Instant::now() >= plan.stop_at {
            break;
        }
        if plan.ops.is_some_and(|limit| plan.live.issued.fetch_add(1, Relaxed) >= limit) {
            break;
        }
        let (op, owner) = {
            let mut rng = rand::rng();
            let id = workload::request_id(&mut rng);
            let want_release = cycle % u64::from(a + r) >= u64::from(a);
            match if want_release { held.pop_front() } else { None } {
                Some(owner) => (Op::Release(workload::release(&plan.network, &owner, id)), owner),
                None => {
                    let owner = workload::attachment(&mut rng);
                    (Op::Allocate(workload::allocate(&plan.network, &plan.cidr, owner.clone(), id)), owner)
                }
            }
        };
        let is_release = matches!(op, Op::Release(_));
        let op_start_ns = if plan.timeline { unix_ns() } else { 0 };
        let started = Instant::now();
        let deadline = (started + plan.op_timeout).min(plan.hard_stop);
        let result = conn.run(&op, deadline, plan.retry).await;
        let elapsed = started.elapsed();
        let mut row = Row { op_start_ns, attempt_sent_ns: 0, end_ns: 0, release: is_release, ok: false, attempts: 0 };
        match result {
            Ok(done) => {
                report::record(if is_release { &mut res.release } else { &mut res.alloc }, elapsed);
                if !is_release {
                    held.push_back(owner);
                }
                plan.live.ok.fetch_add(1, Relaxed);
                plan.live.retries.fetch_add(u64::from(done.attempts - 1), Relaxed);
                (row.ok, row.attempts, row.attempt_sent_ns) = (true, done.attempts, done.attempt_sent_ns);
            }
            Err(failure) => {
                plan.live.errors.fetch_add(1, Relaxed);
                if Instant::now() >= plan.hard_stop {
                    res.errors.cut_at_hard_stop += 1;
                } else {
                    failure.count(&mut res.errors);
                }
                if is_release {
                    // Unknown outcome: keep the owner, a later release is idempotent.
                    held.push_back(owner);
                }
            }
        }
        if plan.timeline && res.rows.len() < MAX_ROWS_PER_CLIENT {
            row.end_ns = unix_ns();
            res.rows.push(row);
        }
        if Instant::now() >= plan.hard_stop {
            break;
        }
    }
    res
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
        let mut conn = Conn::connect(transport, endpoints, w % endpoints.len()).await?;
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
    let duration = seconds("duration", args.duration.unwrap_or(if args.ops.is_some() { 60.0 } else { 10.0 }))?;
    let grace = seconds("grace", args.grace)?;
    let op_timeout = seconds("op-timeout", args.op_timeout)?;
    let prefill_limit = seconds("prefill-timeout", args.prefill_timeout)?;
    let ranges =
        (0..args.pools).map(|i| PoolRange::new(i, args.pool_size, args.ipv6)).collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        u128::from(args.prefill) <= ranges[0].usable(),
        "--prefill {} exceeds the {} usable addresses of a pool",
        args.prefill,
        ranges[0].usable()
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

    let mut conns = Vec::with_capacity(args.clients as usize);
    for c in 0..args.clients as usize {
        conns.push(Conn::connect(&transport, &endpoints, c % endpoints.len()).await?);
    }
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let stop_at = start + duration;
    let hard_stop = stop_at + grace;
    let mut tasks = Vec::with_capacity(conns.len());
    for (c, conn) in conns.into_iter().enumerate() {
        let plan = ClientPlan {
            network: network.clone(),
            cidr: cidrs[c % cidrs.len()].clone(),
            mix: args.mix,
            ops: args.ops,
            retry: args.retry,
            timeline: args.timeline.is_some(),
            stop_at,
            hard_stop,
            op_timeout,
            live: live.clone(),
        };
        tasks.push(tokio::spawn(run_client(plan, conn)));
    }
    let progress = (!args.quiet).then(|| tokio::spawn(progress(live.clone(), start)));

    let mut alloc = report::new_histogram();
    let mut rel = report::new_histogram();
    let mut errors = ErrorKinds::default();
    let mut rows = Vec::new();
    for task in tasks {
        let r = task.await.context("client task panicked")?;
        alloc.add(&r.alloc).context("merging histograms")?;
        rel.add(&r.release).context("merging histograms")?;
        errors.add(&r.errors);
        rows.extend(r.rows);
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(path) = &args.timeline {
        write_timeline(path, &mut rows).with_context(|| format!("writing {}", path.display()))?;
    }

    let mut all = alloc.clone();
    all.add(&rel).context("merging histograms")?;
    let ops_ok = all.len();
    let report = Report {
        system: "whereabouts-rs".into(),
        clients: args.clients,
        pools: args.pools,
        ops_ok,
        errors: errors.total(),
        conflicts: 0,
        duration_s: (elapsed * 1000.0).round() / 1000.0,
        throughput: if elapsed > 0.0 { (ops_ok as f64 / elapsed * 10.0).round() / 10.0 } else { 0.0 },
        latency_ms: LatencySummary::from_histogram(&all),
        retries: live.retries.load(Relaxed),
        allocations_ok: alloc.len(),
        releases_ok: rel.len(),
        allocate_latency_ms: LatencySummary::from_histogram(&alloc),
        release_latency_ms: LatencySummary::from_histogram(&rel),
        pool_size: args.pool_size.to_string(),
        prefill: args.prefill,
        mix: format!("{}:{}", args.mix.0, args.mix.1),
        ipv6: args.ipv6,
        error_kinds: errors,
        network: network.to_string(),
        endpoints,
        prefill_s: (prefill_s * 1000.0).round() / 1000.0,
    };
    match out {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Table => print!("{}", report.to_text()),
    }
    Ok(())
}

fn write_timeline(path: &std::path::Path, rows: &mut [Row]) -> std::io::Result<()> {
    rows.sort_by_key(|r| r.end_ns);
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "op_start_ns,attempt_sent_ns,end_ns,op,ok,attempts")?;
    for r in rows.iter() {
        let op = if r.release { "release" } else { "allocate" };
        writeln!(w, "{},{},{},{op},{},{}", r.op_start_ns, r.attempt_sent_ns, r.end_ns, u8::from(r.ok), r.attempts)?;
    }
    w.flush()
}

/// About once a second: elapsed time, ok ops (and the rate over the last second), retries, errors.
async fn progress(live: Arc<Live>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0;
    loop {
        tick.tick().await;
        let ok = live.ok.load(Relaxed);
        eprintln!(
            "[{:6.1}s] ok {ok} (+{}/s)  retries {}  errors {}",
            start.elapsed().as_secs_f64(),
            ok - last,
            live.retries.load(Relaxed),
            live.errors.load(Relaxed),
        );
        last = ok;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_rejects() {
        assert_eq!(parse_mix("1:1"), Ok((1, 1)));
        assert_eq!(parse_mix("3:0"), Ok((3, 0)));
        assert!(parse_mix("0:1").is_err());
        assert!(parse_mix("1").is_err());
    }

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
                assert_eq!((b.clients, b.mix, b.pool_size), (64, (1, 0), 1u128 << 64));
            }
            other => panic!("{other:?}"),
        }
    }
}
