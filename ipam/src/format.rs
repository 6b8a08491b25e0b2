//! Format versions of what the cluster writes: log entries and snapshots. A node reads every
//! version from [`FORMAT_MIN`] to [`FORMAT_MAX`] and refuses the others with an error naming
//! both. What it *writes* is decided by the replicated cluster version ([`State::cluster_version`]):
//! during a rolling upgrade the members still running the older binary must read every entry, so
//! a new form is written only once the operator raised the cluster version, which is refused
//! while any member cannot read it.
//!
//! | version | log entries | snapshots |
//! |---|---|---|
//! | 1 | the entry payload as postcard, no marker (release 0.1.0) | snapshot header 1 or 2 |
//! | 2 | [`ENTRY_MARKER`], the version (varint), then the payload; adds [`Command::SetClusterVersion`] | header 3: the cluster version after the body |
//!
//! Adding a field or an event kind later means: a new version here, the new form written only
//! when the cluster version allows it, and the old form still decoded (see `docs/upgrades.md`).
//!
//! [`State::cluster_version`]: crate::State::cluster_version
//! [`Command::SetClusterVersion`]: crate::Command::SetClusterVersion

/// The oldest format this build reads (and the cluster version of a cluster that never set one).
pub const FORMAT_MIN: u32 = 1;
/// The newest format this build reads and can write.
pub const FORMAT_MAX: u32 = 2;

/// First byte of a log entry of format 2 or later. Format 1 entries start with openraft's
/// payload variant index (0, 1 or 2), so the two never collide, and a node that reads only
/// format 1 refuses a marked entry ("unknown variant") instead of misreading it.
pub const ENTRY_MARKER: u8 = 0x57;

/// A format this build does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} is in format version {found}; this build of whereabouts-rs reads versions {FORMAT_MIN} to \
     {FORMAT_MAX} — run a newer binary on this node"
)]
pub struct UnsupportedFormat {
    /// What was being read ("log entry 42", "snapshot").
    pub what: String,
    /// The version found.
    pub found: u32,
}

/// Whether `version` is one this build reads.
pub fn is_supported(version: u32) -> bool {
    (FORMAT_MIN..=FORMAT_MAX).contains(&version)
}
