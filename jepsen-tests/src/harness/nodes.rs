//! The `whereabouts-node` processes: started inside their namespace (`ip netns exec`, which execs
//! the node itself, so the child's pid is the node's), killed with SIGKILL, paused with
//! SIGSTOP/SIGCONT. Dropping [`Nodes`] kills every process it started.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

use super::netns::{node_addr, ns_name, run_cmd};

/// How every node is started.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The `whereabouts-node` binary.
    pub bin: PathBuf,
    /// Where data directories and logs go (`results/<run>/nodes`).
    pub dir: PathBuf,
    /// `--snapshot-threshold` (low, so lagging nodes catch up by snapshot).
    pub snapshot_threshold: u64,
    /// `--heartbeat-ms`.
    pub heartbeat_ms: u64,
    /// `--election-timeout-ms`.
    pub election_timeout_ms: u64,
    /// `--request-timeout-ms`.
    pub request_timeout_ms: u64,
}

/// The running node processes of one run.
#[derive(Debug)]
pub struct Nodes {
    config: NodeConfig,
    /// `--initial-cluster` of the founding members.
    initial: String,
    procs: BTreeMap<u64, Child>,
    paused: BTreeSet<u64>,
    starts: u64,
}

impl Nodes {
    /// No process yet; `founders` are the ids of `--initial-cluster`.
    pub fn new(config: NodeConfig, founders: &[u64]) -> anyhow::Result<Nodes> {
        std::fs::create_dir_all(&config.dir).with_context(|| format!("cannot create {}", config.dir.display()))?;
        let initial: Vec<String> = founders.iter().map(|id| format!("{id}={}", node_addr(*id))).collect();
        Ok(Nodes { config, initial: initial.join(","), procs: BTreeMap::new(), paused: BTreeSet::new(), starts: 0 })
    }

    /// Node `id`'s log file.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.config.dir.join(format!("node-{id}.log"))
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.config.dir.join(format!("data-{id}"))
    }

    /// Starts node `id` (a founder unless `joining`), with `FAILPOINTS` set when given.
    pub fn start(&mut self, id: u64, joining: bool, failpoints: Option<&str>) -> anyhow::Result<()> {
        self.reap(id);
        let log_path = self.log_path(id);
        let log = OpenOptions::new().create(true).append(true).open(&log_path)?;
        let addr = node_addr(id);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns_name(id)]).arg(&self.config.bin);
        cmd.args(["--id", &id.to_string(), "--listen", &addr, "--advertise-addr", &addr]);
        cmd.arg("--data-dir").arg(self.data_dir(id)).arg("--insecure");
        if joining {
            cmd.args(["--initial-cluster-state", "existing"]);
        } else {
            cmd.args(["--initial-cluster", &self.initial, "--initial-cluster-state", "new"]);
        }
        let c = &self.config;
        cmd.args(["--snapshot-threshold", &c.snapshot_threshold.to_string()]);
        cmd.args(["--heartbeat-ms", &c.heartbeat_ms.to_string()]);
        cmd.args(["--election-timeout-ms", &c.election_timeout_ms.to_string()]);
        cmd.args(["--request-timeout-ms", &c.request_timeout_ms.to_string()]);
        cmd.env_remove("FAILPOINTS").env("NO_COLOR", "1");
        if let Some(fp) = failpoints {
            cmd.env("FAILPOINTS", fp);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.config.bin.display()))?;
        self.procs.insert(id, child);
        self.paused.remove(&id);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL (works on a paused process too), then reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.procs.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused.remove(&id);
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        let pid = self.procs.get(&id).map(Child::id).context("node not running")?;
        run_cmd("kill", &["-STOP", &pid.to_string()])?;
        self.paused.insert(id);
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        if let Some(pid) = self.procs.get(&id).map(Child::id) {
            run_cmd("kill", &["-CONT", &pid.to_string()])?;
        }
        self.paused.remove(&id);
        Ok(())
    }

    /// Resumes every paused node.
    pub fn resume_all(&mut self) -> anyhow::Result<()> {
        for id in std::mem::take(&mut self.paused) {
            self.resume(id)?;
        }
        Ok(())
    }

    /// Whether node `id`'s process exited by itself (e.g. a failpoint aborted it); reaps it.
    pub fn exited(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let status = self.procs.get_mut(&id).and_then(|c| c.try_wait().ok().flatten())?;
        self.procs.remove(&id);
        Some(status)
    }

    fn reap(&mut self, id: u64) {
        if self.procs.contains_key(&id) {
            self.kill(id);
        }
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
        count_in(&self.log_path(id), needle)
    }

    /// Deletes node `id`'s data directory (after it left the cluster).
    pub fn forget(&mut self, id: u64) {
        self.kill(id);
        let _ = std::fs::remove_dir_all(self.data_dir(id));
    }
}

fn count_in(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().filter(|l| l.contains(needle)).count()).unwrap_or(0)
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}
