//! Key layout of the Raft tree in sled. Log entries and Raft metadata share one tree so that a
//! purge (remove entries + record the purged id) is one atomic batch.
//!
//! - `l` + index (u64 big-endian): a log entry — big-endian keeps them in index order;
//! - `m` + name: metadata (`vote`, `committed`, `purged`, `node_id`, `cluster`).

/// Prefix of log entry keys.
pub const LOG_PREFIX: u8 = b'l';
/// First key after every log entry key.
pub const LOG_END: [u8; 1] = [b'm'];
/// The current vote.
pub const VOTE: &[u8] = b"mvote";
/// The last known committed log id.
pub const COMMITTED: &[u8] = b"mcommitted";
/// The last purged log id.
pub const PURGED: &[u8] = b"mpurged";
/// The node id this data directory belongs to.
pub const NODE_ID: &[u8] = b"mnode_id";
/// The cluster name this data directory belongs to.
pub const CLUSTER: &[u8] = b"mcluster";
/// The ids of the earlier incarnations this (new) incarnation replaces once it is a voter.
pub const REPLACES: &[u8] = b"mreplaces";

/// The key of the entry at `index`.
pub fn log_key(index: u64) -> [u8; 9] {
    let mut key = [LOG_PREFIX; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_index_and_before_metadata() {
        assert!(
            log_key(1) < log_key(2) && log_key(255) < log_key(256) && log_key(u64::MAX).as_slice() < LOG_END.as_slice()
        );
        assert!(LOG_END.as_slice() <= VOTE);
    }
}
