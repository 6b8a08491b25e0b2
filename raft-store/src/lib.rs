//! whereabouts-rs' Raft storage: openraft's log and state machine on sled. The log (entries,
//! vote, committed, purge point) with group-committed flushes; the state machine that folds
//! committed [`types::Batch`]es into the pure IPAM state of the `ipam` crate, with its snapshot
//! file; backups. [`open`] opens both for a data directory. No network code lives here.

// openraft fixes the error type of every storage method (StorageError, ~224 bytes).
#![allow(clippy::result_large_err)]

mod backup;
pub mod disk;
pub mod entry_codec;
mod flusher;
pub mod formats;
mod keys;
mod log_store;
mod purge_gate;
mod snapshot_file;
mod state_machine;
pub mod types;

use std::path::Path;

pub use backup::{decode_backup, encode_backup, restore, BackupError, BackupHeader, Restored, BACKUP_FORMAT};
pub use log_store::LogStore;
pub use snapshot_file::{SnapshotFile, StoredSnapshot, Written};
pub use state_machine::{Machine, SharedMachine, SnapshotBuilder, StateMachineStore};

/// What to do when a data directory cannot be used.
const RECOVERY_ADVICE: &str = "to recover this node: stop it, move the data directory aside and start it again with \
the same flags: on an empty directory it finds the running cluster and rejoins as a new incarnation (a learner that \
copies the state from the leader, then replaces its old self) — never copy another node's directory; see \
docs/operations.md, 'A node lost its data directory'";

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// sled failed (corrupt store, permissions, disk).
    #[error("cannot open the store at {path}: {source}; if it is corrupt, {RECOVERY_ADVICE}")]
    Sled {
        /// The store path.
        path: String,
        /// The failure.
        source: sled::Error,
    },
    /// The log holds an entry or record that does not decode.
    #[error("the Raft log at {path} is corrupt: {reason}; {RECOVERY_ADVICE}")]
    CorruptLog {
        /// The store path.
        path: String,
        /// What failed to decode.
        reason: String,
    },
    /// The log was purged past what the snapshot holds: the entries between are gone from this
    /// node (a crash between a purge and the snapshot install it was for, before the log waited
    /// for the snapshot), and openraft can neither re-apply nor skip them.
    #[error(
        "the Raft log at {path} was purged up to index {purged} but the stored snapshot only covers the log up to \
         {}: the entries between are lost on this node; {RECOVERY_ADVICE}",
        snapshot.map_or("nothing".to_string(), |i| format!("index {i}"))
    )]
    PurgedPastSnapshot {
        /// The store path.
        path: String,
        /// The last purged index on disk.
        purged: u64,
        /// The last index the snapshot covers (`None`: no snapshot).
        snapshot: Option<u64>,
    },
    /// The snapshot could not be read or decoded.
    #[error("cannot load the state machine snapshot: {0}; if it is corrupt, {RECOVERY_ADVICE}")]
    Snapshot(String),
    /// The log or snapshot was written by a newer release, in a format this build does not read
    /// (a binary rolled back too far, or before the cluster version was lowered).
    #[error(
        "the data directory {path} holds {what}: this binary is older than the data; run the release that wrote it \
         (or a newer one) on this node — to go back to an older release, lower the cluster version first \
         (docs/upgrades.md, 'Downgrade')"
    )]
    NewerFormat {
        /// The directory.
        path: String,
        /// What was found (the unsupported-format message).
        what: String,
    },
    /// The directory belongs to another node or another cluster.
    #[error(
        "data directory {path} belongs to node {} of cluster {recorded_cluster:?}, not node {node} of \
         cluster {cluster:?}: refusing to start (check --id, --cluster-name and --data-dir)",
        types::display_id(*recorded_node)
    )]
    WrongIdentity {
        /// The directory.
        path: String,
        /// Cluster name found in the store.
        recorded_cluster: String,
        /// Node id found in the store.
        recorded_node: u64,
        /// Cluster name asked for.
        cluster: String,
        /// Node id asked for.
        node: u64,
    },
}

