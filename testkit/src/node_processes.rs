//! The launcher of real `whereabouts-node` processes, for every test that runs nodes as
//! processes: the cluster's process tests and the plugin's end-to-end tests (through
//! [`crate::loopback_cluster`]) and the chaos harness (a namespace per node).
//!
//! What differs between them is a parameter: the binary, where each node listens and in which
//! namespace it runs ([`Placement`]; a placement may name another binary for its node, as a
//! mixed-version test does), the flags every node gets, where data and logs go. A node
//! is a founder (`--initial-cluster` of the founders, state `new`) or joins an existing cluster
//! ([`Join`]); `FAILPOINTS` is set only when asked, a placement's own environment (a fake clock)
//! always. Node `id`'s data directory is `<data root>/data-<id>`, its log (stdout and stderr,
//! appended across restarts) `<dir>/node-<id>.log`. Dropping [`NodeProcesses`] kills every
//! process it started.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};

use crate::netns::{command_in, run_command, CommandError};

/// Where one node listens and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `--listen` and `--advertise-addr` (`host:port`).
    pub addr: String,
    /// The network namespace it runs in (`None`: this process's).
    pub netns: Option<String>,
    /// Flags for this node only (after the shared ones), e.g. its TLS certificate.
    pub args: Vec<String>,
    /// Environment variables for this node only (e.g. a preloaded fake clock).
    pub env: Vec<(String, String)>,
    /// The binary this node runs (`None`: the launcher's), e.g. another release's
    /// `whereabouts-node` while a mixed-version test rolls the members one by one.
    pub bin: Option<PathBuf>,
}

impl Placement {
    /// A node at `addr` in this process's namespace, without flags of its own.
    pub fn at(addr: impl Into<String>) -> Placement {
        Placement { addr: addr.into(), netns: None, args: Vec::new(), env: Vec::new(), bin: None }
    }

    /// The same, inside namespace `netns`.
    pub fn in_netns(mut self, netns: Option<&str>) -> Placement {
        self.netns = netns.map(str::to_string);
        self
    }
}

/// How a starting node finds its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// One of the founders: `--initial-cluster <founders> --initial-cluster-state new`.
    Founder,
    /// A node added later: `--initial-cluster-state existing` (it waits to be added).
    Existing,
}

