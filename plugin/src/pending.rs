//! DELs that could not reach the cluster, kept on the node until a later invocation delivers them.
//!
//! whereabouts' DEL succeeds whatever its back end says, and runtimes rely on it: podman never
//! retries a failed DEL, containerd keeps a sandbox (and its network namespace) until DEL
//! succeeds. So by default a DEL that cannot reach the cluster succeeds too, and is written here
//! (`<state_dir>/pending-releases/`, one small JSON file per attachment); the next invocation on
//! this node that reaches the cluster delivers it, marked as deferred so the node counts it
//! (`whereabouts_deferred_releases`). Until then the address stays held. `strict_del: true`
//! makes such a DEL fail with code 11 instead, and nothing is written.
//!
//! A later ADD of the same attachment (podman restarts a container under the same id) takes its
//! entry back first, under the directory's lock, so a delivery can never free an address that was
//! handed out again. Bounded: at most [`MAX_ENTRIES`] files; entries older than [`MAX_AGE`] are
//! dropped (the reconciler or GC frees what they held).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The state directory when neither `ipam.state_dir` nor the environment gives one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/whereabouts-rs";
/// Most DELs kept at once.
pub const MAX_ENTRIES: usize = 4096;
/// Age after which an undelivered DEL is dropped.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
const SUBDIR: &str = "pending-releases";
const LOCK: &str = ".lock";

/// One DEL waiting to be delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRelease {
    /// whereabouts' `network_name`.
    pub network_name: String,
    /// The CNI network `name` (for logs).
    pub cni_network: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// The endpoints the DEL was configured with (empty: any cluster this node reaches).
    pub endpoints: Vec<String>,
    /// The request id of the DEL: a delivery of a DEL that did reach the cluster after all is
    /// answered from the cluster's memory of it.
    pub request_id: String,
    /// When the DEL ran (ms since the Unix epoch).
    pub since_ms: u64,
}

impl PendingRelease {
    /// True when this entry may be delivered through `endpoints`.
    pub fn deliverable_through(&self, endpoints: &[String]) -> bool {
        self.endpoints.is_empty() || self.endpoints.iter().any(|e| endpoints.contains(e))
    }

