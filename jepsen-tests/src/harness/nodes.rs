//! The `whereabouts-node` processes of a run: `testkit`'s launcher
//! ([`testkit::node_processes::NodeProcesses`]) with the run's flags, every node in its own
//! namespace of the lab ([`super::lab::placement`]). Dropping the launcher kills every process
//! it started.

use std::path::PathBuf;

use testkit::node_processes::NodeProcesses;

use super::lab::placement;

/// How every node is started.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The `whereabouts-node` binary.
    pub bin: PathBuf,
    /// Where data directories and logs go (`results/<run>/nodes`).
    pub dir: PathBuf,
    /// `--snapshot-threshold` (low, so lagging nodes catch up by snapshot).
    pub snapshot_threshold: u64,
    /// `--heartbeat-ms`.
    pub heartbeat_ms: u64,
    /// `--election-timeout-ms`.
    pub election_timeout_ms: u64,
    /// `--request-timeout-ms`.
    pub request_timeout_ms: u64,
}

/// The launcher of a run's nodes (none started yet); `founders` are the ids of
/// `--initial-cluster`.
pub fn launcher(config: NodeConfig, founders: &[u64]) -> anyhow::Result<NodeProcesses> {
    let places = founders.iter().map(|id| (*id, placement(*id))).collect();
    let c = &config;
    let args = [
        "--insecure".to_string(),
        "--snapshot-threshold".into(),
        c.snapshot_threshold.to_string(),
        "--heartbeat-ms".into(),
        c.heartbeat_ms.to_string(),
        "--election-timeout-ms".into(),
        c.election_timeout_ms.to_string(),
        "--request-timeout-ms".into(),
        c.request_timeout_ms.to_string(),
    ];
    Ok(NodeProcesses::new(&c.bin, &c.dir, places)?.with_args(args))
}
