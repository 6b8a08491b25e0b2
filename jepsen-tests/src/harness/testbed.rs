//! The cluster under test as the harness sees it: the lab network, the node processes, their
//! disks and clocks when a nemesis needs them, the membership the harness believes in (voters,
//! learners, nodes down) and, in a mixed-version run, which build each node runs. Fields drop in
//! order: processes first, then the disks' mounts, then namespaces and the bridge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use testkit::node_processes::{Join, NodeProcesses, Placement};

use super::clocks::Clocks;
use super::disks::Disks;
use super::lab::{node_addr, placement, Lab};
use super::run_state::RunState;

/// The two node binaries of a mixed-version run (the `roll` nemesis): every node starts on
/// `old`, the previous release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builds {
    /// The previous release's `whereabouts-node` (`--old-node-bin`).
    pub old: PathBuf,
    /// This tree's (`--node-bin`).
    pub new: PathBuf,
}

/// Which of the two [`Builds`] a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Build {
    /// The previous release.
    Old,
    /// This tree.
    New,
}

impl Build {
    /// The name recorded in the history.
    pub fn name(self) -> &'static str {
        match self {
            Build::Old => "old",
            Build::New => "new",
        }
    }
}

/// How a graceful stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The process exited after SIGTERM, with this status.
    Exited(ExitStatus),
    /// It was still running when the grace period ended: SIGKILL.
    Killed,
    /// No process of it was running.
    NotRunning,
}

/// Nodes, network and membership of one run.
pub struct Testbed {
    /// The node processes (dropped first: killed before their disks and namespaces go).
    pub nodes: NodeProcesses,
    /// The nodes' data directories on the power-loss filesystem, when the run uses it.
    pub disks: Option<Disks>,
    /// Namespaces, bridge, nftables rules.
    pub lab: Lab,
    /// The nodes' fake wall clocks, when the run uses them.
    pub clocks: Option<Clocks>,
    /// Voting members.
    pub voters: BTreeSet<u64>,
    /// Non-voting members.
    pub learners: BTreeSet<u64>,
    /// Nodes that joined after the start (restart with `--initial-cluster-state existing`).
    pub joined: BTreeSet<u64>,
    /// Members killed and not restarted yet.
    pub down: BTreeSet<u64>,
    /// Members the heal must not restart: a wiped node that refused to start, until repaired.
    pub parked: BTreeSet<u64>,
    /// Each member's Raft ids (its incarnations) in the membership last read from the leader.
    pub raft_ids: BTreeMap<u64, BTreeSet<u64>>,
    /// Next node id for a joining node.
    pub next_id: u64,
    /// Whether the node binary honours FAILPOINTS (`None` until a flush-crash found out).
    pub failpoints: Option<bool>,
    /// The two binaries of a mixed-version run (`None`: every node runs `--node-bin`).
    pub builds: Option<Builds>,
    /// The build each node runs in a mixed-version run, kept in its placement so that every
    /// restart (a heal, another nemesis) starts that one; absent: the old one, which the launcher
    /// starts by default there.
    pub running: BTreeMap<u64, Build>,
}

impl Testbed {
    /// Starts `n` founders (ids `0..n`) in their namespaces, on their disks when `disks`, with
    /// their fake clocks when `clocks`. With `builds`, `nodes` must launch `builds.old`.
    pub fn start(
        lab: Lab,
        nodes: NodeProcesses,
        n: u64,
        disks: Option<Disks>,
        clocks: Option<Clocks>,
        builds: Option<Builds>,
    ) -> anyhow::Result<Testbed> {
        let mut tb = Testbed {
            nodes,
            disks,
            lab,
            clocks,
            voters: (0..n).collect(),
            learners: BTreeSet::new(),
            joined: BTreeSet::new(),
            down: BTreeSet::new(),
            parked: BTreeSet::new(),
            raft_ids: BTreeMap::new(),
            next_id: n,
            failpoints: None,
            builds,
            running: BTreeMap::new(),
        };
        for id in 0..n {
            tb.prepare(id)?;
        }
        for id in 0..n {
            tb.nodes.start(id, Join::Founder, None)?;
        }
        Ok(tb)
    }

