//! openraft's log storage on sled: entries, vote, committed id and purge point in one tree.
//! Appends become durable through the [`Flusher`] (group commit); the vote is flushed before
//! `save_vote` returns, as Raft requires.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::flusher::Flusher;
use super::keys;
use crate::types::{typ, NodeId, TypeConfig};

/// The Raft log of one node. Cheap to clone (sled handles are shared).
#[derive(Clone, Debug)]
pub struct LogStore {
    db: sled::Db,
    tree: sled::Tree,
    flusher: Flusher,
    /// Shared by every clone: when no strong reference is left, the store is closed.
    alive: std::sync::Arc<()>,
}

type Result<T> = std::result::Result<T, typ::StorageError>;

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> typ::StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

fn encode<T: Serialize>(value: &T, subject: ErrorSubject<NodeId>) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io_err(subject, ErrorVerb::Write, e))
}

fn decode<T: DeserializeOwned>(bytes: &[u8], subject: ErrorSubject<NodeId>) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io_err(subject, ErrorVerb::Read, e))
}

impl LogStore {
    /// Opens the log in `db` (tree `raft`) and starts its flusher.
    pub fn open(db: &sled::Db) -> std::result::Result<LogStore, sled::Error> {
        let tree = db.open_tree("raft")?;
        Ok(LogStore { db: db.clone(), tree, flusher: Flusher::start(db.clone()), alive: Default::default() })
    }

    /// A handle that tells when every clone of this store is gone (and the data directory can be
    /// opened again): openraft's tasks hold clones for a moment after `Raft::shutdown` returns.
    pub fn closed_when_gone(&self) -> std::sync::Weak<()> {
        std::sync::Arc::downgrade(&self.alive)
    }

    /// True when this node never took part in a cluster (no vote, no entry, nothing purged): the
    /// only state in which it may bootstrap one.
    pub fn is_pristine(&self) -> std::result::Result<bool, sled::Error> {
        Ok(self.tree.get(keys::VOTE)?.is_none()
            && self.tree.get(keys::PURGED)?.is_none()
            && self.tree.range(keys::log_key(0).as_slice()..keys::LOG_END.as_slice()).next().is_none())
    }

