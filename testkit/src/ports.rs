//! TCP ports for test nodes that no other test gets while this process lives. Ports from the
//! kernel (`bind` to port 0, released, handed to a child process later) are reused by the kernel
//! for the next test process that asks: a node restarted or started late then finds its port
//! taken by another test's node, and two tests' clusters talk to each other. These ports come
//! from below the kernel's ephemeral range, each held by a lock file (`flock`) until this process
//! exits, so concurrent test processes (nextest runs one per test) never share one.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports handed out, below Linux's default ephemeral range (32768-60999).
const RANGE: std::ops::Range<u16> = 20_000..32_000;

/// The lock files of the ports this process holds (kept open until it exits).
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// `n` distinct ports on 127.0.0.1, free now and reserved against other test processes.
pub fn reserve(n: usize) -> Vec<u16> {
    let dir = std::env::temp_dir().join("whereabouts-test-ports");
    std::fs::create_dir_all(&dir).expect("create the port lock directory");
    let span = RANGE.end - RANGE.start;
    let start = (RandomState::new().hash_one(std::process::id()) % u64::from(span)) as u16;
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    let mut ports = Vec::with_capacity(n);
    for i in 0..span {
        if ports.len() == n {
            break;
        }
        let port = RANGE.start + (start + i) % span;
        let Ok(file) =
            OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(format!("{port}.lock")))
        else {
            continue;
        };
        if file.try_lock().is_err() || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        held.push(file);
        ports.push(port);
    }
    assert_eq!(ports.len(), n, "no {n} free ports left in {RANGE:?}");
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_held() {
        let a = reserve(3);
        let b = reserve(3);
        let all: std::collections::BTreeSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 6, "{a:?} {b:?}");
        for port in all {
            assert!(RANGE.contains(&port));
            let lock = std::env::temp_dir().join("whereabouts-test-ports").join(format!("{port}.lock"));
            let other = File::open(lock).unwrap();
            assert!(other.try_lock_shared().is_err(), "port {port} is locked by this process");
            assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} is still free for the node");
        }
    }
}
