//! The fault and its opposites: the power cut, the clean sync, and the status report.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::journal::Describe as _;
use crate::state::{Core, LazyFs};
use crate::sys;

/// Why a cut or sync could not run.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// Handles were still open when the wait ran out: the callers must be killed first.
    #[error("{0} handle(s) still open after waiting {1:?}: kill every process using the mount before a cut")]
    HandlesOpen(usize, Duration),
    /// The filesystem has already been closed.
    #[error("the filesystem is closed")]
    Closed,
    /// Writing dirty data back failed (sync only).
    #[error("sync failed: {0}")]
    Io(#[from] io::Error),
}

/// What a power cut dropped and undid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutReport {
    /// Files whose un-fsynced data was dropped.
    pub dropped_files: u64,
    /// Un-fsynced bytes dropped.
    pub dropped_bytes: u64,
    /// Namespace changes undone, newest first.
    pub undone: Vec<String>,
    /// Undo steps that failed (the backing directory may then differ from the durable state).
    pub errors: Vec<String>,
}

/// What a clean sync wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Files whose data was written back.
    pub files: u64,
    /// Bytes written back.
    pub bytes: u64,
    /// Namespace changes made durable.
    pub namespace_ops: u64,
}

/// A snapshot of the filesystem's pending state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Un-fsynced bytes held in memory.
    pub dirty_bytes: u64,
    /// Files with un-fsynced changes.
    pub dirty_files: u64,
    /// Namespace changes not yet durable.
    pub pending_namespace_ops: u64,
    /// Open file and directory handles.
    pub open_handles: u64,
    /// Nodes in the inode table.
    pub nodes: u64,
    /// fsync requests seen.
    pub fsyncs: u64,
    /// fdatasync requests seen.
    pub fdatasyncs: u64,
    /// fsyncdir requests seen.
    pub fsyncdirs: u64,
    /// Cuts done.
    pub cuts: u64,
    /// Syncs done.
    pub syncs: u64,
    /// The current fsync delay in milliseconds.
    pub fsync_delay_ms: u64,
    /// The oldest pending namespace changes (at most [`STATUS_PENDING_SHOWN`]), oldest first.
    pub pending: Vec<String>,
}

/// How many pending namespace changes `status` lists.
pub const STATUS_PENDING_SHOWN: usize = 32;

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(std::sync::atomic::Ordering::Relaxed)
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl LazyFs {
    /// Waits (up to `wait`) until no handle is open, and returns the table lock held.
    fn lock_idle(&self, wait: Duration) -> Result<std::sync::MutexGuard<'_, Core>, PowerError> {
        let deadline = Instant::now() + wait;
        loop {
            let core = self.lock();
            if core.graveyard.is_none() {
                return Err(PowerError::Closed);
            }
            if core.handles.is_empty() {
                return Ok(core);
            }
            let open = core.handles.len();
            drop(core);
            if Instant::now() >= deadline {
                return Err(PowerError::HandlesOpen(open, wait));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The power cut: drops every un-fsynced data change and undoes every un-fsynced namespace
    /// change, newest first, leaving the backing directory as the last fsyncs left it. Refuses
    /// while handles are open after waiting up to `wait` for them to close.
    pub fn cut(&self, wait: Duration) -> Result<CutReport, PowerError> {
        let mut core = self.lock_idle(wait)?;
        let report = Self::cut_locked(&mut core);
        bump(&self.counters.cuts);
        tracing::info!(?report, "power cut");
        Ok(report)
    }

    fn cut_locked(core: &mut Core) -> CutReport {
        let mut report = CutReport::default();
        for slot in core.nodes.values() {
            if let Some(bytes) = slot.node.drop_dirty() {
                report.dropped_files += 1;
                report.dropped_bytes += bytes;
            }
        }
        let entries = core.journal.drain_for_undo();
        if let Some(graveyard) = core.graveyard.as_ref() {
            for entry in entries {
                let what = entry.undo.describe();
                match entry.undo.undo(graveyard) {
                    Ok(()) => report.undone.push(what),
                    Err(e) => {
                        tracing::error!(change = %what, error = %e, "undo failed");
                        report.errors.push(format!("{what}: {e}"));
                    }
                }
            }
            match graveyard.len() {
                Ok(0) => {}
                Ok(n) => report.errors.push(format!("{n} object(s) left in the graveyard")),
                Err(e) => report.errors.push(format!("graveyard: {e}")),
            }
        }
        LazyFs::sweep(core);
        report
    }

    /// The clean shutdown: writes back (and fsyncs) every dirty file, makes every namespace
    /// change durable, and fsyncs the backing directories they touched. Open handles are fine.
    pub fn sync_all(&self) -> Result<SyncReport, PowerError> {
        let mut core = self.lock();
        if core.graveyard.is_none() {
            return Err(PowerError::Closed);
        }
        let mut report = SyncReport::default();
        for slot in core.nodes.values() {
            let wb = slot.node.writeback(false)?;
            if wb.was_dirty {
                report.files += 1;
                report.bytes += wb.bytes;
            }
        }
        let settled = core.journal.drain_all();
        report.namespace_ops = settled.len() as u64;
        Self::settle_all(&core, &settled);
        LazyFs::sweep(&mut core);
        drop(core);
        // fsync the backing directories the changes touched (not syncfs: that would flush the
        // whole host filesystem).
        let mut dirs: Vec<&std::sync::Arc<std::os::fd::OwnedFd>> = settled.iter().flat_map(|e| e.undo.dirs()).collect();
        dirs.sort_by_key(|d| std::sync::Arc::as_ptr(d));
        dirs.dedup_by_key(|d| std::sync::Arc::as_ptr(d));
        for dir in dirs {
            match sys::reopen(dir.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY) {
                Ok(fd) => sys::sync_fd(fd.as_fd(), false)?,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {} // removed since
                Err(e) => return Err(e.into()),
            }
        }
        bump(&self.counters.syncs);
        tracing::info!(?report, "sync");
        Ok(report)
    }

    /// The pending state and counters.
    pub fn status(&self) -> Status {
        let core = self.lock();
        let mut status = Status {
            pending_namespace_ops: core.journal.len() as u64,
            open_handles: core.handles.len() as u64,
            nodes: core.nodes.len() as u64,
            pending: core.journal.describe(STATUS_PENDING_SHOWN),
            ..Status::default()
        };
        for slot in core.nodes.values() {
            if let Some(bytes) = slot.node.dirty_bytes() {
                status.dirty_files += 1;
                status.dirty_bytes += bytes;
            }
        }
        drop(core);
        status.fsyncs = load(&self.counters.fsyncs);
        status.fdatasyncs = load(&self.counters.fdatasyncs);
        status.fsyncdirs = load(&self.counters.fsyncdirs);
        status.cuts = load(&self.counters.cuts);
        status.syncs = load(&self.counters.syncs);
        status.fsync_delay_ms = self.fsync_delay().as_millis() as u64;
        status
    }

    /// Closes the filesystem after the mount ended: a cut (`sync == false`, open handles are
    /// ignored: the kernel side is gone) or a sync, then the graveyard is removed.
    pub fn close(&self, sync: bool) -> Result<(), PowerError> {
        if sync {
            self.sync_all()?;
        } else {
            let mut core = self.lock();
            core.handles.clear();
            let report = Self::cut_locked(&mut core);
            tracing::info!(?report, "closing: pending changes dropped");
        }
        let mut core = self.lock();
        let graveyard = core.graveyard.take().ok_or(PowerError::Closed)?;
        graveyard.remove(self.root().dir())?;
        Ok(())
    }
}
