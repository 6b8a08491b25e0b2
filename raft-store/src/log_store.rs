//! openraft's log storage on sled: entries, vote, committed id and purge point in one tree.
//! Appends become durable through the [`Flusher`] (group commit); the vote, a truncation and a
//! purge are synced to stable storage ([`Disk::sync`]) before they return, as Raft requires — a
//! purge only once the stored snapshot covers it ([`crate::purge_gate`]).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::disk::Disk;
use super::entry_codec;
use super::flusher::Flusher;
use super::keys;
use super::purge_gate::{PurgeGate, SnapshotCoverage};
use crate::types::{typ, NodeId, TypeConfig};

/// The Raft log of one node. Cheap to clone (sled handles are shared).
#[derive(Clone, Debug)]
pub struct LogStore {
    disk: Disk,
    tree: sled::Tree,
    flusher: Flusher,
    /// Purges wait for the snapshot covering them before they are written ([`crate::purge_gate`]).
    purge_gate: PurgeGate,
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
    /// Opens the log in `disk` (tree `raft`) and starts its flusher.
    pub fn open(disk: &Disk) -> std::result::Result<LogStore, sled::Error> {
        let tree = disk.db().open_tree("raft")?;
        Ok(LogStore {
            disk: disk.clone(),
            tree,
            flusher: Flusher::start(disk.clone()),
            purge_gate: PurgeGate::default(),
            alive: Default::default(),
        })
    }

    /// This log, writing a purge only once `coverage` (the snapshot file's) covers it. Until this
    /// is called every purge waits. Call it before the store is cloned: clones keep their gate.
    pub(crate) fn with_purges_gated_by(self, coverage: SnapshotCoverage) -> LogStore {
        LogStore { purge_gate: PurgeGate::new(coverage), ..self }
    }

    /// The purge point on disk if it lies past what the snapshot covers: the entries between are
    /// lost (a crash between a purge and the snapshot install it was for, before purges waited
    /// for the snapshot), and openraft cannot start from such a log.
    pub(crate) fn purged_past_snapshot(&self) -> Result<Option<typ::LogId>> {
        let purged: Option<typ::LogId> = self.meta(keys::PURGED, ErrorSubject::Store)?;
        Ok(purged.filter(|p| !self.purge_gate.covers(p)))
    }

    /// The index the snapshot covers, as the purge gate sees it.
    pub(crate) fn snapshot_covers(&self) -> Option<u64> {
        self.purge_gate.covered_index()
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
        self.disk.sync().map_err(sled::Error::Io)?;
        Ok(())
    }

