//! Compaction on demand: a snapshot of everything applied, then the log purged up to it. The
//! downgrade runbook needs it: a member may run an older release only once no entry of a newer
//! format is left in its log (see `ipam::format`), and openraft's own policy keeps entries until
//! the next threshold.

use std::time::Duration;

use raft_store::formats::{FormatReport, StoredFormats};
use raft_store::types::typ;

/// What a compaction left behind.
#[derive(Clone, Copy, Debug)]
pub struct Compacted {
    /// The index the snapshot covers.
    pub snapshot_index: Option<u64>,
    /// The formats stored afterwards.
    pub formats: StoredFormats,
}

/// Snapshots what `raft` applied and purges its log up to the snapshot, waiting at most `within`
/// for each step.
pub async fn compact(raft: &typ::Raft, formats: &FormatReport, within: Duration) -> Result<Compacted, String> {
    let applied = raft.metrics().borrow().last_applied.map(|l| l.index);
    raft.trigger().snapshot().await.map_err(|e| format!("cannot start a snapshot: {e}"))?;
    let snapshot = raft
        .wait(Some(within))
        .metrics(|m| m.snapshot.map(|s| s.index) >= applied, "snapshot covers what was applied")
        .await
        .map_err(|e| format!("the snapshot did not complete: {e}"))?
        .snapshot
        .map(|s| s.index);
    if let Some(upto) = snapshot {
        raft.trigger().purge_log(upto).await.map_err(|e| format!("cannot purge the log: {e}"))?;
        raft.wait(Some(within))
            .metrics(|m| m.purged.map(|p| p.index) >= Some(upto), "log purged up to the snapshot")
            .await
            .map_err(|e| format!("the log was not purged (a replication may still need it; retry): {e}"))?;
    }
    let formats = formats.read().map_err(|e| format!("cannot read the stored formats: {e}"))?;
    Ok(Compacted { snapshot_index: snapshot, formats })
}