    /// Everything node `id` needs before its first start: its namespace, its disk, its place
    /// (with its clock's environment).
    fn prepare(&mut self, id: u64) -> anyhow::Result<()> {
        self.lab.add_node(id)?;
        if let Some(disks) = &mut self.disks {
            disks.mount(id, &self.nodes.data_dir(id))?;
        }
        let mut place: Placement = placement(id);
        if let Some(clocks) = &mut self.clocks {
            place.env = clocks.env(id)?;
        }
        self.nodes.place(id, place);
        Ok(())
    }

    /// Voters and learners.
    pub fn members(&self) -> Vec<u64> {
        self.voters.union(&self.learners).copied().collect()
    }

    /// Members whose process runs and is not paused.
    pub fn serving(&mut self) -> Vec<u64> {
        let serving = self.nodes.serving();
        self.members().into_iter().filter(|id| serving.contains(id)).collect()
    }

    /// Starts node `id` for the first time as a joining node: its namespace, then the process
    /// (`--initial-cluster-state existing`; it serves once a member adds it).
    pub fn join(&mut self, id: u64) -> anyhow::Result<()> {
        self.prepare(id)?;
        self.joined.insert(id);
        self.ask_members(id);
        self.nodes.start(id, Join::Existing, None)?;
        Ok(())
    }

    /// Gives joining node `id` the current members as `--initial-cluster`: with an empty data
    /// directory it asks them whether it was a voter before (a lost volume) before it takes part,
    /// and with no one to ask it would wait forever.
    fn ask_members(&mut self, id: u64) {
        let Some(mut place) = self.nodes.placement(id).cloned() else { return };
        let peers: Vec<String> =
            self.members().into_iter().filter(|m| *m != id).map(|m| format!("{m}={}", node_addr(m))).collect();
        place.args = if peers.is_empty() { Vec::new() } else { vec!["--initial-cluster".into(), peers.join(",")] };
        self.nodes.place(id, place);
    }

    /// Forgets node `id` after it left the cluster (or never joined): kills it, ends its disk,
    /// deletes its data directory and its namespace.
    pub fn forget(&mut self, id: u64) {
        self.nodes.kill(id);
        if let Some(disks) = &mut self.disks {
            disks.remove(id);
        }
        self.nodes.forget(id);
        self.lab.remove_node(id);
        self.down.remove(&id);
        self.parked.remove(&id);
    }

    /// Deletes everything in node `id`'s data directory (a lost volume: the node gets an empty
    /// one at the same path), durably on the power-loss filesystem. The node must be down.
    /// Returns how many entries were removed.
    pub fn wipe(&mut self, id: u64) -> anyhow::Result<usize> {
        let dir = self.nodes.data_dir(id);
        let mut removed = 0;
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry?.path();
                    if path.is_dir() && !path.is_symlink() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                    removed += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(disks) = self.disks.as_ref().filter(|d| d.has(id)) {
            disks.sync(id)?;
        }
        Ok(removed)
    }

    /// Restarts member `id` (a founder or a joined node).
    pub fn restart(&mut self, id: u64, failpoints: Option<&str>) -> anyhow::Result<()> {
        let join = if self.joined.contains(&id) { Join::Existing } else { Join::Founder };
        if join == Join::Existing {
            self.ask_members(id);
        }
        self.nodes.start(id, join, failpoints)?;
        self.down.remove(&id);
        Ok(())
    }

    /// Kills member `id` (SIGKILL) and remembers it is down.
    pub fn kill(&mut self, id: u64) {
        self.nodes.kill(id);
        self.down.insert(id);
    }

