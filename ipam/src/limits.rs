//! Bounds on what the state remembers beyond the allocations themselves. They decide evictions
//! inside apply, so they are part of the replicated state: set by a `Configure` event through the
//! log and carried by snapshots, never taken from a node's own flags.

use serde::{Deserialize, Serialize};

/// How many request replies and history entries the state keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Replies kept for request-id deduplication (oldest forgotten first).
    pub request_cache: usize,
    /// Entries kept in the allocation history.
    pub history: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { request_cache: 65_536, history: 10_000 }
    }
}
/// Fewest replies kept for deduplication: a plugin's retries of one ADD must find its reply
/// even on a busy cluster.
pub const MIN_REQUEST_CACHE: u64 = 1_024;
/// Most replies kept for deduplication (bounds the state's and snapshots' size).
pub const MAX_REQUEST_CACHE: u64 = 4_000_000;
/// Most history entries kept.
pub const MAX_HISTORY: u64 = 1_000_000;
