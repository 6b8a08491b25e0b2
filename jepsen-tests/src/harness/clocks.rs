//! The nodes' wall clocks, under libfaketime (Debian `libfaketime`). Every node of a run with the
//! `clock` nemesis starts with the library preloaded and its own timestamp file
//! (`results/<run>/clocks/node-<id>.rc`, a relative offset such as `+0` or `-7200`), which
//! libfaketime re-reads at most a second after it changed: writing the file makes a running
//! node's wall clock jump, and a node restarted while its file holds an offset starts with it.
//!
//! Only the wall clock is faked (`FAKETIME_DONT_FAKE_MONOTONIC=1`): tokio's timers, openraft's
//! election and heartbeat timeouts and every `Instant` keep the real monotonic clock, as on a
//! machine whose NTP daemon steps the time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};

/// Debian's multi-threaded libfaketime (its time() intercept is synchronized).
pub const DEFAULT_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The fake wall clock of every node.
#[derive(Debug)]
pub struct Clocks {
    lib: PathBuf,
    dir: PathBuf,
    offsets: BTreeMap<u64, i64>,
    started_ms: u64,
}

/// The timestamp file's content for an offset of `secs` seconds.
pub fn spec(secs: i64) -> String {
    format!("{secs:+}\n")
}

impl Clocks {
    /// Checks the library; the timestamp files go to `dir`.
    pub fn new(lib: &Path, dir: &Path) -> anyhow::Result<Clocks> {
        if !lib.is_file() {
            bail!("no libfaketime at {} (apt-get install libfaketime, or pass --faketime-lib)", lib.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Ok(Clocks { lib: lib.to_path_buf(), dir: dir.to_path_buf(), offsets: BTreeMap::new(), started_ms })
    }

    /// The real wall-clock time (ms since the epoch) when the clocks were set up, before any
    /// node started: no correct stamp of the run is older.
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    fn file(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.rc"))
    }

    /// The environment node `id` starts with; creates its timestamp file (offset 0) if needed.
    pub fn env(&mut self, id: u64) -> anyhow::Result<Vec<(String, String)>> {
        if !self.offsets.contains_key(&id) {
            self.set(id, 0)?;
        }
        Ok(vec![
            ("LD_PRELOAD".into(), self.lib.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.file(id).display().to_string()),
            ("FAKETIME_CACHE_DURATION".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ])
    }

    /// Sets node `id`'s wall clock `secs` seconds off the real time (written atomically; a
    /// running node sees it within a second).
    pub fn set(&mut self, id: u64, secs: i64) -> anyhow::Result<()> {
        let path = self.file(id);
        let tmp = path.with_extension("rc.tmp");
        std::fs::write(&tmp, spec(secs)).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        self.offsets.insert(id, secs);
        Ok(())
    }

    /// Node `id`'s current offset in seconds.
    pub fn offset(&self, id: u64) -> i64 {
        self.offsets.get(&id).copied().unwrap_or(0)
    }

    /// Puts every clock back on the real time; returns the nodes whose clock was off.
    pub fn reset_all(&mut self) -> anyhow::Result<Vec<u64>> {
        let off: Vec<u64> = self.offsets.iter().filter(|(_, s)| **s != 0).map(|(id, _)| *id).collect();
        for id in &off {
            self.set(*id, 0)?;
        }
        Ok(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_signed_seconds() {
        assert_eq!(spec(0), "+0\n");
        assert_eq!(spec(7200), "+7200\n");
        assert_eq!(spec(-90), "-90\n");
    }

    #[test]
    fn files_follow_the_offsets() {
        let dir = std::env::temp_dir().join(format!("wrj-clocks-test-{}", std::process::id()));
        let lib = std::env::current_exe().unwrap(); // any existing file stands in for the library
        let mut clocks = Clocks::new(&lib, &dir).unwrap();
        let env = clocks.env(3).unwrap();
        assert!(env.contains(&("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into())));
        assert_eq!(std::fs::read_to_string(dir.join("node-3.rc")).unwrap(), "+0\n");
        clocks.set(3, -600).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("node-3.rc")).unwrap(), "-600\n");
        assert_eq!(clocks.reset_all().unwrap(), vec![3]);
        assert_eq!(clocks.offset(3), 0);
        assert!(clocks.reset_all().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Clocks::new(&dir.join("missing.so"), &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
