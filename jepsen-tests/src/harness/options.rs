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
    /// membership, flush-crash, wipe, power-loss, clock, slow-disk, and roll (not in `all`: it
    /// needs `--old-node-bin`).
    #[arg(long, default_value = "all", value_parser = parse_fault_list)]
    pub nemesis: FaultList,
    /// Stop after this many fault episodes (then the final heal and the tail, as after `--time`).
    #[arg(long)]
    pub episodes: Option<u64>,
    /// Put the nodes' data directories on lazyfs mounts even when no selected nemesis needs them
    /// (power-loss and slow-disk do).
    #[arg(long)]
    pub lazyfs: bool,
    /// The `lazyfs` binary (default: `lazyfs` next to this binary).
    #[arg(long)]
    pub lazyfs_bin: Option<PathBuf>,
    /// The libfaketime library the `clock` nemesis preloads into every node.
    #[arg(long, default_value = super::clocks::DEFAULT_LIB)]
    pub faketime_lib: PathBuf,
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
    /// The previous release's node binary, for the `roll` nemesis (required with it): every node
    /// starts on it, and members are rolled to `--node-bin` and back.
    #[arg(long)]
    pub old_node_bin: Option<PathBuf>,
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

impl RunArgs {
    /// Checks the options that depend on each other: `--old-node-bin` goes with the `roll`
    /// nemesis, both ways.
    pub fn validate(&self) -> Result<(), String> {
        let roll = self.nemesis.0.iter().any(|f| f.needs_old_build());
        match (roll, &self.old_node_bin) {
            (true, None) => {
                Err("the roll nemesis needs --old-node-bin PATH: the previous release's whereabouts-node, \
                                 which every node starts on (scripts/upgrade-test.sh builds it)"
                    .into())
            }
            (false, Some(_)) => Err("--old-node-bin is only used by the roll nemesis (add roll to --nemesis)".into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied())).expect("parses").run
    }

    #[test]
    fn roll_needs_an_old_binary_and_an_old_binary_needs_roll() {
        let err = parse(&["--nemesis", "roll"]).validate().unwrap_err();
        assert!(err.contains("--old-node-bin"), "{err}");
        let err = parse(&["--nemesis", "kill,roll"]).validate().unwrap_err();
        assert!(err.contains("--old-node-bin"), "{err}");
        assert!(parse(&["--nemesis", "roll", "--old-node-bin", "/tmp/old"]).validate().is_ok());
        let err = parse(&["--old-node-bin", "/tmp/old"]).validate().unwrap_err();
        assert!(err.contains("roll"), "{err}");
        assert!(parse(&["--nemesis", "all,roll", "--old-node-bin", "/tmp/old"]).validate().is_ok());
        assert!(parse(&[]).validate().is_ok(), "all without roll needs no old binary");
    }
}
