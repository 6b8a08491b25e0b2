//! The leader this node's plugin last reached, remembered between invocations
//! (`<state_dir>/last-leader`, one line: an endpoint of `ipam.endpoints`).
//!
//! Any node serves any call, but a follower forwards it to the leader: two hops instead of one.
//! Every CNI call is a new process, so without a memory each one would start at the first
//! configured endpoint. A follower's forwarded success names the leader
//! (`x-whereabouts-leader`); the plugin writes it here and the next invocation tries it first.
//! Only an address that is one of the configured endpoints is ever used, so a stale or foreign
//! file can change the order of the endpoints and nothing else.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILE: &str = "last-leader";
/// Longest line read (an endpoint is `host:port`; DNS names are at most 253 bytes).
const MAX_BYTES: usize = 512;

/// The file under a state directory.
pub struct LastLeader {
    path: PathBuf,
}

impl LastLeader {
    /// The memory kept under `state_dir`.
    pub fn new(state_dir: &Path) -> LastLeader {
        LastLeader { path: state_dir.join(FILE) }
    }

    /// The remembered leader, if the file exists and holds one line of reasonable size.
    pub fn read(&self) -> Option<String> {
        let text = fs::read(&self.path).ok()?;
        if text.len() > MAX_BYTES {
            return None;
        }
        let line = String::from_utf8(text).ok()?;
        let line = line.trim();
        (!line.is_empty() && !line.contains(char::is_whitespace)).then(|| line.to_string())
    }

    /// Remembers `endpoint` (written to a temporary file, then renamed: concurrent invocations
    /// never read half a line). Failures are logged and otherwise ignored: this is a speed-up.
    pub fn write(&self, endpoint: &str) {
        if let Err(e) = self.try_write(endpoint) {
            tracing::debug!(path = %self.path.display(), error = %e, "could not remember the leader");
        }
    }

    fn try_write(&self, endpoint: &str) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension(format!("tmp.{}", std::process::id()));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(endpoint.as_bytes())?;
        f.write_all(b"\n")?;
        drop(f);
        fs::rename(&tmp, &self.path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }
}

/// `endpoints` with `leader` moved to the front when it is one of them (otherwise unchanged).
pub fn leader_first(mut endpoints: Vec<String>, leader: Option<&str>) -> Vec<String> {
    if let Some(i) = leader.and_then(|l| endpoints.iter().position(|e| e == l)) {
        let e = endpoints.remove(i);
        endpoints.insert(0, e);
    }
    endpoints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_remembered_leader_goes_first_only_when_configured() {
        let all = eps(&["a:1", "b:1", "c:1"]);
        assert_eq!(leader_first(all.clone(), Some("c:1")), eps(&["c:1", "a:1", "b:1"]));
        assert_eq!(leader_first(all.clone(), Some("a:1")), all);
        assert_eq!(leader_first(all.clone(), Some("elsewhere:1")), all, "never a foreign address");
        assert_eq!(leader_first(all.clone(), None), all);
    }

    #[test]
    fn written_then_read_back_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let memo = LastLeader::new(&dir.path().join("state"));
        assert_eq!(memo.read(), None, "no file yet");
        memo.write("10.0.0.2:7000");
        assert_eq!(memo.read().as_deref(), Some("10.0.0.2:7000"));
        memo.write("10.0.0.3:7000");
        assert_eq!(memo.read().as_deref(), Some("10.0.0.3:7000"));
        std::fs::write(dir.path().join("state").join(FILE), "two words\n").unwrap();
        assert_eq!(memo.read(), None);
        std::fs::write(dir.path().join("state").join(FILE), vec![b'x'; MAX_BYTES + 1]).unwrap();
        assert_eq!(memo.read(), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }
}
