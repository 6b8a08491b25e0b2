//! `whereabouts-node` command line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use raft_store::types::NodeId;

use crate::tls::TlsOptions;

/// Whether a fresh node may bootstrap the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterState {
    /// On an empty data directory, ask the other founders first: bootstrap `--initial-cluster`
    /// if none has state (every founder does it, with the same membership), rejoin as a new
    /// incarnation if the cluster exists (this node's state was lost).
    New,
    /// Never bootstrap: this node joins an existing cluster (add it with `whereabouts-ctl add-learner`).
    Existing,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A whereabouts-rs cluster node: Raft-replicated IPAM state served over gRPC.
#[derive(Clone, Debug, Parser)]
#[command(name = "whereabouts-node", version, about)]
pub struct NodeOptions {
    /// Node id (the StatefulSet ordinal), or `auto` to take the number after the last `-` of the
    /// host name (`whereabouts-node-2` → 2).
    #[arg(long, env = "WHEREABOUTS_NODE_ID", value_parser = parse_id)]
    pub id: NodeId,

    /// Address to serve gRPC on (Raft between nodes and the IPAM API).
    #[arg(long, env = "WHEREABOUTS_LISTEN", default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,

    /// Address other nodes and clients use to reach this node (default: this node's entry in
    /// `--initial-cluster`, else `--listen`).
    #[arg(long, env = "WHEREABOUTS_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,

    /// The founding members, `ID=HOST:PORT,...` (e.g. `0=n0:7000,1=n1:7000,2=n2:7000`).
    #[arg(long, env = "WHEREABOUTS_INITIAL_CLUSTER", value_parser = parse_initial_cluster, default_value = "")]
    pub initial_cluster: InitialCluster,

    /// `new`: bootstrap `--initial-cluster` on first start; `existing`: join an existing cluster.
    #[arg(long, env = "WHEREABOUTS_INITIAL_CLUSTER_STATE", value_enum, default_value = "new")]
    pub initial_cluster_state: ClusterState,

    /// Name of the cluster. Recorded in the data directory (a node refuses another cluster's data)
    /// and checked on every Raft message (a node never talks Raft with another cluster's nodes).
    /// 1-63 characters of letters, digits, `.`, `_` and `-` (it travels as a gRPC header).
    #[arg(long, env = "WHEREABOUTS_CLUSTER_NAME", default_value = "whereabouts", value_parser = parse_cluster_name)]
    pub cluster_name: String,

    /// Directory for the Raft log, vote and snapshots (created if missing; one per node).
    #[arg(long, env = "WHEREABOUTS_DATA_DIR")]
    pub data_dir: PathBuf,

    /// TLS: CA, certificate and key (or --insecure for plain TCP).
    #[command(flatten)]
    pub tls: TlsOptions,

    /// How often to check the TLS files for changes (seconds); changed certificates are used for
    /// new connections without a restart.
    #[arg(long, default_value_t = 10)]
    pub tls_reload_seconds: u64,

    /// Serve Prometheus `/metrics`, `/healthz` and `/readyz` on this address.
    #[arg(long, env = "WHEREABOUTS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Log filter (`info`, `debug`, `whereabouts=debug,openraft=info`, ...); `RUST_LOG` overrides.
    #[arg(long, env = "WHEREABOUTS_LOG_LEVEL", default_value = "info,openraft=warn")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "WHEREABOUTS_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Take a snapshot (and compact the log) after this many log entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_threshold: u64,

    /// Leader heartbeat interval (ms).
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,

    /// Minimum election timeout (ms); the maximum is twice that. A follower that stops hearing
    /// from the leader campaigns after the leader lease (the maximum) plus a random election
    /// timeout: 0.75–1 s with the default, so a killed leader is replaced within 2 s even when
    /// the first candidate's log is too short and a second round is needed (docs/benchmarks.md).
    #[arg(long, default_value_t = 250)]
    pub election_timeout_ms: u64,

    /// With an empty data directory and `--initial-cluster-state new`: once a majority of the
    /// founders answered that they are empty too, how long (ms) to wait for the others before
    /// bootstrapping without them.
    #[arg(long, env = "WHEREABOUTS_BOOTSTRAP_WAIT_MS", default_value_t = 10_000)]
    pub bootstrap_wait_ms: u64,

