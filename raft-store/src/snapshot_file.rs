//! The current snapshot as a file in the data directory: `snapshot.bin` = a length-prefixed JSON
//! header (openraft's snapshot metadata) followed by the encoded state. Written to a temporary
//! file, fsynced, then renamed over the old one (and the directory fsynced), so a crash leaves
//! either the old snapshot or the new one, never half of one.
//!
//! openraft builds a snapshot (log compaction) and installs one (sent by the leader) on different
//! tasks, so two writes can overlap: writes are serialized, each uses its own temporary file, and
//! a write never replaces a snapshot that covers more of the log (an older build finishing after a
//! newer install would otherwise bring back state whose log was already purged).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::purge_gate::SnapshotCoverage;
use crate::types::typ;

/// Largest snapshot header accepted (the header is small metadata).
const MAX_HEADER: usize = 1 << 20;

/// Temporary files are `snapshot.bin.tmp.<n>`.
const TMP_PREFIX: &str = "snapshot.bin.tmp";

/// The snapshot files of one node. Clones share the write lock.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    dir: PathBuf,
    path: PathBuf,
    writing: Arc<Mutex<()>>,
    next_tmp: Arc<AtomicU64>,
    /// How far the stored snapshot covers the log, for the log's purges.
    coverage: SnapshotCoverage,
}

/// What [`SnapshotFile::write`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The snapshot is now the stored one.
    Stored,
    /// The stored snapshot covers more of the log; it was kept.
    KeptNewer,
}

/// A snapshot read back from disk.
#[derive(Clone, Debug)]
pub struct StoredSnapshot {
    /// Which log prefix it covers and the membership then.
    pub meta: typ::SnapshotMeta,
    /// The encoded state ([`ipam::snapshot`]).
    pub data: Vec<u8>,
}

impl SnapshotFile {
    /// Snapshot files under `dir` (created if missing).
    pub fn new(dir: &Path) -> std::io::Result<SnapshotFile> {
        if !dir.is_dir() {
            fs::create_dir_all(dir)?;
            if let Some(parent) = dir.parent() {
                crate::disk::sync_dir(parent)?;
            }
        }
        // Temporary files of writes a crash interrupted.
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                fs::remove_file(entry.path())?;
            }
        }
        let file = SnapshotFile {
            dir: dir.to_path_buf(),
            path: dir.join("snapshot.bin"),
            writing: Arc::default(),
            next_tmp: Arc::default(),
            coverage: SnapshotCoverage::default(),
        };
        // A header that does not read is reported by whoever reads the snapshot; it covers nothing.
        if let Ok(Some(meta)) = file.read_meta() {
            file.coverage.raise(meta.last_log_id.as_ref());
        }
        Ok(file)
    }

    /// How far the stored snapshot covers the log; raised each time a newer one is stored.
    pub(crate) fn coverage(&self) -> SnapshotCoverage {
        self.coverage.clone()
    }

    /// Replaces the stored snapshot with `meta` + `data`, durably — unless the stored one covers
    /// more of the log.
    pub fn write(&self, meta: &typ::SnapshotMeta, data: &[u8]) -> std::io::Result<Written> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stored) = self.read_meta()? {
            if stored.last_log_id > meta.last_log_id {
                tracing::info!(
                    stored = ?stored.last_log_id,
                    offered = ?meta.last_log_id,
                    "kept the stored snapshot: it covers more of the log"
                );
                return Ok(Written::KeptNewer);
            }
        }
        let header = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{TMP_PREFIX}.{}", self.next_tmp.fetch_add(1, Ordering::Relaxed)));
        let mut file = File::create(&tmp)?;
        file.write_all(&(header.len() as u64).to_be_bytes())?;
        file.write_all(&header)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &self.path)?;
        crate::disk::sync_dir(&self.dir)?;
        self.coverage.raise(meta.last_log_id.as_ref());
        Ok(Written::Stored)
    }

    /// The metadata of the stored snapshot, if any (without reading its data).
    fn read_meta(&self) -> std::io::Result<Option<typ::SnapshotMeta>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        read_header(&mut file).map(Some)
    }

    /// The format version of the stored snapshot's state ([`ipam::snapshot`]'s header), read from
    /// its first bytes; `None` without a snapshot.
    pub fn stored_state_version(&self) -> std::io::Result<Option<u32>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        read_header(&mut file)?;
        let mut head = Vec::with_capacity(8);
        file.take(8).read_to_end(&mut head)?;
        ipam::snapshot::peek_version(&head).map(Some).map_err(std::io::Error::other)
    }

    /// The stored snapshot, if any.
    pub fn read(&self) -> std::io::Result<Option<StoredSnapshot>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = read_header(&mut file)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        Ok(Some(StoredSnapshot { meta, data }))
    }
}

/// Reads the length-prefixed JSON header at the start of a snapshot file.
fn read_header(file: &mut File) -> std::io::Result<typ::SnapshotMeta> {
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let len = usize::try_from(u64::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_HEADER {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "snapshot header too large"));
    }
    let mut header = vec![0u8; len];
    file.read_exact(&mut header)?;
    serde_json::from_slice(&header).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn meta(index: u64) -> typ::SnapshotMeta {
        typ::SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 0), index)),
            last_membership: Default::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    /// Regression: a build of an older snapshot that finished after a newer one was installed
    /// replaced it (seen failing before: the stored snapshot was the older one).
    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::new(dir.path()).unwrap();
        assert_eq!(file.write(&meta(20), b"newer").unwrap(), Written::Stored);
        assert_eq!(file.clone().write(&meta(10), b"older").unwrap(), Written::KeptNewer);
        let stored = file.read().unwrap().unwrap();
        assert_eq!((stored.meta.snapshot_id.as_str(), stored.data.as_slice()), ("s20", &b"newer"[..]));
        assert_eq!(file.write(&meta(20), b"same point").unwrap(), Written::Stored, "the same point may be rewritten");
    }

    /// Regression: concurrent writes shared one temporary file, so one could rename the other's
    /// half-written file into place. Bounded: 4 writers x 50 writes.
    #[test]
    fn concurrent_writes_leave_a_whole_snapshot_and_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::new(dir.path()).unwrap();
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let file = file.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let index = i * 4 + w;
                        let data = vec![(index % 251) as u8; 64 * 1024 + index as usize];
                        file.write(&meta(index), &data).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let stored = file.read().unwrap().unwrap();
        let index = stored.meta.last_log_id.unwrap().index;
        assert_eq!(index, 199, "the newest snapshot is the one kept");
        assert_eq!(stored.data, vec![(index % 251) as u8; 64 * 1024 + index as usize], "the data is whole");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("snapshot.bin")]);
    }

    #[test]
    fn leftover_temporary_files_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("snapshot.bin.tmp"), b"half").unwrap();
        fs::write(dir.path().join("snapshot.bin.tmp.7"), b"half").unwrap();
        SnapshotFile::new(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
