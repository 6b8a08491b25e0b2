//! The log may make a purge durable only once a durable snapshot covers it.
//!
//! openraft 0.9 installs a snapshot sent by the leader by queueing the install for its
//! state-machine worker and purging the log up to the snapshot at once, without waiting for the
//! install (the engine's `install_full_snapshot`: the `PurgeLog` command has no condition, the
//! worker may still be applying a backlog). A purge synced first and a crash before the snapshot
//! file is written leave the log purged past the state machine: the entries after the old snapshot
//! are gone, and openraft can never start again (seen in the chaos suite: snapshot at 9894, log
//! purged up to 10195, committed hint 9939, no entry left).
//!
//! So [`PurgeGate`] keeps such a purge in memory — openraft allows it: "`purge()` does not have to
//! do the purge at once" (its storage suite) — and the log hides the entries it covers from reads
//! and from its log state at once, but writes it only once [`SnapshotCoverage`] says the snapshot
//! file covers it. Until then a crash leaves the state from before the install, which openraft
//! starts from; after it, the snapshot and the old log, which openraft cleans up at start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::types::typ;

/// The index of the last log entry the durable snapshot covers. Raised by the snapshot file once
/// a snapshot is on stable storage; read by the log before it writes a purge. Clones share it.
#[derive(Clone, Debug)]
pub struct SnapshotCoverage(Arc<watch::Sender<Option<u64>>>);

impl Default for SnapshotCoverage {
    fn default() -> Self {
        SnapshotCoverage(Arc::new(watch::channel(None).0))
    }
}

impl SnapshotCoverage {
    /// A snapshot up to `last` is durable.
    pub fn raise(&self, last: Option<&typ::LogId>) {
        if let Some(index) = last.map(|id| id.index) {
            self.0.send_if_modified(|covered| {
                let higher = covered.is_none_or(|c| index > c);
                if higher {
                    *covered = Some(index);
                }
                higher
            });
        }
    }

    /// True when the durable snapshot covers the entry at `index`.
    pub fn covers(&self, index: u64) -> bool {
        self.0.borrow().is_some_and(|c| c >= index)
    }

    /// The index covered, if any snapshot is durable.
    pub fn index(&self) -> Option<u64> {
        *self.0.borrow()
    }

    /// Waits (at most `limit`) until the durable snapshot covers `index`; false if it did not.
    pub async fn wait_covers(&self, index: u64, limit: Duration) -> bool {
        let mut rx = self.0.subscribe();
        let covered = tokio::time::timeout(limit, rx.wait_for(|c| c.is_some_and(|c| c >= index))).await;
        matches!(covered, Ok(Ok(_)))
    }
}

/// The purge openraft asked for and the part of it not yet written. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct PurgeGate {
    coverage: SnapshotCoverage,
    state: Arc<Mutex<Asked>>,
}

#[derive(Debug, Default)]
struct Asked {
    /// The highest purge openraft asked for in this process.
    upto: Option<typ::LogId>,
    /// Set while that purge waits for the snapshot covering it.
    deferred: bool,
}

impl PurgeGate {
    /// A gate that lets through the purges `coverage` covers.
    pub fn new(coverage: SnapshotCoverage) -> PurgeGate {
        PurgeGate { coverage, state: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Asked> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that openraft purged the log up to `log_id`. Returns the purge to write now (the
    /// highest asked for) if the snapshot covers it; `None`: it waits for the snapshot.
    pub fn ask(&self, log_id: typ::LogId) -> Option<typ::LogId> {
        let mut asked = self.lock();
        let upto = match asked.upto {
            Some(prev) if prev.index >= log_id.index => prev,
            _ => log_id,
        };
        asked.upto = Some(upto);
        asked.deferred = !self.coverage.covers(upto.index);
        (!asked.deferred).then_some(upto)
    }

    /// How far openraft was told the log is purged: reads and the log state hide the entries up
    /// to it even while they are still on disk.
    pub fn hidden_upto(&self) -> Option<typ::LogId> {
        self.lock().upto
    }

    /// The purge still to be written, if one was deferred.
    pub fn deferred(&self) -> Option<typ::LogId> {
        let asked = self.lock();
        asked.upto.filter(|_| asked.deferred)
    }

    /// True when the durable snapshot covers `log_id`.
    pub fn covers(&self, log_id: &typ::LogId) -> bool {
        self.coverage.covers(log_id.index)
    }

    /// Waits (at most `limit`) for a snapshot covering `log_id`; false if none came.
    pub async fn wait_covers(&self, log_id: &typ::LogId, limit: Duration) -> bool {
        self.coverage.wait_covers(log_id.index, limit).await
    }

    /// The purge up to `log_id` was written.
    pub fn written(&self, log_id: &typ::LogId) {
        let mut asked = self.lock();
        if asked.upto.is_some_and(|u| u.index <= log_id.index) {
            asked.deferred = false;
        }
    }

    /// The index the durable snapshot covers.
    pub fn covered_index(&self) -> Option<u64> {
        self.coverage.index()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn id(index: u64) -> typ::LogId {
        LogId::new(CommittedLeaderId::new(1, 0), index)
    }

    #[test]
    fn a_purge_waits_for_the_snapshot_covering_it_and_is_hidden_meanwhile() {
        let coverage = SnapshotCoverage::default();
        let gate = PurgeGate::new(coverage.clone());
        coverage.raise(Some(&id(20)));
        assert_eq!(gate.ask(id(10)), Some(id(10)), "covered: written at once");
        assert_eq!(gate.deferred(), None);
        assert_eq!(gate.ask(id(40)), None, "past the snapshot: deferred");
        assert_eq!((gate.deferred(), gate.hidden_upto()), (Some(id(40)), Some(id(40))));
        coverage.raise(Some(&id(30)));
        assert!(!gate.covers(&id(40)));
        coverage.raise(Some(&id(40)));
        assert!(gate.covers(&id(40)));
        coverage.raise(Some(&id(35)));
        assert!(coverage.covers(40), "coverage never goes back");
        gate.written(&id(40));
        assert_eq!((gate.deferred(), gate.hidden_upto()), (None, Some(id(40))));
        assert_eq!(gate.ask(id(30)), Some(id(40)), "a lower purge never lowers what is hidden");
    }

    #[tokio::test]
    async fn waiting_for_coverage_ends_when_the_snapshot_is_stored_or_at_the_limit() {
        let coverage = SnapshotCoverage::default();
        assert!(!coverage.wait_covers(5, Duration::from_millis(1)).await, "no snapshot: the limit ends it");
        let raiser = coverage.clone();
        let waiting = coverage.wait_covers(5, Duration::from_secs(60));
        let (covered, ()) = tokio::join!(waiting, async move { raiser.raise(Some(&id(5))) });
        assert!(covered);
    }
}