    /// The earlier incarnations this node is to replace once it is a voter (empty: none).
    pub fn replaces(&self) -> std::result::Result<Vec<NodeId>, sled::Error> {
        Ok(match self.tree.get(keys::REPLACES)? {
            Some(v) => postcard::from_bytes(&v).unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// Records that this node is incarnation `id` of its ordinal, replacing `replaces`, durably.
    pub fn record_rejoin(
        &self,
        cluster: &str,
        id: NodeId,
        replaces: &[NodeId],
    ) -> std::result::Result<(), sled::Error> {
        let bytes = postcard::to_stdvec(replaces).expect("a list of ids always encodes");
        self.tree.insert(keys::REPLACES, bytes)?;
        self.record_identity(cluster, id)
    }

    /// Forgets the earlier incarnations (they were removed from the membership).
    pub fn clear_replaces(&self) -> std::result::Result<(), sled::Error> {
        self.tree.remove(keys::REPLACES)?;
        self.disk.sync().map_err(sled::Error::Io)?;
        Ok(())
    }

    /// Marks this (empty) log as starting after `log_id`: what a restore from a backup does, with a
    /// snapshot at `log_id` beside it.
    pub fn mark_restored(&self, log_id: typ::LogId) -> Result<()> {
        let bytes = encode(&log_id, ErrorSubject::Store)?;
        self.tree.insert(keys::PURGED, bytes.clone()).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        let committed = encode(&Some(log_id), ErrorSubject::Store)?;
        self.tree.insert(keys::COMMITTED, committed).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.disk.sync().map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(())
    }

    /// Decodes every stored entry once: a corrupt log is found at start-up, not at replay.
    pub fn verify(&self) -> Result<u64> {
        let mut count = 0;
        for item in self.tree.range(keys::log_key(0).as_slice()..keys::LOG_END.as_slice()) {
            let (_, bytes) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            entry_codec::decode_entry(&bytes).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
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

    /// The newest format among the entries still in the log (`None`: the log holds none). A node
    /// may run an older binary only once no entry newer than that binary reads is left.
    pub fn newest_entry_format(&self) -> std::io::Result<Option<u32>> {
        let mut newest = None;
        for item in self.tree.range(keys::log_key(0).as_slice()..keys::LOG_END.as_slice()) {
            let (_, bytes) = item.map_err(std::io::Error::other)?;
            let (_, format) = entry_codec::peek_entry(&bytes).map_err(std::io::Error::other)?;
            newest = newest.max(Some(format));
        }
        Ok(newest)
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
            Some(Ok((_, bytes))) => {
                Ok(Some(entry_codec::peek_entry(&bytes).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?.0))
            }
            Some(Err(e)) => Err(io_err(ErrorSubject::Logs, ErrorVerb::Read, e)),
        }
    }

    /// Adds to `batch` the removal of every entry up to `upto` and the new purge point.
    fn add_purge(&self, batch: &mut sled::Batch, upto: typ::LogId) -> Result<()> {
        batch.insert(keys::PURGED, encode(&upto, ErrorSubject::Store)?);
        for item in self.tree.range(keys::log_key(0)..=keys::log_key(upto.index)) {
            let (key, _) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            batch.remove(key);
        }
        Ok(())
    }

    /// Before an append whose first entry is `first`, with the purge up to `upto` deferred: once
    /// the snapshot covers it, the purge goes into the append's `batch` (one atomic write, made
    /// durable by the append's flush). An append that would leave a hole on disk — its entries
    /// right after `upto`, the old entries ending before — first waits for that snapshot (openraft
    /// appends there while its state machine worker still installs the snapshot, e.g. for a new
    /// leader): written alone, such entries would follow a gap after a crash. True if folded.
    async fn fold_deferred_purge(&self, batch: &mut sled::Batch, upto: typ::LogId, first: Option<u64>) -> Result<bool> {
        if !self.purge_gate.covers(&upto) {
            let purged: Option<typ::LogId> = self.meta(keys::PURGED, ErrorSubject::Store)?;
            let next_on_disk = self.last_entry_id()?.or(purged).map_or(0, |id| id.index + 1);
            if first.is_none_or(|first| first <= next_on_disk) {
                return Ok(false);
            }
            tracing::info!(purged = %upto, first, "appending after a purge that waits for its snapshot: waiting for it");
            if !self.purge_gate.wait_covers(&upto, SNAPSHOT_WAIT).await {
                let e = std::io::Error::other(format!(
                    "no snapshot covering the purge up to {upto} was stored within {SNAPSHOT_WAIT:?}: \
                     cannot append after it without leaving a gap in the log"
                ));
                return Err(io_err(ErrorSubject::Logs, ErrorVerb::Write, e));
            }
        }
        self.add_purge(batch, upto)?;
        Ok(true)
    }
}

/// Longest an append waits for the snapshot a deferred purge is for (the state machine worker may
/// be applying a backlog before it installs the snapshot).
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

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
        // Entries up to a purge that waits for its snapshot are still on disk, but purged.
        let hidden = self.purge_gate.hidden_upto().map(|p| keys::log_key(p.index.saturating_add(1)).to_vec());
        let start = start.max(hidden.unwrap_or_default());
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
            entries
                .push(entry_codec::decode_entry(&bytes).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let on_disk: Option<typ::LogId> = self.meta(keys::PURGED, ErrorSubject::Store)?;
        // A purge that waits for its snapshot is already one for openraft.
        let last_purged_log_id = on_disk.max(self.purge_gate.hidden_upto());
        let last_log_id = self.last_entry_id()?.max(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &typ::Vote) -> Result<()> {
        let bytes = encode(vote, ErrorSubject::Vote)?;
        self.tree.insert(keys::VOTE, bytes).map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.disk.sync_async().await.map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        Ok(())
    }

    /// The saved vote — except that a committed vote for this node itself (it led when it
    /// stopped) is returned as a plain vote for itself in that term. openraft would otherwise
    /// resume leadership at once after a restart, in the same term and with the first entry of
    /// that term as its read point, while the committed index it restored is only a hint that may
    /// be behind what it acknowledged before the crash: a linearizable read would then miss an
    /// acknowledged write. Starting as a follower costs one election and gives the new term a new
    /// first entry to read after. Still a vote for itself in that term, so it never votes for
    /// another candidate of the same term.
    async fn read_vote(&mut self) -> Result<Option<typ::Vote>> {
        let vote: Option<typ::Vote> = self.meta(keys::VOTE, ErrorSubject::Vote)?;
        let me =
            self.recorded_identity().map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Read, e))?.map(|(_, id)| id);
        Ok(vote.map(|v| match me {
            Some(me) if v.is_committed() && v.leader_id().voted_for() == Some(me) => {
                typ::Vote::new(v.leader_id().get_term(), me)
            }
            _ => v,
        }))
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
        let mut entries = entries.into_iter().peekable();
        let first = entries.peek().map(|e| e.log_id.index);
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes =
                entry_codec::encode_entry(&entry).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            batch.insert(&keys::log_key(entry.log_id.index), bytes);
        }
        let mut folded = None;
        if let Some(upto) = self.purge_gate.deferred() {
            folded = self.fold_deferred_purge(&mut batch, upto, first).await?.then_some(upto);
        }
        self.tree.apply_batch(batch).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        if let Some(upto) = folded {
            self.purge_gate.written(&upto);
        }
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
        // Entries of a deposed leader must not come back after a crash.
        self.disk.sync_async().await.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        Ok(())
    }

    /// Written at once when the stored snapshot covers it (openraft purges after building one);
    /// otherwise — openraft purges before its state machine worker installs a snapshot from the
    /// leader — kept in memory until that snapshot is stored ([`crate::purge_gate`]).
    async fn purge(&mut self, log_id: typ::LogId) -> Result<()> {
        let Some(upto) = self.purge_gate.ask(log_id) else {
            tracing::info!(purge = %log_id, "the purge waits for the snapshot covering it to be stored");
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        self.add_purge(&mut batch, upto)?;
        self.tree.apply_batch(batch).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.disk.sync_async().await.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.purge_gate.written(&upto);
        Ok(())
    }
}
