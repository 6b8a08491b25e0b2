//! openraft's state machine: the IPAM [`State`] in memory, folded from committed entries, plus the
//! snapshot on disk. Applying is pure domain code under a write lock; readers (the IPAM service's
//! linearizable reads, metrics) take the read lock. A restarted node loads the snapshot and
//! openraft replays the log after it, so restart time is bounded by the snapshot, not the log.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError};

use super::snapshot_file::{SnapshotFile, StoredSnapshot};
use crate::types::{typ, BatchReply, NodeId, TypeConfig};
use ipam::{snapshot, Event, Reply, State};

/// What the state machine holds: the IPAM state and how far the log was applied.
#[derive(Debug, Default)]
pub struct Machine {
    /// The folded IPAM state.
    pub state: State,
    /// Last log entry applied.
    pub last_applied: Option<typ::LogId>,
    /// Membership as of `last_applied`.
    pub membership: typ::StoredMembership,
}

impl Machine {
    /// Applies one committed entry: its batch to the IPAM state (one reply per event, each also
    /// shown to `on_reply`), or its membership. Deterministic: every node gets the same replies.
    pub fn apply_entry(&mut self, entry: typ::Entry, mut on_reply: impl FnMut(&Event, &Reply)) -> BatchReply {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => BatchReply::default(),
            EntryPayload::Normal(batch) => {
                let mut replies = Vec::with_capacity(batch.events.len());
                for event in &batch.events {
                    let reply = ipam::apply(&mut self.state, event);
                    on_reply(event, &reply);
                    replies.push(reply);
                }
                BatchReply { replies }
            }
            EntryPayload::Membership(membership) => {
                self.membership = typ::StoredMembership::new(Some(entry.log_id), membership);
                BatchReply::default()
            }
        }
    }
}

/// Shared access to the [`Machine`] for readers outside openraft.
pub type SharedMachine = Arc<RwLock<Machine>>;

/// The state machine store given to openraft.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    machine: SharedMachine,
    file: SnapshotFile,
    snapshots_built: u64,
}

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> typ::StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::new(&e)).into()
}

impl StateMachineStore {
    /// Opens the state machine, loading the stored snapshot if there is one.
    pub fn open(file: SnapshotFile) -> Result<StateMachineStore, typ::StorageError> {
        let mut machine = Machine::default();
        let stored = file.read().map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
        if let Some(stored) = stored {
            load(&mut machine, &stored)?;
            tracing::info!(
                last_applied = ?machine.last_applied,
                allocations = machine.state.allocation_count(),
                "loaded the state machine from its snapshot"
            );
        }
        Ok(StateMachineStore { machine: Arc::new(RwLock::new(machine)), file, snapshots_built: 0 })
    }

    /// A handle for readers.
    pub fn shared(&self) -> SharedMachine {
        self.machine.clone()
    }

    fn read(&self) -> RwLockReadGuard<'_, Machine> {
        self.machine.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn load(machine: &mut Machine, stored: &StoredSnapshot) -> Result<(), typ::StorageError> {
    let signature = stored.meta.signature();
    let state = snapshot::decode(&stored.data)
        .map_err(|e| io_err(ErrorSubject::Snapshot(Some(signature)), ErrorVerb::Read, e))?;
    machine.state = state;
    machine.last_applied = stored.meta.last_log_id;
    machine.membership = stored.meta.last_membership.clone();
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<typ::LogId>, typ::StoredMembership), typ::StorageError> {
        let m = self.read();
        Ok((m.last_applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchReply>, typ::StorageError>
    where
        I: IntoIterator<Item = typ::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut m = self.machine.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(entries.into_iter().map(|entry| m.apply_entry(entry, |_, _| {})).collect())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshots_built += 1;
        // Encode now, under the read lock, so the builder owns a consistent copy.
        let m = self.read();
        SnapshotBuilder {
            data: snapshot::encode(&m.state),
            last_applied: m.last_applied,
            membership: m.membership.clone(),
            file: self.file.clone(),
            serial: self.snapshots_built,
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
        let stored = StoredSnapshot { meta: meta.clone(), data: snapshot.into_inner() };
        let mut fresh = Machine::default();
        load(&mut fresh, &stored)?;
        let file = self.file.clone();
        let signature = meta.signature();
        let write = tokio::task::spawn_blocking(move || file.write(&stored.meta, &stored.data));
        write
            .await
            .map_err(|e| io_err(ErrorSubject::Snapshot(Some(signature.clone())), ErrorVerb::Write, e))?
            .map_err(|e| io_err(ErrorSubject::Snapshot(Some(signature)), ErrorVerb::Write, e))?;
        let allocations = fresh.state.allocation_count();
        *self.machine.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        tracing::info!(snapshot = %meta.snapshot_id, allocations, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<typ::Snapshot>, typ::StorageError> {
        let file = self.file.clone();
        let stored = tokio::task::spawn_blocking(move || file.read())
            .await
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
        Ok(stored.map(|s| typ::Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}

/// Writes a snapshot encoded by [`StateMachineStore::get_snapshot_builder`].
#[derive(Debug)]
pub struct SnapshotBuilder {
    data: Vec<u8>,
    last_applied: Option<typ::LogId>,
    membership: typ::StoredMembership,
    file: SnapshotFile,
    serial: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<typ::Snapshot, typ::StorageError> {
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, self.serial),
            None => format!("empty-{}", self.serial),
        };
        let meta =
            typ::SnapshotMeta { last_log_id: self.last_applied, last_membership: self.membership.clone(), snapshot_id };
        let data = std::mem::take(&mut self.data);
        let (file, meta_w) = (self.file.clone(), meta.clone());
        let data = tokio::task::spawn_blocking(move || file.write(&meta_w, &data).map(|_| data))
            .await
            .map_err(|e| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e))?
            .map_err(|e| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e))?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built a snapshot");
        Ok(typ::Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
