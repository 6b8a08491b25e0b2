//! The report of `whereabouts-ctl bench`: loadgen's schema, shared with `etcd-scheme-bench`
//! (`system`, `clients`, `pools`, `ops_ok`, `errors`, `conflicts`, `duration_s`, `throughput`,
//! `latency_ms.{p50,p99,p999,max}`, then extras), with whereabouts-rs' failure kinds and the
//! network, endpoints and prefill time of the run.

use loadgen::{Extras, FailureKind};
use serde::Serialize;

use super::client::Failure;

/// The `system` of this bench's reports.
pub const SYSTEM: &str = "whereabouts-rs";

/// The report of one run.
pub type Report = loadgen::Report<Failure, NodeExtras>;

/// The keys of `error_kinds`.
impl FailureKind for Failure {
    const ALL: &'static [Failure] =
        &[Failure::Exhausted, Failure::Unavailable, Failure::Timeout, Failure::Other, Failure::CutAtHardStop];

    fn key(self) -> &'static str {
        match self {
            // RESOURCE_EXHAUSTED: the pool had no free address.
            Failure::Exhausted => "exhausted",
            // UNAVAILABLE (no leader, forward failed, node down) and not retried or retries spent.
            Failure::Unavailable => "unavailable",
            // Over the per-operation budget (`--op-timeout`), DEADLINE_EXCEEDED or CANCELLED.
            Failure::Timeout => "timeout",
            // Any other status (a bug: the bench only sends valid requests).
            Failure::Other => "other",
            // Still in flight at the hard stop (duration + grace).
            Failure::CutAtHardStop => "cut_at_hard_stop",
        }
    }
}

/// What this bench adds to the shared report (after its fields, in this order).
#[derive(Debug, Clone, Serialize)]
pub struct NodeExtras {
    /// The network name the pools were created under.
    pub network: String,
    /// The endpoints the clients were spread over.
    pub endpoints: Vec<String>,
    /// Seconds the (unmeasured) prefill took.
    pub prefill_s: f64,
}

impl Extras for NodeExtras {
    fn prefill_note(&self) -> String {
        format!(" in {:.1} s", self.prefill_s)
    }

    fn setup_note(&self) -> String {
        format!(", network {:?}", self.network)
    }

    /// No compare-and-swap to lose: `conflicts` is always 0 (kept for the shared schema).
    fn has_conflicts(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `error_kinds` lists the gRPC outcomes in this order, as it always has.
    #[test]
    fn status_keys_are_the_reports() {
        let keys = Failure::ALL.iter().map(|k| k.key()).collect::<Vec<_>>().join(",");
        assert_eq!(keys, "exhausted,unavailable,timeout,other,cut_at_hard_stop");
    }

    #[test]
    fn extras_come_last_and_name_the_network() {
        let x = NodeExtras { network: "bench".into(), endpoints: vec!["127.0.0.1:7000".into()], prefill_s: 0.3 };
        assert_eq!(
            serde_json::to_string(&x).unwrap(),
            r#"{"network":"bench","endpoints":["127.0.0.1:7000"],"prefill_s":0.3}"#
        );
        assert_eq!(x.prefill_note(), " in 0.3 s");
        assert_eq!(x.setup_note(), ", network \"bench\"");
        assert!(!x.has_conflicts(), "the text has a retries line, no conflicts");
    }
}
