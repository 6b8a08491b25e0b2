//! Making what sled wrote durable. sled's `flush` writes its buffers and then calls
//! `sync_file_range`, which is not durable against power loss or a kernel crash: it neither flushes
//! the disk's cache nor the file's metadata (size), and sled never fsyncs its directories. Seen on
//! the chaos suite's power-loss filesystem (`jepsen-tests/lazyfs`): entries acknowledged after
//! `flush` were gone after a cut. [`Disk::sync`] follows sled's flush with an `fdatasync` of sled's
//! log file; [`Disk::open`] fsyncs the directories the store lives in, so that they survive too.
//!
//! sled also writes any page larger than a quarter of its segment (128 KiB by default: a leaf of
//! 16 large log entries) to a separate file under `blobs/` that it never fsyncs, and its log file
//! points at it. [`Disk::sync`] fsyncs the blob files written since the last sync and their
//! directory before the log file, so a durable pointer never points at a lost blob.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[cfg(all(feature = "planted-bug-no-fsync", not(debug_assertions)))]
compile_error!("planted-bug-no-fsync is a test-only planted bug: never build it with optimizations/release");

/// A sled database, a handle on its log file for `fdatasync`, and the blob files already synced.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Disk {
    db: sled::Db,
    log_file: Arc<File>,
    blobs_dir: PathBuf,
    synced_blobs: Arc<Mutex<HashSet<OsString>>>,
}

/// fsyncs the directory `dir` (so the entries it holds survive a power loss).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk {
    /// Opens (creating if needed) the sled database at `path` and fsyncs `path`, its parent and
    /// its grandparent (the node's data directory and the directory holding it).
    pub fn open(path: &Path) -> Result<Disk, sled::Error> {
        let db = sled::Config::new().path(path).mode(sled::Mode::HighThroughput).open()?;
        let log_file = Arc::new(File::open(path.join("db"))?);
        let mut dirs: Vec<PathBuf> = vec![path.to_path_buf()];
        dirs.extend(path.ancestors().skip(1).take(2).filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf));
        for dir in dirs {
            sync_dir(&dir)?;
        }
        let blobs_dir = path.join("blobs");
        Ok(Disk { db, log_file, blobs_dir, synced_blobs: Arc::default() })
    }

    /// The database.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Returns once everything written to sled so far is on stable storage.
    pub fn sync(&self) -> io::Result<()> {
        self.db.flush().map_err(io::Error::other)?;
        // PLANTED BUG (test-only feature, never in release builds): sled's flush only, as before
        // the fix — no blob fsyncs, no fdatasync of the log file.
        #[cfg(feature = "planted-bug-no-fsync")]
        {
            let _not_synced = (&self.log_file, Self::sync_blobs);
            Ok(())
        }
        #[cfg(not(feature = "planted-bug-no-fsync"))]
        {
            self.sync_blobs()?;
            self.log_file.sync_data()
        }
    }

    /// fsyncs the blob files sled wrote since the last call, then their directory.
    fn sync_blobs(&self) -> io::Result<()> {
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = HashSet::new();
        let mut new = 0;
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()) {
                    Ok(f) => f.sync_data()?,
                    // Collected by sled meanwhile: nothing to keep.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new += 1;
            }
            present.insert(name);
        }
        if new > 0 {
            sync_dir(&self.blobs_dir)?;
        }
        *synced = present;
        Ok(())
    }

    /// [`Disk::sync`] off the async runtime's threads.
    pub async fn sync_async(&self) -> io::Result<()> {
        let disk = self.clone();
        tokio::task::spawn_blocking(move || disk.sync()).await.map_err(io::Error::other)?
    }
}
