//! The current snapshot as a file in the data directory: `snapshot.bin` = a length-prefixed JSON
//! header (openraft's snapshot metadata) followed by the encoded state. Written to a temporary
//! file, fsynced, then renamed over the old one (and the directory fsynced), so a crash leaves
//! either the old snapshot or the new one, never half of one.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::types::typ;

/// Largest snapshot header accepted (the header is small metadata).
const MAX_HEADER: usize = 1 << 20;

/// The snapshot files of one node.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    tmp: PathBuf,
}

/// A snapshot read back from disk.
#[derive(Clone, Debug)]
pub struct StoredSnapshot {
    /// Which log prefix it covers and the membership then.
    pub meta: typ::SnapshotMeta,
    /// The encoded state ([`crate::domain::snapshot`]).
    pub data: Vec<u8>,
}

impl SnapshotFile {
    /// Snapshot files under `dir` (created if missing).
    pub fn new(dir: &Path) -> std::io::Result<SnapshotFile> {
        fs::create_dir_all(dir)?;
        Ok(SnapshotFile { path: dir.join("snapshot.bin"), tmp: dir.join("snapshot.bin.tmp") })
    }

    /// Replaces the stored snapshot, durably.
    pub fn write(&self, meta: &typ::SnapshotMeta, data: &[u8]) -> std::io::Result<()> {
        let header = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        let mut file = File::create(&self.tmp)?;
        file.write_all(&(header.len() as u64).to_be_bytes())?;
        file.write_all(&header)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The stored snapshot, if any.
    pub fn read(&self) -> std::io::Result<Option<StoredSnapshot>> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut len = [0u8; 8];
        file.read_exact(&mut len)?;
        let len = usize::try_from(u64::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > MAX_HEADER {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "snapshot header too large"));
        }
        let mut header = vec![0u8; len];
        file.read_exact(&mut header)?;
        let meta =
            serde_json::from_slice(&header).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        Ok(Some(StoredSnapshot { meta, data }))
    }
}
