//! Counters of the exporter and the reconciler, added to the node's registry as a
//! [`Collector`] (so they are served on `/metrics` with the `whereabouts_` prefix).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::Collector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseLabels {
    result: String,
    reason: String,
}

/// Exporter and reconciler metrics.
#[derive(Default)]
pub struct KubeMetrics {
    export_writes: Family<ResultLabel, Counter>,
    export_pending: Gauge,
    export_last_success: Gauge,
    releases: Family<ReleaseLabels, Counter>,
    suspects: Gauge,
    passes: Family<ResultLabel, Counter>,
}

impl Collector for KubeMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "exporter_writes",
            "IPPool API writes by the exporter, by result",
            self.export_writes.clone(),
        );
        registry.register(
            "exporter_pending_objects",
            "Objects the exporter still has to write or delete",
            self.export_pending.clone(),
        );
        registry.register(
            "exporter_last_success_timestamp_seconds",
            "Unix time of the exporter's last complete round",
            self.export_last_success.clone(),
        );
        registry.register(
            "reconciler_releases",
            "Addresses released (or, in dry-run, that would be) by the reconciler, by result and reason",
            self.releases.clone(),
        );
        registry.register(
            "reconciler_suspects",
            "Allocations that look orphaned and wait for their grace period",
            self.suspects.clone(),
        );
        registry.register("reconciler_passes", "Reconciler passes, by result", self.passes.clone());
    }
}

impl KubeMetrics {
    /// Counts one exporter write (`ok` or `error`).
    pub fn export_write(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.export_writes.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    /// Sets the number of objects still to write, and the time of success when it is zero.
    pub fn export_round(&self, pending: usize, now_unix_s: i64) {
        self.export_pending.set(pending as i64);
        if pending == 0 {
            self.export_last_success.set(now_unix_s);
        }
    }

    /// Counts one release decision (`released`, `dry_run`, `failed`) with its reason.
    pub fn release(&self, result: &str, reason: &str) {
        self.releases.get_or_create(&ReleaseLabels { result: result.into(), reason: reason.into() }).inc();
    }

    /// The number of releases with `result` and any reason (for tests and logs).
    pub fn releases(&self, result: &str) -> u64 {
        ["pod_gone", "uid_changed", "node_gone", "pod_finished"]
            .iter()
            .map(|r| self.releases.get_or_create(&ReleaseLabels { result: result.into(), reason: (*r).into() }).get())
            .sum()
    }

    /// Sets the number of suspects.
    pub fn set_suspects(&self, n: usize) {
        self.suspects.set(n as i64);
    }

    /// Counts one reconciler pass (`ok`, or `no_data` when the API could not be read).
    pub fn pass(&self, result: &str) {
        self.passes.get_or_create(&ResultLabel { result: result.into() }).inc();
    }
}
