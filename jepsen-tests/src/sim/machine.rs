//! The simulated state machine: the real IPAM domain (`raft_store::domain::apply` over a
//! [`State`]) in memory, with snapshots kept on the node's simulated disk ([`SmDisk`]). A crash
//! loses the in-memory state; the restarted node loads the snapshot and openraft replays the log,
//! as `whereabouts-node` does.
//!
//! Every apply also reports to the shared [`Oracle`], which checks state-machine safety as it
//! happens: one log id per index everywhere, and one reply per request id everywhere.

// openraft fixes the error type of every storage method (StorageError is large).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use raft_store::domain::{self, snapshot, Limits, State};
use raft_store::types::{typ, BatchReply, TypeConfig};

/// What every node applied, for state-machine safety.
#[derive(Debug, Default)]
pub struct Oracle {
    by_index: HashMap<u64, typ::LogId>,
    replies: HashMap<String, String>,
    /// Violations found while applying.
    pub violations: Vec<String>,
}

impl Oracle {
    /// A fresh oracle to share between nodes.
    pub fn shared() -> Arc<Mutex<Oracle>> {
        Arc::new(Mutex::new(Oracle::default()))
    }

    fn applied(&mut self, node: u64, log_id: typ::LogId) {
        let first = *self.by_index.entry(log_id.index).or_insert(log_id);
        if first != log_id {
            self.violations.push(format!(
                "state-machine safety: node {node} applied {log_id} at index {}, another node {first}",
                log_id.index
            ));
        }
    }

    fn replied(&mut self, node: u64, request_id: &str, reply: String) {
        let first = self.replies.entry(request_id.to_string()).or_insert_with(|| reply.clone());
        if *first != reply {
            self.violations.push(format!(
                "replies: node {node} answered request {request_id} with {reply}, another node with {first}"
            ));
        }
    }
}

/// The snapshot on a node's simulated disk (survives crashes).
#[derive(Debug, Default)]
pub struct SmDisk {
    /// Metadata and encoded state of the last snapshot built or installed.
    pub snapshot: Option<(typ::SnapshotMeta, Vec<u8>)>,
}

/// In-memory part of the machine (lost on a crash).
#[derive(Debug, Default)]
pub struct Volatile {
    /// The folded IPAM state.
    pub state: State,
    /// Last log id applied.
    pub last_applied: Option<typ::LogId>,
    /// Membership as of `last_applied`.
    pub membership: typ::StoredMembership,
}

/// The state machine given to openraft; clones share it.
#[derive(Debug, Clone)]
pub struct MemSm {
    node: u64,
    vol: Arc<Mutex<Volatile>>,
    disk: Arc<Mutex<SmDisk>>,
    oracle: Arc<Mutex<Oracle>>,
    built: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn err(e: impl std::error::Error + 'static) -> typ::StorageError {
    StorageIOError::new(ErrorSubject::Snapshot(None), ErrorVerb::Read, openraft::AnyError::new(&e)).into()
}

impl MemSm {
    /// A machine with an empty disk (for openraft's storage suite).
    pub fn fresh(oracle: Arc<Mutex<Oracle>>) -> MemSm {
        MemSm::open(0, Arc::new(Mutex::new(SmDisk::default())), oracle).expect("an empty disk opens")
    }

    /// Node `node`'s machine, loaded from the snapshot on `disk` (a start or a restart).
    pub fn open(node: u64, disk: Arc<Mutex<SmDisk>>, oracle: Arc<Mutex<Oracle>>) -> Result<MemSm, typ::StorageError> {
        let mut vol = Volatile { state: State::new(Limits::default()), ..Volatile::default() };
        if let Some((meta, data)) = &lock(&disk).snapshot {
            vol.state = snapshot::decode(data).map_err(err)?;
            vol.last_applied = meta.last_log_id;
            vol.membership = meta.last_membership.clone();
        }
        Ok(MemSm { node, vol: Arc::new(Mutex::new(vol)), disk, oracle, built: 0 })
    }

    /// Locks the in-memory state (for reads and checks).
    pub fn volatile(&self) -> MutexGuard<'_, Volatile> {
        lock(&self.vol)
    }
}

impl RaftStateMachine<TypeConfig> for MemSm {
    type SnapshotBuilder = MemSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<typ::LogId>, typ::StoredMembership), typ::StorageError> {
        let v = lock(&self.vol);
        Ok((v.last_applied, v.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchReply>, typ::StorageError>
    where
        I: IntoIterator<Item = typ::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut v = lock(&self.vol);
        let mut oracle = lock(&self.oracle);
        let mut out = Vec::new();
        for entry in entries {
            v.last_applied = Some(entry.log_id);
            oracle.applied(self.node, entry.log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => BatchReply::default(),
                EntryPayload::Normal(batch) => {
                    let mut replies = Vec::with_capacity(batch.events.len());
                    for ev in &batch.events {
                        let r = domain::apply(&mut v.state, ev);
                        if let Some(id) = &ev.request_id {
                            oracle.replied(self.node, id, format!("{r:?}"));
                        }
                        replies.push(r);
                    }
                    BatchReply { replies }
                }
                EntryPayload::Membership(m) => {
                    v.membership = typ::StoredMembership::new(Some(entry.log_id), m);
                    BatchReply::default()
                }
            };
            out.push(reply);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> MemSnapshotBuilder {
        self.built += 1;
        let v = lock(&self.vol);
        MemSnapshotBuilder {
            data: snapshot::encode(&v.state),
            last_applied: v.last_applied,
            membership: v.membership.clone(),
            disk: self.disk.clone(),
            serial: self.built,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, typ::StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &typ::SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), typ::StorageError> {
        let data = snapshot.into_inner();
        let state = snapshot::decode(&data).map_err(err)?;
        lock(&self.disk).snapshot = Some((meta.clone(), data));
        let mut v = lock(&self.vol);
        v.state = state;
        v.last_applied = meta.last_log_id;
        v.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<typ::Snapshot>, typ::StorageError> {
        let d = lock(&self.disk);
        Ok(d.snapshot
            .as_ref()
            .map(|(meta, data)| typ::Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(data.clone())) }))
    }
}

/// Builds a snapshot from the state encoded when the builder was made.
#[derive(Debug)]
pub struct MemSnapshotBuilder {
    data: Vec<u8>,
    last_applied: Option<typ::LogId>,
    membership: typ::StoredMembership,
    disk: Arc<Mutex<SmDisk>>,
    serial: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for MemSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<typ::Snapshot, typ::StorageError> {
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, self.serial),
            None => format!("empty-{}", self.serial),
        };
        let meta =
            typ::SnapshotMeta { last_log_id: self.last_applied, last_membership: self.membership.clone(), snapshot_id };
        let data = std::mem::take(&mut self.data);
        lock(&self.disk).snapshot = Some((meta.clone(), data.clone()));
        Ok(typ::Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
