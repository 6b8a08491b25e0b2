//! The closed loop both load generators run. `clients` tasks each repeat: stop at the duration or
//! once `--ops` operations were started over all clients; pick the next operation from the mix
//! (a release gives back the oldest address the client holds, or allocates when it holds none);
//! run it within its budget (`--op-timeout`, never past duration + grace, the hard stop); record
//! its latency if it succeeded. A progress line goes to stderr about once a second.
//!
//! How an operation reaches the system under test is the [`Client`]'s business.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::AdditionError;
use tokio::task::JoinError;
use tokio::time::Instant;

use crate::error_kinds::{ErrorKinds, FailureKind};
use crate::latency::Latencies;
use crate::limits::Limits;
use crate::mix::{Mix, OpKind};
use crate::report::Measured;

/// One client of the system under test: it makes owners and runs operations for them.
pub trait Client: Send + 'static {
    /// Who holds an address, from its allocation to its release.
    type Owner: Send + 'static;
    /// Why an operation failed.
    type Failure: FailureKind;

    /// Whether the owner of a failed release is kept, to be released again later (where a
    /// failure leaves the outcome unknown and releases are idempotent), or forgotten.
    const KEEPS_OWNER_OF_FAILED_RELEASE: bool;

    /// A fresh owner for the next allocation.
    fn new_owner(&mut self) -> Self::Owner;

    /// Runs one operation for `owner`, giving up at `ctx.deadline`. A failure is classified by
    /// the client, which knows the hard stop from `ctx`.
    fn run(
        &mut self,
        op: OpKind,
        owner: &Self::Owner,
        ctx: OpContext<'_>,
    ) -> impl Future<Output = Result<(), Self::Failure>> + Send;
}

/// What an operation may know of its run.
#[derive(Debug, Clone, Copy)]
pub struct OpContext<'a> {
    /// The operation's budget ends here (its `--op-timeout`, or the hard stop if sooner).
    pub deadline: Instant,
    /// Duration + grace: operations still running now are cut.
    pub hard_stop: Instant,
    /// Where the client counts its extra attempts and lost races.
    pub attempts: &'a Attempts,
}

/// Attempts beyond the first and compare-and-swaps lost, counted by the clients as they happen
/// (so an operation cut by its deadline still counts its own), shared by all clients of a run.
#[derive(Debug, Default)]
pub struct Attempts {
    /// Compare-and-swap writes (or creations) that lost the race.
    pub conflicts: AtomicU64,
    /// Attempts beyond the first.
    pub retries: AtomicU64,
}

/// What the progress line shows besides ok operations and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No progress line.
    Quiet,
    /// Lost compare-and-swaps.
    Conflicts,
    /// Attempts beyond the first.
    Retries,
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Every client's `allocate:release` mix.
    pub mix: Mix,
    /// When to stop.
    pub limits: Limits,
    /// The progress line.
    pub progress: Progress,
}

/// A run that ended: what it measured and the clients, handed back with whatever they kept.
#[derive(Debug)]
pub struct Finished<C: Client> {
    /// The figures of the report.
    pub measured: Measured<C::Failure>,
    /// The clients, in the order given.
    pub clients: Vec<C>,
}

/// Why a run could not be summed up.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A client task panicked.
    #[error("client task panicked")]
    ClientPanicked(#[source] JoinError),
    /// Two clients' histograms could not be added (they share their bounds, so this is a bug).
    #[error("merging histograms")]
    Merge(#[source] AdditionError),
}

/// Counters the clients update and the progress line reads.
#[derive(Debug, Default)]
struct Live {
    ok: AtomicU64,
    errors: AtomicU64,
    issued: AtomicU64,
    attempts: Attempts,
}

/// When a client stops.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    mix: Mix,
    ops: Option<u64>,
    stop_at: Instant,
    hard_stop: Instant,
    op_timeout: Duration,
}

/// One client's share of the results.
struct ClientResult<C: Client> {
    client: C,
    latencies: Latencies,
    errors: ErrorKinds<C::Failure>,
}

