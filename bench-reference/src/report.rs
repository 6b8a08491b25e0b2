//! The report of `etcd-scheme-bench`: loadgen's shared schema ([`loadgen::Report`]) with the ways
//! the reference schemes fail on etcd and one extra field, `scheme`. The `system` tells the schemes
//! apart for `bench-report`: [`SYSTEM`] for whereabouts' whole-pool scheme (as before the second
//! scheme existed), [`SYSTEM_KEY_PER_ADDRESS`] for one key per address.

use loadgen::{Extras, FailureKind};
use serde::Serialize;

/// The `system` of the reports of whereabouts' whole-pool scheme.
pub const SYSTEM: &str = "etcd-whereabouts-scheme";
/// The `system` of the reports of the key-per-address scheme.
pub const SYSTEM_KEY_PER_ADDRESS: &str = "etcd-key-per-address";

/// The report of one run.
pub type Report = loadgen::Report<Failure, SchemeExtras>;

/// Why an operation failed (the keys of `error_kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The pool had no free address.
    Exhausted,
    /// 100 attempts all lost the race (whereabouts gives up then too); key-per-address: 100 claims
    /// all found their key taken.
    RetriesExhausted,
    /// gRPC errors, undecodable pool objects, or (key-per-address) a release whose key was not the
    /// owner's.
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

/// The field this benchmark adds: which scheme ran. Both schemes write with compare-and-swap
/// txns, so conflicts are reported.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SchemeExtras {
    /// `whole-pool` or `key-per-address` (the `--scheme` given).
    pub scheme: &'static str,
}

impl Extras for SchemeExtras {
    fn setup_note(&self) -> String {
        format!(", scheme {}", self.scheme)
    }

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
    fn the_scheme_is_named_and_conflicts_are_reported() {
        let x = SchemeExtras { scheme: "key-per-address" };
        assert_eq!(serde_json::to_string(&x).unwrap(), r#"{"scheme":"key-per-address"}"#);
        assert!(x.has_conflicts());
        assert_eq!(x.prefill_note(), "");
        assert_eq!(x.setup_note(), ", scheme key-per-address");
    }
}
