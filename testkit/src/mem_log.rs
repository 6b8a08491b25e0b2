//! An in-memory Raft log (`RaftLogStorage` for `raft_store::types::TypeConfig`), for tests that
//! need openraft nodes without a disk: the deterministic simulation (`jepsen-tests sim`, where
//! it is a simulated node's disk) and storage tests. With [`crate::mem_state_machine::MemSm`] it
//! passes openraft's storage suite (`tests/storage_suite.rs`), as the sled store does.
//!
//! Everything appended is durable at once (the callback fires before `append` returns). The
//! data outlives a simulated crash when the caller keeps the [`MemLog`] handle (clones share it)
//! and gives it to the restarted node; the fields are public so that a test can damage the log
//! the way a lying disk would. Each entry is stored with a hash of its payload, for log-matching
//! checks across nodes.

// openraft fixes the error type of every storage method (StorageError is large).
#![allow(clippy::result_large_err)]

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use raft_store::types::{typ, TypeConfig};

/// What a node's log holds.
#[derive(Debug, Default)]
pub struct LogData {
    /// The last vote saved.
    pub vote: Option<typ::Vote>,
    /// The committed hint.
    pub committed: Option<typ::LogId>,
    /// Last purged log id.
    pub purged: Option<typ::LogId>,
    /// Entries by index, with a hash of their payload.
    pub entries: BTreeMap<u64, (typ::Entry, u64)>,
    /// Bumped by every change of `entries` (lets checks skip unchanged logs).
    pub version: u64,
}

/// A node's log; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemLog(Arc<Mutex<LogData>>);

/// A stable hash of an entry's payload (serialized as JSON).
pub fn payload_hash(entry: &typ::Entry) -> u64 {
    let bytes = serde_json::to_vec(&entry.payload).unwrap_or_default();
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl MemLog {
    /// Locks the data (for the invariant checks).
    pub fn lock(&self) -> MutexGuard<'_, LogData> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The change counter of the entries.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// `(index, log id, payload hash)` of every stored entry.
    pub fn ids(&self) -> Vec<(u64, typ::LogId, u64)> {
        self.lock().entries.iter().map(|(i, (e, h))| (*i, e.log_id, *h)).collect()
    }
}

impl RaftLogReader<TypeConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<typ::Entry>, typ::StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(*i),
            Bound::Excluded(i) => Bound::Excluded(*i),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(*i),
            Bound::Excluded(i) => Bound::Excluded(*i),
            Bound::Unbounded => Bound::Unbounded,
        };
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) = (start, end) {
            if s > e {
                return Ok(Vec::new());
            }
        }
        Ok(self.lock().entries.range((start, end)).map(|(_, (e, _))| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLog {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, typ::StorageError> {
        let d = self.lock();
        let last = d.entries.values().next_back().map(|(e, _)| e.log_id).or(d.purged);
        Ok(LogState { last_purged_log_id: d.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &typ::Vote) -> Result<(), typ::StorageError> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<typ::Vote>, typ::StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<typ::LogId>) -> Result<(), typ::StorageError> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<typ::LogId>, typ::StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), typ::StorageError>
    where
        I: IntoIterator<Item = typ::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut d = self.lock();
            for e in entries {
                let h = payload_hash(&e);
                d.entries.insert(e.log_id.index, (e, h));
            }
            d.version += 1;
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: typ::LogId) -> Result<(), typ::StorageError> {
        let mut d = self.lock();
        d.entries.split_off(&log_id.index);
        d.version += 1;
        Ok(())
    }

    async fn purge(&mut self, log_id: typ::LogId) -> Result<(), typ::StorageError> {
        let mut d = self.lock();
        d.purged = Some(log_id);
        let keep = d.entries.split_off(&(log_id.index + 1));
        d.entries = keep;
        d.version += 1;
        Ok(())
    }
}