    /// Stops member `id` as Kubernetes stops a pod: SIGTERM, then SIGKILL if it still runs after
    /// `grace`; remembers it is down.
    pub async fn stop(&mut self, id: u64, grace: Duration) -> anyhow::Result<Stopped> {
        self.down.insert(id);
        if !self.nodes.is_running(id) {
            self.nodes.kill(id);
            return Ok(Stopped::NotRunning);
        }
        self.nodes.terminate(id)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.nodes.exited(id) {
                return Ok(Stopped::Exited(status));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match self.nodes.kill(id) {
            Some(_) => Ok(Stopped::Killed),
            None => Ok(Stopped::NotRunning),
        }
    }

    /// The build node `id` runs (in a mixed-version run; the old one unless moved).
    pub fn build(&self, id: u64) -> Build {
        self.running.get(&id).copied().unwrap_or(Build::Old)
    }

    /// Makes node `id` start `build` from its next start on (whoever restarts it); returns
    /// that binary. Only in a mixed-version run.
    pub fn set_build(&mut self, id: u64, build: Build) -> anyhow::Result<PathBuf> {
        let builds = self.builds.as_ref().context("not a mixed-version run (no --old-node-bin)")?;
        let bin = match build {
            Build::Old => builds.old.clone(),
            Build::New => builds.new.clone(),
        };
        let mut place = self.nodes.placement(id).cloned().with_context(|| format!("node {id} has no placement"))?;
        place.bin = Some(bin.clone());
        self.nodes.place(id, place);
        self.running.insert(id, build);
        Ok(bin)
    }

    /// Why node `id` last failed, from the last 300 lines of its log: anyhow's `Error:` report
    /// with its causes (up to the backtrace), else the last `ERROR` line, else the last line; at
    /// most 500 characters (why a node exited or refused).
    pub fn last_error(&self, id: u64) -> String {
        failure_in(&std::fs::read_to_string(self.nodes.log_path(id)).unwrap_or_default())
    }

    /// The current leader among serving members, waiting up to `within`.
    pub async fn leader(&mut self, st: &RunState, within: Duration) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            let serving = self.serving();
            if let Some(l) = st.clients.leader(&serving).await {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Points clients at the current members.
    pub fn publish_targets(&self, st: &RunState) {
        st.set_targets(self.members());
    }

    /// Waits (bounded) until node `id` applied at least what the leader had applied when asked.
    pub async fn caught_up(&mut self, st: &RunState, id: u64, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let leader = self.leader(st, Duration::from_secs(3)).await?;
        let target = st.clients.local_status(leader).await?.applied_index;
        while started.elapsed() < within {
            if st.clients.local_status(id).await.is_some_and(|s| s.applied_index >= target) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// [`Testbed::last_error`] of a log's text.
fn failure_in(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(300)..];
    let found = match tail.iter().rposition(|l| l.starts_with("Error:")) {
        Some(at) => {
            let report = tail[at..].iter().take_while(|l| !l.starts_with("Stack backtrace:"));
            report.map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
        }
        None => tail.iter().rev().find(|l| l.contains("ERROR")).or(tail.last()).copied().unwrap_or("").to_string(),
    };
    found.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_is_anyhows_report_without_the_backtrace_else_the_last_error_line() {
        let log = "2026-12-02T06:22:49Z  INFO cluster::node: terminated, shutting down\n\
                   Error: cannot open data directory /d\n\nCaused by:\n    the Raft log at /d/sled is corrupt\n\n\
                   Stack backtrace:\n   0: main\n  35: _start\n";
        assert_eq!(
            failure_in(log),
            "Error: cannot open data directory /d Caused by: the Raft log at /d/sled is corrupt"
        );
        let log = "a ERROR first\nb ERROR second\nc INFO last\n";
        assert_eq!(failure_in(log), "b ERROR second");
        assert_eq!(failure_in("only INFO\n"), "only INFO");
        assert_eq!(failure_in(""), "");
    }
}
