//! Raft over gRPC: [`client`] is openraft's network (how this node reaches its peers), [`server`]
//! answers the peers' RPCs.

pub mod client;
pub mod server;

/// Largest Raft message (entries, snapshot chunks) sent or accepted between nodes.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 64 << 20;

/// gRPC metadata key carrying the sender's cluster name on every Raft message.
pub const CLUSTER_KEY: &str = "x-whereabouts-cluster";
