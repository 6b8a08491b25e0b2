//! openraft storage on sled: the log (entries, vote, committed, purge point), group-committed
//! flushes, and the state machine with its snapshot file. [`open`] opens both for a data directory.

// openraft fixes the error type of every storage method (StorageError, ~224 bytes).
#![allow(clippy::result_large_err)]

mod flusher;
mod keys;
mod log_store;
mod snapshot_file;
mod state_machine;

use std::path::Path;

pub use log_store::LogStore;
pub use snapshot_file::{SnapshotFile, StoredSnapshot};
pub use state_machine::{Machine, SharedMachine, SnapshotBuilder, StateMachineStore};

use crate::domain::Limits;

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// sled failed (corrupt store, permissions, disk).
    #[error("cannot open the sled store at {path}: {source}")]
    Sled {
        /// The store path.
        path: String,
        /// The failure.
        source: sled::Error,
    },
    /// The snapshot could not be read or decoded.
    #[error("cannot load the state machine snapshot: {0}")]
    Snapshot(String),
    /// The directory belongs to another node.
    #[error("data directory {path} belongs to node {recorded}, not node {wanted}: refusing to start (use the right --id or a fresh --data-dir)")]
    WrongNode {
        /// The directory.
        path: String,
        /// Node id found in the store.
        recorded: u64,
        /// Node id asked for.
        wanted: u64,
    },
}

/// Opens (creating if needed) the log and state machine of node `node_id` under `dir`.
pub fn open(dir: &Path, node_id: u64, limits: Limits) -> Result<(LogStore, StateMachineStore), OpenError> {
    let sled_path = dir.join("sled");
    let sled_err = |source| OpenError::Sled { path: sled_path.display().to_string(), source };
    let db = sled::Config::new().path(&sled_path).mode(sled::Mode::HighThroughput).open().map_err(sled_err)?;
    let log = LogStore::open(&db).map_err(sled_err)?;
    match log.recorded_node_id().map_err(sled_err)? {
        Some(recorded) if recorded != node_id => {
            return Err(OpenError::WrongNode { path: dir.display().to_string(), recorded, wanted: node_id });
        }
        Some(_) => {}
        None => log.record_node_id(node_id).map_err(sled_err)?,
    }
    let file = SnapshotFile::new(&dir.join("snapshots")).map_err(|e| OpenError::Snapshot(e.to_string()))?;
    let sm = StateMachineStore::open(file, limits).map_err(|e| OpenError::Snapshot(e.to_string()))?;
    Ok((log, sm))
}
