//! The Raft type configuration: what a log entry carries (a [`Batch`] of IPAM events) and what
//! applying it returns (one [`Reply`] per event), plus short aliases (`typ`) that keep openraft's
//! generics out of signatures.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use ipam::{Event, Reply};

/// A node's Raft id: its ordinal (the StatefulSet ordinal, `--id`) in the low 32 bits and its
/// incarnation in the high 32 bits. A node whose data directory was lost comes back under the same
/// ordinal with a new incarnation, so that nothing addressed to its old self (which may have voted
/// and acknowledged entries it no longer has) is ever taken by it. Incarnation 0 is the ordinal
/// itself.
pub type NodeId = u64;

/// The ordinal part of `id`.
pub fn ordinal(id: NodeId) -> u64 {
    id & 0xffff_ffff
}

/// The incarnation part of `id`.
pub fn incarnation(id: NodeId) -> u32 {
    (id >> 32) as u32
}

/// The id of incarnation `incarnation` of node `ordinal`.
pub fn node_id(ordinal: u64, incarnation: u32) -> NodeId {
    (u64::from(incarnation) << 32) | (ordinal & 0xffff_ffff)
}

/// `id` for people: `2`, or `2#1` for incarnation 1 of node 2.
pub fn display_id(id: NodeId) -> String {
    match incarnation(id) {
        0 => ordinal(id).to_string(),
        n => format!("{}#{n}", ordinal(id)),
    }
}

/// The payload of one log entry: the events the leader gathered from concurrent clients. One
/// entry, one disk write and one replication round carry many allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The format the entry is written in ([`ipam::format`]; 0 reads as 1). Not part of the
    /// serialized payload: [`crate::entry_codec`] writes it in front of it and sets it when reading.
    #[serde(skip)]
    pub format: u32,
    /// Events in the order they are applied.
    pub events: Vec<Event>,
}

impl Batch {
    /// A batch of `events` in the newest format `cluster_version` allows that carries all of them,
    /// each event fitted to that format ([`ipam::Command::fit_to_format`]).
    pub fn new(events: Vec<Event>, cluster_version: u32) -> Batch {
        let needs = events.iter().map(|e| e.command.min_format()).max().unwrap_or(ipam::FORMAT_MIN);
        let format = cluster_version.max(needs).max(ipam::FORMAT_MIN);
        let events = events.into_iter().map(|e| Event { command: e.command.fit_to_format(format), ..e }).collect();
        Batch { format, events }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_ordinal_and_incarnation() {
        assert_eq!(node_id(2, 0), 2, "incarnation 0 is the ordinal: data directories of 0.1 keep their id");
        let id = node_id(2, 3);
        assert_eq!((ordinal(id), incarnation(id)), (2, 3));
        assert_eq!(display_id(id), "2#3");
        assert_eq!(display_id(7), "7");
    }
}
