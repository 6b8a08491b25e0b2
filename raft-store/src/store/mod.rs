//! openraft storage on sled: the log (entries, vote, committed, purge point), group-committed
//! flushes, and the state machine with its snapshot file. [`open`] opens both for a data directory.

// openraft fixes the error type of every storage method (StorageError, ~224 bytes).
#![allow(clippy::result_large_err)]

mod backup;
mod flusher;
mod keys;
mod log_store;
mod snapshot_file;
mod state_machine;

use std::path::Path;

pub use backup::{decode_backup, encode_backup, restore, BackupError, BackupHeader, Restored, BACKUP_FORMAT};
pub use log_store::LogStore;
pub use snapshot_file::{SnapshotFile, StoredSnapshot};
pub use state_machine::{Machine, SharedMachine, SnapshotBuilder, StateMachineStore};

use crate::domain::Limits;

/// What to do when a data directory cannot be used.
const RECOVERY_ADVICE: &str = "to recover this node: stop it, move the data directory aside, start it on an empty \
directory with --initial-cluster-state existing, then `whereabouts-ctl remove --id N` and `add-learner`/`promote` it \
again (it copies the state from the leader); see docs/operations.md";

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
    /// The snapshot could not be read or decoded.
    #[error("cannot load the state machine snapshot: {0}; if it is corrupt, {RECOVERY_ADVICE}")]
    Snapshot(String),
    /// The directory belongs to another node or another cluster.
    #[error(
        "data directory {path} belongs to node {recorded_node} of cluster {recorded_cluster:?}, not node {node} of \
         cluster {cluster:?}: refusing to start (check --id, --cluster-name and --data-dir)"
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

/// Opens (creating if needed) the log and state machine of node `node_id` of cluster `cluster`
/// under `dir`, checking that the directory is theirs and that what it holds decodes.
pub fn open(
    dir: &Path,
    cluster: &str,
    node_id: u64,
    limits: Limits,
) -> Result<(LogStore, StateMachineStore), OpenError> {
    let sled_path = dir.join("sled");
    let path = sled_path.display().to_string();
    let sled_err = |source| OpenError::Sled { path: path.clone(), source };
    let db = sled::Config::new().path(&sled_path).mode(sled::Mode::HighThroughput).open().map_err(sled_err)?;
    let log = LogStore::open(&db).map_err(sled_err)?;
    match log.recorded_identity().map_err(sled_err)? {
        Some((recorded_cluster, recorded_node)) if recorded_cluster != cluster || recorded_node != node_id => {
            return Err(OpenError::WrongIdentity {
                path: dir.display().to_string(),
                recorded_cluster,
                recorded_node,
                cluster: cluster.to_string(),
                node: node_id,
            });
        }
        Some(_) => {}
        None => log.record_identity(cluster, node_id).map_err(sled_err)?,
    }
    log.verify().map_err(|e| OpenError::CorruptLog { path: path.clone(), reason: e.to_string() })?;
    let file = SnapshotFile::new(&dir.join("snapshots")).map_err(|e| OpenError::Snapshot(e.to_string()))?;
    let sm = StateMachineStore::open(file, limits).map_err(|e| OpenError::Snapshot(e.to_string()))?;
    Ok((log, sm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_log_entry_is_found_at_start_up_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), "c", 0, Limits::default()).unwrap());
        {
            let db = sled::open(dir.path().join("sled")).unwrap();
            db.open_tree("raft").unwrap().insert(keys::log_key(5), &b"\xff\xff garbage"[..]).unwrap();
            db.flush().unwrap();
        }
        let err = open(dir.path(), "c", 0, Limits::default()).unwrap_err();
        assert!(matches!(err, OpenError::CorruptLog { .. }), "{err}");
        assert!(err.to_string().contains("--initial-cluster-state existing"), "says what to do: {err}");
    }

    #[test]
    fn a_corrupt_snapshot_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), "c", 0, Limits::default()).unwrap());
        std::fs::write(dir.path().join("snapshots/snapshot.bin"), b"\x00\x00\x00\x00\x00\x00\x00\x02{}garbage")
            .unwrap();
        let err = open(dir.path(), "c", 0, Limits::default()).unwrap_err();
        assert!(matches!(err, OpenError::Snapshot(_)), "{err}");
    }
}