async fn drive<C: Client>(mut client: C, b: Bounds, live: Arc<Live>) -> ClientResult<C> {
    let mut latencies = Latencies::default();
    let mut errors = ErrorKinds::default();
    let mut held: VecDeque<C::Owner> = VecDeque::new();
    for cycle in 0u64.. {
        if Instant::now() >= b.stop_at {
            break;
        }
        if b.ops.is_some_and(|limit| live.issued.fetch_add(1, Relaxed) >= limit) {
            break;
        }
        let to_release = if b.mix.op_at(cycle) == OpKind::Release { held.pop_front() } else { None };
        let (op, owner) = match to_release {
            Some(owner) => (OpKind::Release, owner),
            None => (OpKind::Allocate, client.new_owner()),
        };
        let started = Instant::now();
        let ctx = OpContext {
            deadline: (started + b.op_timeout).min(b.hard_stop),
            hard_stop: b.hard_stop,
            attempts: &live.attempts,
        };
        let result = client.run(op, &owner, ctx).await;
        let elapsed = started.elapsed();
        match result {
            Ok(()) => {
                latencies.record(op, elapsed);
                if op == OpKind::Allocate {
                    held.push_back(owner);
                }
                live.ok.fetch_add(1, Relaxed);
            }
            Err(kind) => {
                live.errors.fetch_add(1, Relaxed);
                errors.count(kind);
                if op == OpKind::Release && C::KEEPS_OWNER_OF_FAILED_RELEASE {
                    held.push_back(owner);
                }
            }
        }
        if Instant::now() >= b.hard_stop {
            break;
        }
    }
    ClientResult { client, latencies, errors }
}

/// Runs `clients` (already connected) concurrently as `plan` says, one tokio task each, and
/// sums up. The measured time starts here.
pub async fn run<C: Client>(clients: Vec<C>, plan: Plan) -> Result<Finished<C>, DriverError> {
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let stop_at = start + plan.limits.duration;
    let bounds = Bounds {
        mix: plan.mix,
        ops: plan.limits.ops,
        stop_at,
        hard_stop: stop_at + plan.limits.grace,
        op_timeout: plan.limits.op_timeout,
    };
    let tasks: Vec<_> = clients.into_iter().map(|c| tokio::spawn(drive(c, bounds, live.clone()))).collect();
    let progress =
        (plan.progress != Progress::Quiet).then(|| tokio::spawn(progress(live.clone(), start, plan.progress)));

    let mut latencies = Latencies::default();
    let mut errors = ErrorKinds::default();
    let mut clients = Vec::with_capacity(tasks.len());
    for task in tasks {
        let r = task.await.map_err(DriverError::ClientPanicked)?;
        latencies.merge(&r.latencies).map_err(DriverError::Merge)?;
        errors.add(&r.errors);
        clients.push(r.client);
    }
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    let (conflicts, retries) = (live.attempts.conflicts.load(Relaxed), live.attempts.retries.load(Relaxed));
    let measured = Measured::new(&latencies, elapsed, errors, conflicts, retries).map_err(DriverError::Merge)?;
    Ok(Finished { measured, clients })
}