/// Why a node could not be started or signalled.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No [`Placement`] for this id.
    #[error("node {0} has no placement")]
    NotPlaced(u64),
    /// The data or log directory, or the log file, could not be created.
    #[error("cannot create {path}: {source}")]
    Files {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process did not start.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The node binary.
        bin: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A signal could not be sent (`kill -STOP`/`-CONT`).
    #[error(transparent)]
    Signal(#[from] CommandError),
    /// Pausing a node that does not run.
    #[error("node {0} is not running")]
    NotRunning(u64),
}

/// The node processes of one test or run.
#[derive(Debug)]
pub struct NodeProcesses {
    bin: PathBuf,
    dir: PathBuf,
    data_root: PathBuf,
    args: Vec<String>,
    /// `--initial-cluster` of the founders.
    initial: String,
    places: BTreeMap<u64, Placement>,
    procs: BTreeMap<u64, Child>,
    paused: BTreeSet<u64>,
    starts: u64,
}

impl NodeProcesses {
    /// No process yet. `bin` is the node binary (a test passes
    /// `env!("CARGO_BIN_EXE_whereabouts-node")` or a path), `dir` holds the logs and, unless
    /// [`NodeProcesses::with_data_root`] says otherwise, the data directories; `founders` are
    /// the founding members and where they run.
    pub fn new(
        bin: impl Into<PathBuf>,
        dir: impl Into<PathBuf>,
        founders: BTreeMap<u64, Placement>,
    ) -> Result<NodeProcesses, LaunchError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| LaunchError::Files { path: dir.clone(), source })?;
        let initial: Vec<String> = founders.iter().map(|(id, p)| format!("{id}={}", p.addr)).collect();
        Ok(NodeProcesses {
            bin: bin.into(),
            data_root: dir.clone(),
            dir,
            args: Vec::new(),
            initial: initial.join(","),
            places: founders,
            procs: BTreeMap::new(),
            paused: BTreeSet::new(),
            starts: 0,
        })
    }

    /// Flags every node gets (timeouts, `--insecure`, …), after the ones the launcher sets.
    pub fn with_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> NodeProcesses {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Puts the data directories under `root` instead of the log directory (e.g. a small
    /// filesystem that fills up, while the logs stay writable).
    pub fn with_data_root(mut self, root: impl Into<PathBuf>) -> NodeProcesses {
        self.data_root = root.into();
        self
    }

    /// Places node `id` (one that joins later, or a founder moved); replaces an earlier placement.
    pub fn place(&mut self, id: u64, placement: Placement) {
        self.places.insert(id, placement);
    }

    /// Where node `id` runs.
    pub fn placement(&self, id: u64) -> Option<&Placement> {
        self.places.get(&id)
    }

    /// `--initial-cluster` of the founders (`ID=ADDR,...`).
    pub fn initial_cluster(&self) -> &str {
        &self.initial
    }

    /// The node binary (of every node whose placement names none).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The binary node `id` runs at its next start.
    pub fn bin_of(&self, id: u64) -> &Path {
        self.places.get(&id).and_then(|p| p.bin.as_deref()).unwrap_or(&self.bin)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Node `id`'s log file.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.data_root.join(format!("data-{id}"))
    }

    /// Starts node `id` (killing a process of it that still runs), with `FAILPOINTS` set to
    /// `failpoints` when given and removed otherwise.
    pub fn start(&mut self, id: u64, join: Join, failpoints: Option<&str>) -> Result<(), LaunchError> {
        let place = self.places.get(&id).cloned().ok_or(LaunchError::NotPlaced(id))?;
        let _ = self.kill(id);
        let log_path = self.log_path(id);
        let files = |source| LaunchError::Files { path: log_path.clone(), source };
        let log = OpenOptions::new().create(true).append(true).open(&log_path).map_err(files)?;
        let bin = place.bin.clone().unwrap_or_else(|| self.bin.clone());
        let mut cmd = command_in(place.netns.as_deref(), &bin);
        cmd.args(["--id", &id.to_string(), "--listen", &place.addr, "--advertise-addr", &place.addr]);
        cmd.arg("--data-dir").arg(self.data_dir(id));
        match join {
            Join::Founder => cmd.args(["--initial-cluster", &self.initial, "--initial-cluster-state", "new"]),
            Join::Existing => cmd.args(["--initial-cluster-state", "existing"]),
        };
        cmd.args(&self.args).args(&place.args);
        cmd.env_remove("FAILPOINTS").env("NO_COLOR", "1").envs(place.env.iter().map(|(k, v)| (k, v)));
        if let Some(fp) = failpoints {
            cmd.env("FAILPOINTS", fp);
        }
        let stdout = log.try_clone().map_err(files)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(|source| LaunchError::Spawn { bin, source })?;
        self.procs.insert(id, child);
        self.paused.remove(&id);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL (a paused process too), then reaps it; returns how it ended (`None` when no
    /// process of it was known).
    pub fn kill(&mut self, id: u64) -> Option<ExitStatus> {
        self.paused.remove(&id);
        let mut child = self.procs.remove(&id)?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGTERM (a clean shutdown; a paused process is resumed to receive it); the process is
    /// reaped by [`NodeProcesses::exited`] once it ended. Nothing when it does not run.
    pub fn terminate(&mut self, id: u64) -> Result<(), LaunchError> {
        let Some(pid) = self.procs.get(&id).map(Child::id) else { return Ok(()) };
        run_command("kill", &["-TERM", &pid.to_string()])?;
        if self.paused.remove(&id) {
            run_command("kill", &["-CONT", &pid.to_string()])?;
        }
        Ok(())
    }

    /// Kills every node.
    pub fn kill_all(&mut self) {
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: u64) -> Result<(), LaunchError> {
        let pid = self.procs.get(&id).map(Child::id).ok_or(LaunchError::NotRunning(id))?;
        run_command("kill", &["-STOP", &pid.to_string()])?;
        self.paused.insert(id);
        Ok(())
    }

    /// SIGCONT (nothing when it does not run).
    pub fn resume(&mut self, id: u64) -> Result<(), LaunchError> {
        if let Some(pid) = self.procs.get(&id).map(Child::id) {
            run_command("kill", &["-CONT", &pid.to_string()])?;
        }
        self.paused.remove(&id);
        Ok(())
    }

    /// Resumes every paused node.
    pub fn resume_all(&mut self) -> Result<(), LaunchError> {
        for id in std::mem::take(&mut self.paused) {
            self.resume(id)?;
        }
        Ok(())
    }

    /// Whether node `id`'s process exited by itself (a failpoint, a fatal error); reaps it.
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        let status = self.procs.get_mut(&id).and_then(|c| c.try_wait().ok().flatten())?;
        self.procs.remove(&id);
        Some(status)
    }

    /// Ids of the nodes started and not killed (their process may have exited since).
    pub fn started(&self) -> Vec<u64> {
        self.procs.keys().copied().collect()
    }

    /// Ids of the processes alive and not paused.
    pub fn serving(&mut self) -> Vec<u64> {
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        ids.into_iter().filter(|id| self.exited(*id).is_none() && !self.paused.contains(id)).collect()
    }

    /// Whether node `id` has a live process (paused or not).
    pub fn is_running(&mut self, id: u64) -> bool {
        self.procs.contains_key(&id) && self.exited(id).is_none()
    }

    /// How many processes were started in total.
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// Lines of node `id`'s log containing `needle`.
    pub fn log_count(&self, id: u64, needle: &str) -> usize {
        let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        text.lines().filter(|l| l.contains(needle)).count()
    }

    /// The last `lines` lines of every placed node's log, headed by its id and address (for
    /// failure messages).
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (id, place) in &self.places {
            let text = std::fs::read_to_string(self.log_path(*id)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- node {id} ({}) ---\n", place.addr));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Kills node `id` and deletes its data directory (after it left the cluster).
    pub fn forget(&mut self, id: u64) {
        self.kill(id);
        let _ = std::fs::remove_dir_all(self.data_dir(id));
    }
}

impl Drop for NodeProcesses {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placement_that_names_a_binary_starts_that_one() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("no-such-node");
        let own = dir.path().join("no-such-old-node");
        let founders = BTreeMap::from([(0, Placement::at("127.0.0.1:1")), (1, Placement::at("127.0.0.1:2"))]);
        let mut nodes = NodeProcesses::new(&shared, dir.path(), founders).unwrap();
        let mut place = Placement::at("127.0.0.1:2");
        place.bin = Some(own.clone());
        nodes.place(1, place);
        assert_eq!(nodes.bin_of(0), shared.as_path());
        assert_eq!(nodes.bin_of(1), own.as_path());
        let spawned = |r: Result<(), LaunchError>| match r {
            Err(LaunchError::Spawn { bin, .. }) => bin,
            other => panic!("expected a spawn error, got {other:?}"),
        };
        assert_eq!(spawned(nodes.start(0, Join::Founder, None)), shared);
        assert_eq!(spawned(nodes.start(1, Join::Founder, None)), own);
        assert_eq!(nodes.starts(), 0);
    }
}
