//! `jepsen-tests run` command line.

use std::path::PathBuf;

use super::nemesis::{parse_fault_list, FaultList};

/// Runs real `whereabouts-node` processes in network namespaces under faults, records the
/// history and checks it. Needs root (namespaces, nftables).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Founding nodes (3 or 5).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub clients: u64,
    /// Stop after this many operations were invoked.
    #[arg(long, default_value_t = 10_000)]
    pub ops: u64,
    /// Stop injecting faults and invoking operations after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub time: u64,
    /// After the final heal, clients keep running this long (seconds) so that recovery is measured.
    #[arg(long, default_value_t = 10)]
    pub tail_secs: u64,
    /// Pause of each client between two operations (ms): bounds the request rate of long runs.
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
    /// Fault families: `all`, `none`, or a list of kill, pause, partition, drop, snapshot,
    /// membership, flush-crash.
    #[arg(long, default_value = "all", value_parser = parse_fault_list)]
    pub nemesis: FaultList,
    /// Mean quiet time between fault episodes (ms).
    #[arg(long, default_value_t = 3_000)]
    pub interval_ms: u64,
    /// Mean time a fault is held (ms).
    #[arg(long, default_value_t = 5_000)]
    pub hold_ms: u64,
    /// Networks in the workload (shapes rotate: overlapping pools, dual-stack, excludes).
    #[arg(long, default_value_t = 3)]
    pub networks: usize,
    /// Seed of the workload and the fault schedule (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The node binary (default: `whereabouts-node` next to this binary).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Where `<run>/history.jsonl`, the report and the node logs go.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// `--snapshot-threshold` of the nodes (low, so a lagging node needs a snapshot).
    #[arg(long, default_value_t = 100)]
    pub snapshot_threshold: u64,
    /// `--heartbeat-ms` of the nodes.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// `--election-timeout-ms` of the nodes.
    #[arg(long, default_value_t = 500)]
    pub election_timeout_ms: u64,
    /// `--request-timeout-ms` of the nodes.
    #[arg(long, default_value_t = 2_000)]
    pub request_timeout_ms: u64,
    /// Time budget of one client operation, all retries included (seconds).
    #[arg(long, default_value_t = 30)]
    pub op_budget_secs: u64,
    /// Linearizability search bound per network (memoized states).
    #[arg(long, default_value_t = 2_000_000)]
    pub max_states: usize,
    /// Wall-clock bound of the linearizability search (seconds).
    #[arg(long, default_value_t = 600)]
    pub check_time_limit_secs: u64,
    /// Report slow-recovery when the first ok after the last heal takes longer (seconds).
    #[arg(long)]
    pub max_recovery_secs: Option<f64>,
    /// Planted-bug runs: succeed (exit 0) only if the checker finds an anomaly.
    #[arg(long)]
    pub expect_anomalies: bool,
    /// Keep the nodes' data directories after a valid run (always kept otherwise).
    #[arg(long)]
    pub keep_data: bool,
}
