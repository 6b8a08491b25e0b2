//! The Raft type configuration: what a log entry carries (a [`Batch`] of IPAM events) and what
//! applying it returns (one [`Reply`] per event), plus short aliases (`typ`) that keep openraft's
//! generics out of signatures.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::domain::{Event, Reply};

/// Node ids are StatefulSet ordinals.
pub type NodeId = u64;

/// The payload of one log entry: the events the leader gathered from concurrent clients. One
/// entry, one disk write and one replication round carry many allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Events in the order they are applied.
    pub events: Vec<Event>,
}

/// The replies to a [`Batch`], in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    /// One reply per event.
    pub replies: Vec<Reply>,
}

openraft::declare_raft_types!(
    /// whereabouts-rs' Raft types.
    pub TypeConfig:
        D = Batch,
        R = BatchReply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Short names for openraft types instantiated with [`TypeConfig`].
pub mod typ {
    use super::{NodeId, TypeConfig};
    use openraft::BasicNode;

    /// A Raft node handle.
    pub type Raft = openraft::Raft<TypeConfig>;
    /// A log entry.
    pub type Entry = openraft::Entry<TypeConfig>;
    /// A log id (term, leader, index).
    pub type LogId = openraft::LogId<NodeId>;
    /// A vote.
    pub type Vote = openraft::Vote<NodeId>;
    /// Storage failure.
    pub type StorageError = openraft::StorageError<NodeId>;
    /// Snapshot metadata.
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BasicNode>;
    /// A snapshot with its data.
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    /// Membership with the log id that set it.
    pub type StoredMembership = openraft::StoredMembership<NodeId, BasicNode>;
    /// Raft metrics.
    pub type RaftMetrics = openraft::RaftMetrics<NodeId, BasicNode>;
}