    /// Longest time a call may take on this node before it answers UNAVAILABLE (ms).
    #[arg(long, default_value_t = 5_000)]
    pub request_timeout_ms: u64,

    /// Most IPAM events carried by one log entry.
    #[arg(long, default_value_t = 512)]
    pub max_batch: usize,

    /// Most log entries being committed at once by the leader's batcher.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,

    /// Deprecated and ignored (accepted so old manifests keep working): these limits are
    /// replicated state now, set with `whereabouts-ctl settings --request-cache N`.
    #[arg(long, hide = true)]
    pub request_cache: Option<usize>,

    /// Deprecated and ignored: set with `whereabouts-ctl settings --history N`.
    #[arg(long, hide = true)]
    pub history: Option<usize>,

    /// The Kubernetes parts (IPPool exporter, pod reconciler); all off by default.
    #[command(flatten)]
    pub kube: crate::kube::KubeOptions,
}

/// `--initial-cluster`, by node id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialCluster(pub BTreeMap<NodeId, String>);

/// A cluster name: 1-63 characters of `[A-Za-z0-9._-]`. It is sent with every Raft message as
/// the `x-whereabouts-cluster` header, so anything a header cannot carry is refused here rather
/// than dropped on the wire (peers would then refuse every message).
pub fn parse_cluster_name(s: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?}: expected 1-63 characters of letters, digits, '.', '_' and '-'"))
    }
}

fn parse_id(s: &str) -> Result<NodeId, String> {
    if s == "auto" {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .ok_or("--id auto: cannot read the host name")?;
        let host = host.trim();
        let ordinal = host.rsplit('-').next().unwrap_or_default();
        return ordinal.parse().map_err(|_| format!("--id auto: host name {host:?} does not end in -<number>"));
    }
    s.parse().map_err(|_| format!("{s:?} is not a node id (a number, or `auto`)"))
}

/// Parses `ID=HOST:PORT,...`.
pub fn parse_initial_cluster(s: &str) -> Result<InitialCluster, String> {
    let mut members = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, addr) = item.split_once('=').ok_or_else(|| format!("{item:?}: expected ID=HOST:PORT"))?;
        let id: NodeId = id.trim().parse().map_err(|_| format!("{item:?}: {id:?} is not a node id"))?;
        let addr = addr.trim();
        let valid = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return Err(format!("{item:?}: {addr:?} is not HOST:PORT"));
        }
        if members.insert(id, addr.to_string()).is_some() {
            return Err(format!("node id {id} appears twice"));
        }
    }
    Ok(InitialCluster(members))
}

impl NodeOptions {
    /// The address this node tells others to use.
    pub fn advertised(&self) -> String {
        self.advertise_addr
            .clone()
            .or_else(|| self.initial_cluster.0.get(&self.id).cloned())
            .unwrap_or_else(|| self.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_parses_and_rejects_garbage() {
        let c = parse_initial_cluster("0=127.0.0.1:7000, 1=n1:7001,2=[::1]:7002").unwrap();
        assert_eq!(c.0.len(), 3);
        assert_eq!(c.0[&2], "[::1]:7002");
        assert_eq!(parse_initial_cluster("").unwrap().0.len(), 0);
        for bad in ["0", "x=h:1", "0=h", "0=h:0", "0=h:1,0=h:2", "0=:7"] {
            assert!(parse_initial_cluster(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_numbers() {
        assert_eq!(parse_id("2"), Ok(2));
        assert!(parse_id("two").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        NodeOptions::command().debug_assert();
        let o = NodeOptions::try_parse_from(["n", "--id", "1", "--initial-cluster", "0=a:1,1=b:2", "--data-dir", "/d"])
            .unwrap();
        assert_eq!(o.advertised(), "b:2");
        assert!(NodeOptions::try_parse_from(["n", "--id", "1"]).is_err(), "--data-dir is required");
        for bad in ["", "tenant a", "caf\u{e9}", "a\nb", &"x".repeat(64)] {
            let r = NodeOptions::try_parse_from(["n", "--id", "1", "--data-dir", "/d", "--cluster-name", bad]);
            assert!(r.is_err(), "--cluster-name {bad:?} must be refused");
        }
        let o = NodeOptions::try_parse_from(["n", "--id", "1", "--data-dir", "/d", "--cluster-name", "prod-eu.1_a"])
            .expect("a valid name");
        assert_eq!(o.cluster_name, "prod-eu.1_a");
    }
}
