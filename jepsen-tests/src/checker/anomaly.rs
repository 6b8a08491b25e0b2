//! Anomalies: what the checker found wrong, by kind, with the events involved.

use serde::{Deserialize, Serialize};

/// Kinds of anomaly, each tied to one invariant of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// Uniqueness: one address certainly held by two owners at once.
    DuplicateAddress,
    /// Durability: an acknowledged, never-released allocation is missing from a final table.
    LostAllocation,
    /// Durability: an acknowledged release is undone in a final table.
    UndoneRelease,
    /// Convergence: final tables of two nodes differ.
    DivergingFinalTables,
    /// A final read after healing did not complete `ok`.
    FinalReadFailed,
    /// Convergence: after the load stopped, the members did not agree on one leader and one
    /// applied index within the harness's bound (a member stopped replicating).
    NotConverged,
    /// Mixed versions: a member restarted on the other release did not serve and catch up with
    /// the leader within the bound (it refused the log, or exited).
    RollStalled,
    /// Mixed versions: a member stores a log entry or snapshot in a format newer than the
    /// cluster version (what a member of the older release cannot read).
    FormatAboveClusterVersion,
    /// No linearization of a network's operations exists against the lowest-free model.
    NotLinearizable,
    /// Liveness: client operations after the last recovery fault, none of them `ok`.
    NoRecovery,
    /// Liveness: recovery took longer than the configured limit.
    SlowRecovery,
}

impl AnomalyKind {
    /// The kebab-case name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::DuplicateAddress => "duplicate-address",
            AnomalyKind::LostAllocation => "lost-allocation",
            AnomalyKind::UndoneRelease => "undone-release",
            AnomalyKind::DivergingFinalTables => "diverging-final-tables",
            AnomalyKind::FinalReadFailed => "final-read-failed",
            AnomalyKind::NotConverged => "not-converged",
            AnomalyKind::RollStalled => "roll-stalled",
            AnomalyKind::FormatAboveClusterVersion => "format-above-cluster-version",
            AnomalyKind::NotLinearizable => "not-linearizable",
            AnomalyKind::NoRecovery => "no-recovery",
            AnomalyKind::SlowRecovery => "slow-recovery",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Which invariant.
    pub kind: AnomalyKind,
    /// Human-readable explanation.
    pub message: String,
    /// Indexes of the events involved (invokes and/or completions).
    pub events: Vec<u64>,
}

impl Anomaly {
    /// Builds an anomaly.
    pub fn new(kind: AnomalyKind, message: impl Into<String>, events: Vec<u64>) -> Self {
        Self { kind, message: message.into(), events }
    }
}
