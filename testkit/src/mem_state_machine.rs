//! An in-memory Raft state machine (`RaftStateMachine` for `raft_store::types::TypeConfig`) over
//! the real IPAM domain (`ipam::apply` over a [`State`]), for tests that need openraft nodes
//! without a disk: the deterministic simulation (`jepsen-tests sim`) and storage tests. With
//! [`crate::mem_log::MemLog`] it passes openraft's storage suite (`tests/storage_suite.rs`).
//!
//! Snapshots are kept on a simulated disk ([`SmDisk`]) that the caller owns: a crash (dropping
//! the machine) loses the in-memory state, and a machine opened again on the same disk loads
//! the snapshot while openraft replays the log, as `whereabouts-node` does. Every apply is
//! reported to an [`ApplyObserver`], so that a test can check state-machine safety as it happens.

// openraft fixes the error type of every storage method (StorageError is large).
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use ipam::{snapshot, Limits, Reply, State};
use openraft::storage::RaftStateMachine;
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use raft_store::types::{typ, BatchReply, TypeConfig};
use raft_store::Machine;

/// Sees every entry a machine applies, with the reply of every event: how a test checks
/// state-machine safety across nodes while they apply (the simulation's oracle). Called with the
/// machine's state locked, in log order.
pub trait ApplyObserver: Send + Sync + 'static {
    /// Node `node` applied the entry at `log_id`.
    fn applied(&self, node: u64, log_id: typ::LogId);
    /// Node `node` answered the event with request id `request_id` with `reply`.
    fn replied(&self, node: u64, request_id: &str, reply: &Reply);
}

/// An observer that looks at nothing (a machine on its own).
#[derive(Debug, Default)]
pub struct NoObserver;

impl ApplyObserver for NoObserver {
    fn applied(&self, _node: u64, _log_id: typ::LogId) {}
    fn replied(&self, _node: u64, _request_id: &str, _reply: &Reply) {}
}

/// The snapshot on a node's simulated disk (survives crashes; share it between the machines of
/// one node's lifetimes).
#[derive(Debug, Default)]
pub struct SmDisk {
    /// Metadata and encoded state of the last snapshot built or installed.
    pub snapshot: Option<(typ::SnapshotMeta, Vec<u8>)>,
}

/// What the machine holds in memory: the same [`Machine`] the real state machine keeps.
pub type Volatile = Machine;

/// The state machine given to openraft; clones share it.
#[derive(Clone)]
pub struct MemSm {
    node: u64,
    vol: Arc<Mutex<Volatile>>,
    disk: Arc<Mutex<SmDisk>>,
    observer: Arc<dyn ApplyObserver>,
    built: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn err(e: impl std::error::Error + 'static) -> typ::StorageError {
    StorageIOError::new(ErrorSubject::Snapshot(None), ErrorVerb::Read, openraft::AnyError::new(&e)).into()
}

impl std::fmt::Debug for MemSm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemSm").field("node", &self.node).field("vol", &self.vol).field("disk", &self.disk).finish()
    }
}

impl MemSm {
    /// A machine of node 0 with an empty disk and no observer (for openraft's storage suite).
    pub fn fresh() -> MemSm {
        MemSm::open(0, Arc::new(Mutex::new(SmDisk::default())), Arc::new(NoObserver)).expect("an empty disk opens")
    }

    /// Node `node`'s machine, loaded from the snapshot on `disk` (a start or a restart),
    /// reporting every apply to `observer`.
    pub fn open(
        node: u64,
        disk: Arc<Mutex<SmDisk>>,
        observer: Arc<dyn ApplyObserver>,
    ) -> Result<MemSm, typ::StorageError> {
        let mut vol = Volatile { state: State::new(Limits::default()), ..Volatile::default() };
        if let Some((meta, data)) = &lock(&disk).snapshot {
            vol.state = snapshot::decode(data).map_err(err)?;
            vol.last_applied = meta.last_log_id;
            vol.membership = meta.last_membership.clone();
        }
        Ok(MemSm { node, vol: Arc::new(Mutex::new(vol)), disk, observer, built: 0 })
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
        let mut out = Vec::new();
        for entry in entries {
            self.observer.applied(self.node, entry.log_id);
            let (observer, node) = (&self.observer, self.node);
            out.push(v.apply_entry(entry, |event, reply| {
                if let Some(id) = &event.request_id {
                    observer.replied(node, id, reply);
                }
            }));
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
