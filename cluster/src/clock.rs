//! The node's wall clock: the one place a node reads the time it stamps into events (as leader)
//! and backups. `apply` never reads a clock; it uses the time the leader stamped.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
