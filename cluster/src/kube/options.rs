//! Command-line flags of the Kubernetes parts of `whereabouts-node` (flattened into
//! [`NodeOptions`](crate::node::NodeOptions)). Everything is off by default: a node needs no
//! kube-apiserver unless `--export-ippools` or `--reconcile-pods` is given.

use std::time::Duration;

use clap::{Args, Parser};

/// Flags of the IPPool exporter and the pod reconciler. Both run on the Raft leader only.
#[derive(Clone, Debug, Args)]
pub struct KubeOptions {
    /// Mirror the IPAM state into whereabouts' `IPPool` objects (leader only, read-only mirror).
    #[arg(long, env = "WHEREABOUTS_EXPORT_IPPOOLS")]
    pub export_ippools: bool,

    /// With `--export-ippools`: also mirror one `OverlappingRangeIPReservation` per held address
    /// (one API object per address: only for tools that read them).
    #[arg(long, env = "WHEREABOUTS_EXPORT_RESERVATIONS")]
    pub export_reservations: bool,

    /// Namespace of the exported `IPPool` and `OverlappingRangeIPReservation` objects.
    #[arg(long, env = "WHEREABOUTS_KUBE_NAMESPACE", default_value = "kube-system")]
    pub kube_namespace: String,

    /// Time between two export rounds (ms). A pool is written at most once per round.
    #[arg(long, default_value_t = 2_000)]
    pub export_interval_ms: u64,

    /// Most API writes of one export round (the rest waits for the next round).
    #[arg(long, default_value_t = 50)]
    pub export_max_writes: usize,

    /// Re-apply every pool this often (s), repairing objects edited or deleted by hand.
    #[arg(long, default_value_t = 600)]
    pub export_resync_secs: u64,

    /// Release addresses whose pod is gone (or was re-created with another UID), after a grace
    /// period and a fresh check against the API (leader only).
    #[arg(long, env = "WHEREABOUTS_RECONCILE_PODS")]
    pub reconcile_pods: bool,

    /// How long an allocation must look orphaned before it is released (s).
    #[arg(long, default_value_t = 300)]
    pub reconcile_grace_secs: u64,

    /// Time between two reconciler passes over the allocations (s).
    #[arg(long, default_value_t = 30)]
    pub reconcile_interval_secs: u64,

    /// Re-list every pod and node this often (s), besides watching them.
    #[arg(long, default_value_t = 600)]
    pub reconcile_resync_secs: u64,

    /// Most releases per minute (a token bucket; the rest waits).
    #[arg(long, default_value_t = 60)]
    pub reconcile_max_releases_per_minute: u32,

    /// Log (and count) what the reconciler would release, release nothing.
    #[arg(long, env = "WHEREABOUTS_RECONCILE_DRY_RUN")]
    pub reconcile_dry_run: bool,
}

#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    kube: KubeOptions,
}

impl Default for KubeOptions {
    /// The command-line defaults: everything off.
    fn default() -> KubeOptions {
        Defaults::parse_from(["whereabouts-node"]).kube
    }
}

impl KubeOptions {
    /// Whether any Kubernetes part is enabled.
    pub fn enabled(&self) -> bool {
        self.export_ippools || self.reconcile_pods
    }

    /// `--export-interval-ms` as a duration (at least 10 ms).
    pub fn export_interval(&self) -> Duration {
        Duration::from_millis(self.export_interval_ms.max(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_match_the_command_line() {
        let o = KubeOptions::default();
        assert!(!o.enabled());
        assert_eq!(o.kube_namespace, "kube-system");
        assert_eq!(o.reconcile_grace_secs, 300);
        let o = Defaults::parse_from(["n", "--export-ippools", "--reconcile-dry-run", "--kube-namespace", "net"]).kube;
        assert!(o.export_ippools && o.reconcile_dry_run && o.enabled());
        assert_eq!(o.kube_namespace, "net");
    }
}