/// About once a second: elapsed time, ok ops (and the rate over the last second), conflicts or
/// retries, errors.
async fn progress(live: Arc<Live>, start: Instant, shows: Progress) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = 0;
    loop {
        tick.tick().await;
        let ok = live.ok.load(Relaxed);
        let (label, n) = match shows {
            Progress::Conflicts => ("conflicts", &live.attempts.conflicts),
            Progress::Retries | Progress::Quiet => ("retries", &live.attempts.retries),
        };
        eprintln!(
            "[{:6.1}s] ok {ok} (+{}/s)  {label} {}  errors {}",
            start.elapsed().as_secs_f64(),
            ok - last,
            n.load(Relaxed),
            live.errors.load(Relaxed),
        );
        last = ok;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_kinds::tests::Kind;

    /// A client of an in-memory pool of `free` addresses that logs what it was asked to do.
    struct Fake {
        id: u32,
        next: u32,
        free: u32,
        fail_releases: bool,
        log: Vec<(OpKind, String)>,
    }

    fn fake(id: u32, free: u32) -> Fake {
        Fake { id, next: 0, free, fail_releases: false, log: Vec::new() }
    }

    impl Client for Fake {
        type Owner = String;
        type Failure = Kind;
        const KEEPS_OWNER_OF_FAILED_RELEASE: bool = true;

        fn new_owner(&mut self) -> String {
            self.next += 1;
            format!("c{}-{}", self.id, self.next)
        }

        async fn run(&mut self, op: OpKind, owner: &String, ctx: OpContext<'_>) -> Result<(), Kind> {
            assert!(ctx.deadline <= ctx.hard_stop);
            self.log.push((op, owner.clone()));
            match op {
                OpKind::Allocate if self.free == 0 => {
                    ctx.attempts.retries.fetch_add(2, Relaxed);
                    Err(Kind::Exhausted)
                }
                OpKind::Allocate => {
                    self.free -= 1;
                    Ok(())
                }
                OpKind::Release if self.fail_releases => {
                    ctx.attempts.conflicts.fetch_add(1, Relaxed);
                    Err(Kind::RetriesExhausted)
                }
                OpKind::Release => {
                    self.free += 1;
                    Ok(())
                }
            }
        }
    }

    fn plan(mix: &str, ops: u64) -> Plan {
        // The op count ends these runs; the minute is only the bound of a broken test.
        let limits = Limits::from_flags(Some(ops), Some(60.0), 5.0, 10.0).unwrap();
        Plan { mix: mix.parse().unwrap(), limits, progress: Progress::Quiet }
    }

    #[tokio::test]
    async fn ops_bound_the_run_and_releases_give_back_the_oldest() {
        let done = run(vec![fake(0, 100)], plan("2:1", 9)).await.unwrap();
        let m = &done.measured;
        assert_eq!((m.allocations_ok, m.releases_ok, m.errors.total()), (6, 3, 0));
        let log: Vec<String> = done.clients[0]
            .log
            .iter()
            .map(|(op, o)| format!("{}{o}", if *op == OpKind::Release { "-" } else { "+" }))
            .collect();
        assert_eq!(log, ["+c0-1", "+c0-2", "-c0-1", "+c0-3", "+c0-4", "-c0-2", "+c0-5", "+c0-6", "-c0-3"]);
    }

    #[tokio::test]
    async fn the_op_count_is_shared_by_all_clients() {
        let clients = (0..4).map(|i| fake(i, 100)).collect();
        let done = run(clients, plan("1:1", 10)).await.unwrap();
        let m = &done.measured;
        assert_eq!(m.allocations_ok + m.releases_ok, 10);
        assert_eq!(done.clients.iter().map(|c| c.log.len()).sum::<usize>(), 10);
        assert_eq!(done.clients.iter().map(|c| c.id).collect::<Vec<_>>(), [0, 1, 2, 3], "handed back in order");
    }

    #[tokio::test]
    async fn failures_are_counted_by_kind_with_the_clients_attempts() {
        // Two addresses, fill only: two allocations, then every one fails (and retries twice).
        let done = run(vec![fake(0, 2)], plan("1:0", 5)).await.unwrap();
        let m = &done.measured;
        assert_eq!((m.allocations_ok, m.errors.get(Kind::Exhausted), m.errors.total()), (2, 3, 3));
        assert_eq!((m.retries, m.conflicts), (6, 0));
        assert_eq!(m.release_latency, crate::LatencySummary::default(), "no release was asked for");
    }

    #[tokio::test]
    async fn a_failed_release_keeps_its_owner_when_the_client_says_so() {
        let mut c = fake(0, 100);
        c.fail_releases = true;
        let done = run(vec![c], plan("1:1", 6)).await.unwrap();
        let log: Vec<&str> = done.clients[0].log.iter().map(|(_, o)| o.as_str()).collect();
        // A failed release puts its owner at the back of the queue: released again later.
        assert_eq!(log, ["c0-1", "c0-1", "c0-2", "c0-1", "c0-3", "c0-2"]);
        let m = &done.measured;
        assert_eq!((m.allocations_ok, m.releases_ok, m.errors.get(Kind::RetriesExhausted), m.conflicts), (3, 0, 3, 3));
    }

    #[tokio::test]
    async fn a_zero_duration_runs_nothing() {
        let limits = Limits::from_flags(None, Some(0.0), 0.0, 10.0).unwrap();
        let plan = Plan { mix: Mix::new(1, 1).unwrap(), limits, progress: Progress::Quiet };
        let done = run(vec![fake(0, 10), fake(1, 10)], plan).await.unwrap();
        assert_eq!(done.measured.allocations_ok + done.measured.releases_ok, 0);
        assert!(done.clients.iter().all(|c| c.log.is_empty()));
    }
}