/// A data directory opened: its log, its state machine, and the Raft id recorded in it (the
/// ordinal asked for, with the incarnation the directory belongs to).
#[derive(Debug)]
pub struct Opened {
    /// The Raft log.
    pub log: LogStore,
    /// The state machine.
    pub state_machine: StateMachineStore,
    /// This node's Raft id.
    pub id: types::NodeId,
    /// The formats stored in the directory, read on demand.
    pub formats: formats::FormatReport,
}

/// Opens (creating if needed) the log and state machine of node `ordinal` of cluster `cluster`
/// under `dir`, checking that the directory is theirs and that what it holds decodes. A new
/// directory is recorded as incarnation 0 of `ordinal`.
pub fn open(dir: &Path, cluster: &str, ordinal: u64) -> Result<Opened, OpenError> {
    let sled_path = dir.join("sled");
    let path = sled_path.display().to_string();
    let sled_err = |source| OpenError::Sled { path: path.clone(), source };
    let disk = disk::Disk::open(&sled_path).map_err(sled_err)?;
    let log = LogStore::open(&disk).map_err(sled_err)?;
    let id = match log.recorded_identity().map_err(sled_err)? {
        Some((recorded_cluster, recorded_node))
            if recorded_cluster != cluster || types::ordinal(recorded_node) != ordinal =>
        {
            return Err(OpenError::WrongIdentity {
                path: dir.display().to_string(),
                recorded_cluster,
                recorded_node,
                cluster: cluster.to_string(),
                node: ordinal,
            });
        }
        Some((_, recorded_node)) => recorded_node,
        None => {
            log.record_identity(cluster, ordinal).map_err(sled_err)?;
            ordinal
        }
    };
    let newer = |what: String| OpenError::NewerFormat { path: dir.display().to_string(), what };
    if let Err(e) = log.newest_entry_format() {
        if let Some(entry_codec::CodecError::Unsupported(u)) = e.get_ref().and_then(|e| e.downcast_ref()) {
            return Err(newer(u.to_string()));
        }
    }
    log.verify().map_err(|e| OpenError::CorruptLog { path: path.clone(), reason: e.to_string() })?;
    let file = SnapshotFile::new(&dir.join("snapshots")).map_err(|e| OpenError::Snapshot(e.to_string()))?;
    if let Ok(Some(version)) = file.stored_state_version() {
        if formats::format_of_snapshot_version(version) > ipam::FORMAT_MAX {
            return Err(newer(ipam::snapshot::SnapshotError::Version(version).to_string()));
        }
    }
    let log = purges_gated(log, &file, &path)?;
    let state_machine = StateMachineStore::open(file.clone()).map_err(|e| OpenError::Snapshot(e.to_string()))?;
    let formats = formats::FormatReport::new(log.clone(), file);
    Ok(Opened { log, state_machine, id, formats })
}

