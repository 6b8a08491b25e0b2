//! The report of `etcd-scheme-bench`: loadgen's shared schema ([`loadgen::Report`]) with the ways
//! whereabouts' scheme fails on etcd and no extra fields.

use loadgen::{Extras, FailureKind};
use serde::Serialize;

/// The `system` of this benchmark's reports.
pub const SYSTEM: &str = "etcd-whereabouts-scheme";

/// The report of one run.
pub type Report = loadgen::Report<Failure, SchemeExtras>;

/// Why an operation failed (the keys of `error_kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The pool had no free address.
    Exhausted,
    /// 100 attempts all lost the race (whereabouts gives up then too).
    RetriesExhausted,
    /// gRPC errors or undecodable pool objects.
    Etcd,
    /// Over the per-operation budget (`--op-timeout`).
    Timeout,
    /// Still in flight at the hard stop (duration + grace).
    CutAtHardStop,
}

impl FailureKind for Failure {
    const ALL: &'static [Failure] =
        &[Failure::Exhausted, Failure::RetriesExhausted, Failure::Etcd, Failure::Timeout, Failure::CutAtHardStop];

    fn key(self) -> &'static str {
        match self {
            Failure::Exhausted => "exhausted",
            Failure::RetriesExhausted => "retries_exhausted",
            Failure::Etcd => "etcd",
            Failure::Timeout => "timeout",
            Failure::CutAtHardStop => "cut_at_hard_stop",
        }
    }
}

/// This benchmark adds no fields; its writes are compare-and-swaps, so conflicts are reported.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SchemeExtras {}

impl Extras for SchemeExtras {
    fn has_conflicts(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of `error_kinds`, in order (loadgen turns them into the JSON object and the text).
    #[test]
    fn failure_keys_are_the_reports() {
        let keys: Vec<&str> = Failure::ALL.iter().map(|k| k.key()).collect();
        assert_eq!(keys, ["exhausted", "retries_exhausted", "etcd", "timeout", "cut_at_hard_stop"]);
    }

    #[test]
    fn no_extra_fields_and_conflicts_are_reported() {
        assert_eq!(serde_json::to_string(&SchemeExtras {}).unwrap(), "{}");
        assert!(SchemeExtras {}.has_conflicts());
        assert_eq!(SchemeExtras {}.prefill_note() + &SchemeExtras {}.setup_note(), "");
    }
}
