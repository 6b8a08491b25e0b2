//! Group commit: one thread makes appended log entries durable, many at a time. `append` writes
//! entries to sled's memory and hands the completion callback here; the thread takes every
//! callback waiting, syncs once ([`Disk::sync`]: sled's flush, then fdatasync), then completes them
//! all in order. Under load one
//! flush covers many appends — the flush rate, not the request rate, bounds the disk.

use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use openraft::storage::LogFlushed;

use crate::disk::Disk;
use crate::types::TypeConfig;

#[cfg(all(feature = "planted-bug-no-flush", not(debug_assertions)))]
compile_error!("planted-bug-no-flush is a test-only planted bug: never build it with optimizations/release");

/// Most callbacks completed by one flush (a bound on latency under extreme load).
const MAX_GROUP: usize = 4096;

/// Handle to the flusher thread; cloning shares it. When the last handle is dropped the thread
/// finishes the flushes already asked for, releases the store and is joined, so the data directory
/// can be opened again at once (a restart in the same process).
#[derive(Clone, Debug)]
pub struct Flusher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: Option<mpsc::Sender<LogFlushed<TypeConfig>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Flusher {
    /// Starts the flusher thread for `disk`.
    pub fn start(disk: Disk) -> Flusher {
        #[cfg(feature = "failpoints")]
        setup_failpoints();
        let (tx, rx) = mpsc::channel::<LogFlushed<TypeConfig>>();
        let thread = thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || run(disk, rx))
            .expect("spawn the log flusher thread");
        Flusher { inner: Arc::new(Inner { tx: Some(tx), thread: Some(thread) }) }
    }

    /// Completes `callback` once everything written to sled so far is durable.
    pub fn after_flush(&self, callback: LogFlushed<TypeConfig>) {
        let unsent = match self.inner.tx.as_ref() {
            Some(tx) => tx.send(callback).err().map(|mpsc::SendError(c)| c),
            None => Some(callback),
        };
        if let Some(callback) = unsent {
            callback.log_io_completed(Err(std::io::Error::other("log flusher stopped")));
        }
    }
}

fn run(disk: Disk, rx: mpsc::Receiver<LogFlushed<TypeConfig>>) {
    let mut group = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        #[cfg(feature = "failpoints")]
        fail::fail_point!("log-flush-before", |_| crash("log-flush-before"));
        // PLANTED BUG (test-only feature, never in release builds): acknowledge without flushing.
        #[cfg(feature = "planted-bug-no-flush")]
        let result: std::io::Result<()> = {
            let _not_flushed = &disk;
            Ok(())
        };
        #[cfg(not(feature = "planted-bug-no-flush"))]
        let result = disk.sync();
        #[cfg(feature = "failpoints")]
        fail::fail_point!("log-flush-after", |_| crash("log-flush-after"));
        if let Err(e) = &result {
            tracing::error!(error = %e, waiting = group.len(), "flushing the Raft log failed");
        }
        for callback in group.drain(..) {
            let r = result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string()));
            callback.log_io_completed(r);
        }
    }
}

/// Test-only (feature `failpoints`): reads the `FAILPOINTS` environment variable once per process,
/// e.g. `FAILPOINTS=log-flush-after=5%return`. A `return` action aborts the process at that point
/// (a crash around the flush); `panic`, `sleep`, `pause` act as in the `fail` crate.
#[cfg(feature = "failpoints")]
fn setup_failpoints() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::mem::forget(fail::FailScenario::setup());
        tracing::warn!(failpoints = %std::env::var("FAILPOINTS").unwrap_or_default(), "failpoints enabled");
    });
}

/// Test-only: the crash a `return` failpoint action asks for (no destructors, no flush).
#[cfg(feature = "failpoints")]
fn crash(point: &str) {
    eprintln!("failpoint {point}: aborting the process");
    std::process::abort();
}
