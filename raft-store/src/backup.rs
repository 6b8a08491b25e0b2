//! Backups (`whereabouts-ctl snapshot save` / `restore`): the IPAM state of a cluster as one file,
//! and the offline restore that turns such a file into the data directory of a node of a new
//! cluster — like etcdctl's snapshot save/restore.
//!
//! File layout: one line of JSON ([`BackupHeader`]: format, version, where it came from, a CRC-32
//! of the data), a newline, then the encoded state ([`ipam::snapshot`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::{BasicNode, CommittedLeaderId, LogId, Membership, StoredMembership};
use serde::{Deserialize, Serialize};

use super::{OpenError, SnapshotFile};
use crate::types::{typ, NodeId};
use ipam::snapshot;

/// The `format` field of every backup.
pub const BACKUP_FORMAT: &str = "whereabouts-rs-backup";
/// The version this build writes and reads.
pub const BACKUP_VERSION: u32 = 1;
/// Longest header line accepted.
const MAX_HEADER: usize = 64 << 10;

/// What a backup says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// Always [`BACKUP_FORMAT`].
    pub format: String,
    /// Always [`BACKUP_VERSION`] for files this build writes.
    pub version: u32,
    /// Cluster the state was taken from.
    pub cluster: String,
    /// Log index of the state.
    pub applied_index: u64,
    /// Term of that log entry.
    pub applied_term: u64,
    /// Wall clock of the save, ms since the Unix epoch.
    pub taken_at_ms: u64,
    /// Allocations in the state.
    pub allocations: u64,
    /// Length of the data after the header.
    pub data_len: u64,
    /// CRC-32 (IEEE) of the data.
    pub crc32: u32,
}

/// Why a backup cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Not a backup of this format, or a version this build cannot read.
    #[error("not a whereabouts-rs backup (or an unsupported version): {0}")]
    Format(String),
    /// Truncated or altered.
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    /// The target directory cannot be used.
    #[error("cannot restore into {path}: {reason}")]
    Target {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// Opening or writing the new store failed.
    #[error(transparent)]
    Store(#[from] OpenError),
    /// Writing a file failed.
    #[error("cannot write the restored data: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds a backup file from an encoded state.
pub fn encode_backup(mut header: BackupHeader, data: &[u8]) -> Vec<u8> {
    header.format = BACKUP_FORMAT.into();
    header.version = BACKUP_VERSION;
    header.data_len = data.len() as u64;
    header.crc32 = crc32fast::hash(data);
    let mut out = serde_json::to_vec(&header).expect("a header always encodes");
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// Splits and checks a backup file: format, version, length, CRC, and that the state decodes.
pub fn decode_backup(bytes: &[u8]) -> Result<(BackupHeader, &[u8]), BackupError> {
    let newline = bytes
        .iter()
        .take(MAX_HEADER)
        .position(|b| *b == b'\n')
        .ok_or_else(|| BackupError::Format("no header line".into()))?;
    let header: BackupHeader =
        serde_json::from_slice(&bytes[..newline]).map_err(|e| BackupError::Format(format!("header: {e}")))?;
    if header.format != BACKUP_FORMAT || header.version != BACKUP_VERSION {
        return Err(BackupError::Format(format!("{} version {}", header.format, header.version)));
    }
    let data = &bytes[newline + 1..];
    if data.len() as u64 != header.data_len {
        return Err(BackupError::Damaged(format!("{} bytes of data, the header says {}", data.len(), header.data_len)));
    }
    if crc32fast::hash(data) != header.crc32 {
        return Err(BackupError::Damaged("CRC-32 mismatch".into()));
    }
    let state = snapshot::decode(data).map_err(|e| match e {
        // Intact (the CRC matched) but written by a newer release.
        snapshot::SnapshotError::Version(_) => {
            BackupError::Format(format!("{e}; restore it with the release that saved it, or a newer one"))
        }
        other => BackupError::Damaged(other.to_string()),
    })?;
    if state.allocation_count() as u64 != header.allocations {
        return Err(BackupError::Damaged(format!(
            "{} allocations, the header says {}",
            state.allocation_count(),
            header.allocations
        )));
    }
    Ok((header, data))
}

/// What [`restore`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// Allocations restored.
    pub allocations: u64,
    /// Log index the new cluster starts after.
    pub index: u64,
}

/// Creates the data directory of node `node_id` of a new cluster `cluster` with voters `members`,
/// holding the state of `backup`. Run it for every member with the same file and members, then
/// start the nodes (they find their membership in the snapshot and elect a leader; nothing is
/// bootstrapped).
pub fn restore(
    backup: &[u8],
    dir: &Path,
    cluster: &str,
    node_id: NodeId,
    members: &BTreeMap<NodeId, String>,
) -> Result<Restored, BackupError> {
    let (header, data) = decode_backup(backup)?;
    let target = |reason: &str| BackupError::Target { path: dir.display().to_string(), reason: reason.into() };
    if !members.contains_key(&node_id) {
        return Err(target(&format!(
            "node {node_id} is not one of the members {:?}",
            members.keys().collect::<Vec<_>>()
        )));
    }
    if dir.exists() && dir.read_dir()?.next().is_some() {
        return Err(target("the directory is not empty (restore only creates new data directories)"));
    }
    let log = super::open(dir, cluster, node_id)?.log;
    // The new cluster's history starts after the backup's index, in a term before any election.
    let log_id: typ::LogId =
        LogId::new(CommittedLeaderId::new(0, node_id_of_restore(members)), header.applied_index.max(1));
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let nodes: BTreeMap<NodeId, BasicNode> = members.iter().map(|(id, a)| (*id, BasicNode::new(a.clone()))).collect();
    let membership = Membership::new(vec![voters], nodes);
    let meta = typ::SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
        snapshot_id: format!("restored-{}-{}", header.cluster, header.applied_index),
    };
    SnapshotFile::new(&dir.join("snapshots"))?.write(&meta, data)?;
    log.mark_restored(log_id).map_err(|e| BackupError::Io(std::io::Error::other(e.to_string())))?;
    Ok(Restored { allocations: header.allocations, index: log_id.index })
}

/// The node named in restored log ids: the lowest member (the same on every node of the restore).
fn node_id_of_restore(members: &BTreeMap<NodeId, String>) -> NodeId {
    members.keys().next().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BackupHeader {
        BackupHeader {
            format: String::new(),
            version: 0,
            cluster: "c".into(),
            applied_index: 1,
            applied_term: 1,
            taken_at_ms: 0,
            allocations: 0,
            data_len: 0,
            crc32: 0,
        }
    }

    #[test]
    fn a_backup_of_a_newer_snapshot_format_is_refused_as_newer_not_damaged() {
        let mut data = snapshot::encode(&ipam::State::default());
        assert!(decode_backup(&encode_backup(header(), &data)).is_ok());
        data[0] = 9;
        let err = decode_backup(&encode_backup(header(), &data)).unwrap_err();
        assert!(matches!(err, BackupError::Format(_)), "{err}");
        assert!(err.to_string().contains("version 9") && err.to_string().contains("release that saved it"), "{err}");
    }
}