/// `log`, writing purges only once `file`'s snapshot covers them ([`purge_gate`]); refused if it
/// is already purged past that snapshot.
fn purges_gated(log: LogStore, file: &SnapshotFile, path: &str) -> Result<LogStore, OpenError> {
    let log = log.with_purges_gated_by(file.coverage());
    let corrupt = |e: types::typ::StorageError| OpenError::CorruptLog { path: path.to_string(), reason: e.to_string() };
    match log.purged_past_snapshot().map_err(corrupt)? {
        Some(purged) => Err(OpenError::PurgedPastSnapshot {
            path: path.to_string(),
            purged: purged.index,
            snapshot: log.snapshot_covers(),
        }),
        None => Ok(log),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_log_entry_is_found_at_start_up_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), "c", 0).unwrap());
        {
            let db = sled::open(dir.path().join("sled")).unwrap();
            db.open_tree("raft").unwrap().insert(keys::log_key(5), &b"\xff\xff garbage"[..]).unwrap();
            db.flush().unwrap();
        }
        let err = open(dir.path(), "c", 0).unwrap_err();
        assert!(matches!(err, OpenError::CorruptLog { .. }), "{err}");
        assert!(err.to_string().contains("rejoins as a new incarnation"), "says what to do: {err}");
    }

    /// Regression (chaos suite): what node 1's directory held after a kill between openraft's purge
    /// for a snapshot from the leader and the install — snapshot at 20, committed hint 25, purged
    /// up to 40, no entry — opened, and openraft then failed at every start ("Failed to get log
    /// entries, expected index: [21, 26)"). The entries 21..=40 are gone: it is refused at open,
    /// saying how to recover.
    #[tokio::test]
    async fn a_log_purged_past_its_snapshot_is_refused_with_advice() {
        use openraft::storage::{RaftLogStorage, RaftStateMachine};
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
        let id = |index| -> types::typ::LogId { LogId::new(CommittedLeaderId::new(26, 0), index) };
        let dir = tempfile::tempdir().unwrap();
        {
            let Opened { mut log, state_machine: mut sm, .. } = open(dir.path(), "c", 1).unwrap();
            let entries = (1..=20).map(|i| Entry { log_id: id(i), payload: EntryPayload::Blank });
            sm.apply(entries).await.unwrap();
            sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
            log.save_committed(Some(id(25))).await.unwrap();
        }
        {
            // What the purge for the leader's snapshot at 40 wrote, before the install.
            let db = sled::open(dir.path().join("sled")).unwrap();
            db.open_tree("raft").unwrap().insert(keys::PURGED, postcard::to_stdvec(&id(40)).unwrap()).unwrap();
            db.flush().unwrap();
        }
        let err = open(dir.path(), "c", 1).unwrap_err();
        assert!(matches!(err, OpenError::PurgedPastSnapshot { purged: 40, snapshot: Some(20), .. }), "{err}");
        assert!(err.to_string().contains("rejoins as a new incarnation"), "says what to do: {err}");
    }

    #[test]
    fn a_log_entry_of_a_newer_format_is_refused_as_newer_not_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), "c", 0).unwrap());
        {
            let db = sled::open(dir.path().join("sled")).unwrap();
            let log_id: types::typ::LogId = openraft::LogId::new(openraft::CommittedLeaderId::new(1, 0), 5);
            let mut bytes = postcard::to_stdvec(&log_id).unwrap();
            bytes.extend([ipam::format::ENTRY_MARKER, 9, 0]);
            db.open_tree("raft").unwrap().insert(keys::log_key(5), bytes).unwrap();
            db.flush().unwrap();
        }
        let err = open(dir.path(), "c", 0).unwrap_err();
        assert!(matches!(err, OpenError::NewerFormat { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("log entry 5 is in format version 9") && msg.contains("reads versions 1 to 2"), "{msg}");
        assert!(msg.contains("lower the cluster version first"), "{msg}");
    }

    #[test]
    fn a_snapshot_of_a_newer_format_is_refused_as_newer() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), "c", 0).unwrap());
        let meta = types::typ::SnapshotMeta::default();
        SnapshotFile::new(&dir.path().join("snapshots")).unwrap().write(&meta, b"\x07rest").unwrap();
        let err = open(dir.path(), "c", 0).unwrap_err();
        assert!(matches!(err, OpenError::NewerFormat { .. }), "{err}");
        assert!(err.to_string().contains("snapshot format version 7"), "{err}");
    }

    #[test]
    fn a_corrupt_snapshot_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), "c", 0).unwrap());
        std::fs::write(dir.path().join("snapshots/snapshot.bin"), b"\x00\x00\x00\x00\x00\x00\x00\x02{}garbage")
            .unwrap();
        let err = open(dir.path(), "c", 0).unwrap_err();
        assert!(matches!(err, OpenError::Snapshot(_)), "{err}");
    }
}
