//! Raft over gRPC: [`client`] is openraft's network (how this node reaches its peers), with one
//! replication [`lane`] per peer; [`server`] answers the peers' RPCs; [`admin`] makes the one-off
//! calls (`Describe`, `Compact`).

pub mod admin;
pub mod client;
pub mod gate;
pub mod lane;
pub mod server;

/// Largest Raft message (entries, snapshot chunks) sent or accepted between nodes.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 64 << 20;

/// gRPC metadata key carrying the sender's cluster name on every Raft message.
pub const CLUSTER_KEY: &str = "x-whereabouts-cluster";

/// gRPC metadata key carrying the id of the node a Raft message is meant for (refused by any
/// other node: a stale address must not make node B answer for node A).
pub const TARGET_KEY: &str = "x-whereabouts-target";