    fn is_for(&self, network_name: &str, container_id: &str, ifname: &str) -> bool {
        self.network_name == network_name && self.container_id == container_id && self.ifname == ifname
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The directory of pending DELs under a state directory.
#[derive(Clone, Debug)]
pub struct PendingStore {
    dir: PathBuf,
}

/// The store's lock, held while entries are taken or delivered; released on drop.
pub struct StoreLock(File);

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// FNV-1a: a file name that does not depend on the Rust version or the process.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl PendingStore {
    /// The store under `state_dir`.
    pub fn new(state_dir: &Path) -> PendingStore {
        PendingStore { dir: state_dir.join(SUBDIR) }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, network_name: &str, container_id: &str, ifname: &str) -> PathBuf {
        let safe: String = container_id.chars().take(64).filter(|c| c.is_ascii_alphanumeric()).collect();
        self.dir.join(format!("{:016x}-{safe}.json", fnv(&[network_name, container_id, ifname])))
    }

    /// Takes the lock, waiting at most `wait` (every holder is a plugin invocation bounded by its
    /// own budget). `Ok(None)`: no store exists, nothing to lock.
    pub fn lock(&self, wait: Duration) -> io::Result<Option<StoreLock>> {
        if !self.dir.is_dir() {
            return Ok(None);
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(self.dir.join(LOCK))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(StoreLock(file))),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the pending-release store stayed locked"))
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    /// Records `entry` (replacing an older one for the same attachment). Fails when the store is
    /// full or cannot be written.
    pub fn record(&self, entry: &PendingRelease) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path_of(&entry.network_name, &entry.container_id, &entry.ifname);
        if !path.exists() && self.files()?.len() >= MAX_ENTRIES {
            return Err(io::Error::other(format!("{} already holds {MAX_ENTRIES} pending DELs", self.dir.display())));
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        fs::write(&tmp, serde_json::to_vec(entry).expect("serializable"))?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Removes the entry of this attachment, if any (an ADD that hands the attachment its address
    /// again). The caller holds the lock. Returns whether one was removed.
    pub fn cancel(&self, _lock: &StoreLock, network_name: &str, container_id: &str, ifname: &str) -> io::Result<bool> {
        let path = self.path_of(network_name, container_id, ifname);
        match read(&path) {
            Some(entry) if entry.is_for(network_name, container_id, ifname) => {
                fs::remove_file(&path)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// True when an entry for this attachment may exist (checked without the lock).
    pub fn may_hold(&self, network_name: &str, container_id: &str, ifname: &str) -> bool {
        self.path_of(network_name, container_id, ifname).exists()
    }

    /// Up to `limit` entries, oldest first; unreadable files and entries older than [`MAX_AGE`]
    /// are removed (and returned as `dropped` for the log). The caller holds the lock.
    pub fn entries(&self, _lock: &StoreLock, limit: usize) -> io::Result<Entries> {
        let mut found = Vec::new();
        let mut dropped = Vec::new();
        let oldest = now_ms().saturating_sub(MAX_AGE.as_millis() as u64);
        for path in self.files()? {
            match read(&path) {
                Some(entry) if entry.since_ms >= oldest => found.push((path, entry)),
                other => {
                    let _ = fs::remove_file(&path);
                    dropped.push(
                        other
                            .map_or_else(|| path.display().to_string(), |e| format!("{}/{}", e.container_id, e.ifname)),
                    );
                }
            }
        }
        found.sort_by_key(|(_, e)| e.since_ms);
        found.truncate(limit);
        Ok(Entries { found, dropped })
    }

    /// Removes a delivered entry. The caller holds the lock.
    pub fn remove(&self, _lock: &StoreLock, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn files(&self) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        match fs::read_dir(&self.dir) {
            Ok(dir) => {
                for entry in dir {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e == "json") {
                        out.push(path);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }
}

/// What [`PendingStore::entries`] found.
pub struct Entries {
    /// Deliverable entries with their files, oldest first.
    pub found: Vec<(PathBuf, PendingRelease)>,
    /// Entries removed unread or too old.
    pub dropped: Vec<String>,
}

fn read(path: &Path) -> Option<PendingRelease> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cid: &str, since_ms: u64) -> PendingRelease {
        PendingRelease {
            network_name: "net".into(),
            cni_network: "cni".into(),
            container_id: cid.into(),
            ifname: "eth0".into(),
            endpoints: vec!["127.0.0.1:7000".into()],
            request_id: format!("req-{cid}"),
            since_ms,
        }
    }

    #[test]
    fn entries_are_recorded_listed_oldest_first_cancelled_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = PendingStore::new(dir.path());
        assert!(store.lock(Duration::ZERO).unwrap().is_none(), "no store yet, nothing to lock");
        let now = now_ms();
        store.record(&entry("c2", now)).unwrap();
        store.record(&entry("c1", now - 5)).unwrap();
        store.record(&entry("c3", now - 1)).unwrap();
        store.record(&entry("c3", now - 1)).unwrap();
        let lock = store.lock(Duration::ZERO).unwrap().unwrap();
        let listed = store.entries(&lock, 10).unwrap();
        let ids: Vec<&str> = listed.found.iter().map(|(_, e)| e.container_id.as_str()).collect();
        assert_eq!(ids, ["c1", "c3", "c2"]);
        assert!(store.may_hold("net", "c3", "eth0") && !store.may_hold("net", "c9", "eth0"));
        assert!(store.cancel(&lock, "net", "c3", "eth0").unwrap());
        assert!(!store.cancel(&lock, "net", "c3", "eth0").unwrap());
        assert!(!store.cancel(&lock, "other-net", "c1", "eth0").unwrap(), "another network's DEL stays");
        store.remove(&lock, &listed.found[0].0).unwrap();
        let ids: Vec<String> =
            store.entries(&lock, 10).unwrap().found.into_iter().map(|(_, e)| e.container_id).collect();
        assert_eq!(ids, ["c2"]);
    }

    #[test]
    fn old_and_unreadable_entries_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = PendingStore::new(dir.path());
        store.record(&entry("old", 1)).unwrap();
        store.record(&entry("new", now_ms())).unwrap();
        fs::write(store.dir().join("garbage.json"), b"{").unwrap();
        let lock = store.lock(Duration::ZERO).unwrap().unwrap();
        let listed = store.entries(&lock, 10).unwrap();
        assert_eq!(listed.found.len(), 1);
        assert_eq!(listed.dropped.len(), 2, "{:?}", listed.dropped);
    }

    #[test]
    fn the_lock_is_exclusive_and_waits_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = PendingStore::new(dir.path());
        store.record(&entry("c", now_ms())).unwrap();
        let held = store.lock(Duration::ZERO).unwrap().unwrap();
        let other = PendingStore::new(dir.path());
        let e = other.lock(Duration::from_millis(50)).err().expect("locked");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(held);
        assert!(other.lock(Duration::ZERO).unwrap().is_some());
    }

    #[test]
    fn deliverable_through_matching_or_unknown_endpoints() {
        let e = entry("c", 0);
        assert!(e.deliverable_through(&["127.0.0.1:7000".into(), "b:1".into()]));
        assert!(!e.deliverable_through(&["b:1".into()]));
        assert!(PendingRelease { endpoints: vec![], ..e }.deliverable_through(&["b:1".into()]));
    }
}
