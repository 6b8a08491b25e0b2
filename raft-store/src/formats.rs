//! What a node's data directory holds, by format: the newest format among its log entries and
//! the format of its stored snapshot. A member may be rolled back to an older binary only once
//! both are formats that binary reads (see [`ipam::format`] and docs/upgrades.md).

use ipam::snapshot::{SNAPSHOT_VERSION_CLUSTER, SNAPSHOT_VERSION_UNRESERVED};

use crate::{LogStore, SnapshotFile};

/// The formats found in one data directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredFormats {
    /// Newest format among the log entries (`None`: the log holds no entry).
    pub newest_entry: Option<u32>,
    /// The log format whose nodes read the stored snapshot (`None`: no snapshot).
    pub snapshot: Option<u32>,
}

impl StoredFormats {
    /// The newest format anything stored is in (1 for an empty directory).
    pub fn newest(&self) -> u32 {
        self.newest_entry.max(self.snapshot).unwrap_or(ipam::FORMAT_MIN)
    }
}

/// Reads the formats of a node's log and snapshot.
#[derive(Clone, Debug)]
pub struct FormatReport {
    log: LogStore,
    snapshots: SnapshotFile,
}

/// The log format whose readers read snapshots of `version` (snapshot versions 1 and 2 are read
/// by every release; 3 needs format 2).
pub fn format_of_snapshot_version(version: u32) -> u32 {
    match version {
        v if v <= SNAPSHOT_VERSION_UNRESERVED => 1,
        v if v == SNAPSHOT_VERSION_CLUSTER => 2,
        _ => u32::MAX,
    }
}

impl FormatReport {
    /// A report on `log` and `snapshots`.
    pub fn new(log: LogStore, snapshots: SnapshotFile) -> FormatReport {
        FormatReport { log, snapshots }
    }

    /// Scans the log (entries are few: the log is compacted into snapshots) and reads the
    /// snapshot's header.
    pub fn read(&self) -> std::io::Result<StoredFormats> {
        Ok(StoredFormats {
            newest_entry: self.log.newest_entry_format()?,
            snapshot: self.snapshots.stored_state_version()?.map(format_of_snapshot_version),
        })
    }
}