    /// The cluster name and node id recorded in this log, if any.
    pub fn recorded_identity(&self) -> std::result::Result<Option<(String, NodeId)>, sled::Error> {
        let node = self.tree.get(keys::NODE_ID)?.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes));
        let cluster = self.tree.get(keys::CLUSTER)?.map(|v| String::from_utf8_lossy(&v).into_owned());
        Ok(node.map(|n| (cluster.unwrap_or_default(), n)))
    }

    /// Records which cluster and node own this log (checked at every start).
    pub fn record_identity(&self, cluster: &str, id: NodeId) -> std::result::Result<(), sled::Error> {
        self.tree.insert(keys::CLUSTER, cluster.as_bytes())?;
        self.tree.insert(keys::NODE_ID, &id.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Marks this (empty) log as starting after `log_id`: what a restore from a backup does, with a
    /// snapshot at `log_id` beside it.
    pub fn mark_restored(&self, log_id: typ::LogId) -> Result<()> {
        let bytes = encode(&log_id, ErrorSubject::Store)?;
        self.tree.insert(keys::PURGED, bytes.clone()).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let committed = encode(&Some(log_id), ErrorSubject::Store)?;
        self.tree.insert(keys::COMMITTED, committed).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.db.flush().map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(())
    }

    /// Decodes every stored entry once: a corrupt log is found at start-up, not at replay.
    pub fn verify(&self) -> Result<u64> {
        let mut count = 0;
        for item in self.tree.range(keys::log_key(0).as_slice()..keys::LOG_END.as_slice()) {
            let (_, bytes) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            decode::<typ::Entry>(&bytes, ErrorSubject::Logs)?;
            count += 1;
        }
        for key in [keys::VOTE, keys::PURGED, keys::COMMITTED] {
            if let Some(bytes) = self.tree.get(key).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))? {
                let ok = match key {
                    k if k == keys::VOTE => decode::<typ::Vote>(&bytes, ErrorSubject::Vote).map(|_| ()),
                    k if k == keys::PURGED => decode::<typ::LogId>(&bytes, ErrorSubject::Store).map(|_| ()),
                    _ => decode::<Option<typ::LogId>>(&bytes, ErrorSubject::Store).map(|_| ()),
                };
                ok?;
            }
        }
        Ok(count)
    }

    fn meta<T: DeserializeOwned>(&self, key: &[u8], subject: ErrorSubject<NodeId>) -> Result<Option<T>> {
        match self.tree.get(key).map_err(|e| io_err(subject.clone(), ErrorVerb::Read, e))? {
            Some(bytes) => decode(&bytes, subject).map(Some),
            None => Ok(None),
        }
    }

    fn last_entry_id(&self) -> Result<Option<typ::LogId>> {
        let last = self.tree.range(keys::log_key(0).as_slice()..keys::LOG_END.as_slice()).next_back();
        match last {
            None => Ok(None),
            Some(Ok((_, bytes))) => Ok(Some(decode::<typ::Entry>(&bytes, ErrorSubject::Logs)?.log_id)),
            Some(Err(e)) => Err(io_err(ErrorSubject::Logs, ErrorVerb::Read, e)),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<typ::Entry>> {
        let start = match range.start_bound() {
            Bound::Included(i) => keys::log_key(*i).to_vec(),
            Bound::Excluded(i) => keys::log_key(i.saturating_add(1)).to_vec(),
            Bound::Unbounded => keys::log_key(0).to_vec(),
        };
        let end = match range.end_bound() {
            Bound::Included(i) if *i == u64::MAX => keys::LOG_END.to_vec(),
            Bound::Included(i) => keys::log_key(i + 1).to_vec(),
            Bound::Excluded(i) => keys::log_key(*i).to_vec(),
            Bound::Unbounded => keys::LOG_END.to_vec(),
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        for item in self.tree.range(start..end) {
            let (_, bytes) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            entries.push(decode(&bytes, ErrorSubject::Logs)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<typ::LogId> = self.meta(keys::PURGED, ErrorSubject::Store)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &typ::Vote) -> Result<()> {
        let bytes = encode(vote, ErrorSubject::Vote)?;
        self.tree.insert(keys::VOTE, bytes).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.db.flush_async().await.map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<typ::Vote>> {
        self.meta(keys::VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<typ::LogId>) -> Result<()> {
        // A hint that lets a restarted node re-apply committed entries at once; it does not need
        // its own flush (the next log flush carries it).
        let bytes = encode(&committed, ErrorSubject::Store)?;
        self.tree.insert(keys::COMMITTED, bytes).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<typ::LogId>> {
        Ok(self.meta::<Option<typ::LogId>>(keys::COMMITTED, ErrorSubject::Store)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = typ::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&keys::log_key(entry.log_id.index), encode(&entry, ErrorSubject::Logs)?);
        }
        self.tree.apply_batch(batch).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        #[cfg(feature = "failpoints")]
        fail::fail_point!("log-append-unflushed", |_| {
            eprintln!("failpoint log-append-unflushed: aborting the process");
            std::process::abort()
        });
        self.flusher.after_flush(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: typ::LogId) -> Result<()> {
        let mut batch = sled::Batch::default();
        for item in self.tree.range(keys::log_key(log_id.index).as_slice()..keys::LOG_END.as_slice()) {
            let (key, _) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            batch.remove(key);
        }
        self.tree.apply_batch(batch).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: typ::LogId) -> Result<()> {
        let mut batch = sled::Batch::default();
        batch.insert(keys::PURGED, encode(&log_id, ErrorSubject::Store)?);
        for item in self.tree.range(keys::log_key(0)..=keys::log_key(log_id.index)) {
            let (key, _) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            batch.remove(key);
        }
        self.tree.apply_batch(batch).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        Ok(())
    }
}
