//! Request ids: one per CNI invocation, reused on every retry of that invocation so the cluster
//! answers a retried write with its first reply. 128 random bits in hex, from the standard
//! library's randomly keyed hasher mixed with time, pid and a counter (no RNG dependency).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A fresh 32-hex-digit request id.
pub fn new_request_id() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// A backoff jitter factor in [0.5, 1.0] derived from a request id, so retries of many
/// invocations spread out while one invocation stays reproducible.
pub fn jitter_from(request_id: &str) -> f64 {
    let tail = request_id.get(request_id.len().saturating_sub(4)..).unwrap_or("");
    let n = u16::from_str_radix(tail, 16).unwrap_or(0x8000);
    0.5 + f64::from(n) / f64::from(u16::MAX) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bit_hex_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn jitter_stays_in_range() {
        for id in ["", "0000", "ffff", "zz", &new_request_id()] {
            let j = jitter_from(id);
            assert!((0.5..=1.0).contains(&j), "{id}: {j}");
        }
    }
}
