//! The checker: reads a history and reports uniqueness, durability, convergence,
//! linearizability, liveness and mixed-version findings.

mod anomaly;
mod convergence;
mod durability;
mod index;
mod linearizable;
mod liveness;
mod operation;
mod report;
mod summary;
mod uniqueness;
mod versions;

use std::path::Path;
use std::time::{Duration, Instant};

pub use anomaly::{Anomaly, AnomalyKind};
pub use linearizable::{LinStatus, NetworkVerdict};
pub use liveness::{Liveness, Recovery, RECOVERY_FAULTS};
pub use operation::{pair, ClientOp, OpKind, Outcome, Paired};
pub use report::{AnomalyGroup, Report, Verdict};

use crate::history::{read_history, Event, HistoryError};
use crate::wgl::Budget;

/// Knobs of a check run.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Per-network bound on memoized search states; past it the network is "unknown".
    pub max_states: usize,
    /// Wall-clock bound on the whole linearizability search (none in tests: keeps them deterministic).
    pub time_limit: Option<Duration>,
    /// Examples kept per anomaly kind.
    pub max_examples: usize,
    /// Recovery longer than this after the last heal/resume/restart is a `slow-recovery` anomaly.
    pub max_recovery: Option<Duration>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { max_states: 500_000, time_limit: None, max_examples: 3, max_recovery: None }
    }
}

/// Checks a parsed history. Errors only when the history breaks the format (pairing, ranges).
pub fn check(events: &[Event], opts: &CheckOptions) -> Result<Report, HistoryError> {
    let paired = pair(events)?;
    let ops = &paired.ops;
    let mut found = uniqueness::find(ops);
    found.extend(durability::find(ops));
    found.extend(convergence::find(ops, &paired.nemesis));
    found.extend(versions::find(&paired.nemesis));
    let budget = Budget { max_states: opts.max_states, deadline: opts.time_limit.map(|d| Instant::now() + d) };
    let (verdicts, lin) = linearizable::check(ops, budget);
    found.extend(lin);
    let (liveness, live) = liveness::measure(ops, &paired.nemesis, opts.max_recovery);
    found.extend(live);
    let final_reads = ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::FinalRead { table: Some(_) }) && o.outcome == Outcome::Ok)
        .count();
    Ok(Report::new(events, final_reads, verdicts, liveness, found, opts.max_examples))
}

/// Reads `path` (`results/<run>/history.jsonl`) and checks it.
pub fn check_file(path: &Path, opts: &CheckOptions) -> Result<Report, HistoryError> {
    let events = read_history(path)?;
    check(&events, opts)
}
