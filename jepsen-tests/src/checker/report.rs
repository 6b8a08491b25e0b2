//! The checker's result: counts, per-network verdicts, liveness and anomalies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::anomaly::{Anomaly, AnomalyKind};
use super::linearizable::{LinStatus, NetworkVerdict};
use super::liveness::Liveness;
use crate::history::{Event, Process};

/// Overall verdict; maps to the CLI exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No anomaly, and every network proven linearizable.
    Valid,
    /// At least one anomaly.
    Invalid,
    /// No anomaly, but some search hit its bound: nothing is claimed.
    Unknown,
}

impl Verdict {
    /// Exit code of `jepsen-tests check`: 0 valid, 1 invalid, 3 unknown (2 is clap's usage error,
    /// 4 an unreadable or malformed history).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 3,
        }
    }
}

/// All anomalies of one kind: how many, and the first few.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyGroup {
    /// Total found.
    pub count: usize,
    /// The first ones, in the order found.
    pub examples: Vec<Anomaly>,
}

/// Everything `jepsen-tests check` prints (as a table, or as JSON with `--output json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Overall verdict.
    pub verdict: Verdict,
    /// Number of events in the history.
    pub events: usize,
    /// Client events by `f` then `type`.
    pub ops: BTreeMap<String, BTreeMap<String, usize>>,
    /// Nemesis invocations by fault name.
    pub nemesis: BTreeMap<String, usize>,
    /// Final reads that completed `ok` (durability is checked against each).
    pub final_reads: usize,
    /// Linearizability per network.
    pub linearizability: Vec<NetworkVerdict>,
    /// Recovery after heal/resume/restart.
    pub liveness: Liveness,
    /// Anomalies by kind.
    pub anomalies: BTreeMap<AnomalyKind, AnomalyGroup>,
}

impl Report {
    /// Assembles the report and derives the verdict.
    pub fn new(
        events: &[Event],
        final_reads: usize,
        linearizability: Vec<NetworkVerdict>,
        liveness: Liveness,
        found: Vec<Anomaly>,
        max_examples: usize,
    ) -> Self {
        let mut ops: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut nemesis: BTreeMap<String, usize> = BTreeMap::new();
        for ev in events {
            match ev.process {
                Process::Client(_) => {
                    *ops.entry(ev.op.f().to_string()).or_default().entry(ev.kind.as_str().to_string()).or_default() +=
                        1;
                }
                Process::Nemesis if ev.kind == crate::history::EventType::Invoke => {
                    *nemesis.entry(ev.op.f().to_string()).or_default() += 1;
                }
                Process::Nemesis => {}
            }
        }
        let mut anomalies: BTreeMap<AnomalyKind, AnomalyGroup> = BTreeMap::new();
        for a in found {
            let g = anomalies.entry(a.kind).or_default();
            g.count += 1;
            if g.examples.len() < max_examples {
                g.examples.push(a);
            }
        }
        let unknown = linearizability.iter().any(|v| matches!(v.status, LinStatus::Unknown { .. }));
        let verdict = if !anomalies.is_empty() {
            Verdict::Invalid
        } else if unknown {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        Report { verdict, events: events.len(), ops, nemesis, final_reads, linearizability, liveness, anomalies }
    }

    /// How many anomalies of `kind` were found.
    pub fn count(&self, kind: AnomalyKind) -> usize {
        self.anomalies.get(&kind).map_or(0, |g| g.count)
    }

    /// Total anomalies of all kinds.
    pub fn anomaly_count(&self) -> usize {
        self.anomalies.values().map(|g| g.count).sum()
    }
}
