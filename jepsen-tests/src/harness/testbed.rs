//! The cluster under test as the harness sees it: the lab network, the node processes, and the
//! membership the harness believes in (voters, learners, nodes down). Fields drop in order:
//! processes first, then namespaces and the bridge.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::client::RunState;
use super::netns::Lab;
use super::nodes::Nodes;

/// Nodes, network and membership of one run.
pub struct Testbed {
    /// The node processes (dropped first: killed before their namespaces go).
    pub nodes: Nodes,
    /// Namespaces, bridge, nftables rules.
    pub lab: Lab,
    /// Voting members.
    pub voters: BTreeSet<u64>,
    /// Non-voting members.
    pub learners: BTreeSet<u64>,
    /// Nodes that joined after the start (restart with `--initial-cluster-state existing`).
    pub joined: BTreeSet<u64>,
    /// Members killed and not restarted yet.
    pub down: BTreeSet<u64>,
    /// Next node id for a joining node.
    pub next_id: u64,
    /// Whether the node binary honours FAILPOINTS (`None` until a flush-crash found out).
    pub failpoints: Option<bool>,
}

impl Testbed {
    /// Starts `n` founders (ids `0..n`) in their namespaces.
    pub fn start(mut lab: Lab, mut nodes: Nodes, n: u64) -> anyhow::Result<Testbed> {
        for id in 0..n {
            lab.add_node(id)?;
        }
        for id in 0..n {
            nodes.start(id, false, None)?;
        }
        Ok(Testbed {
            nodes,
            lab,
            voters: (0..n).collect(),
            learners: BTreeSet::new(),
            joined: BTreeSet::new(),
            down: BTreeSet::new(),
            next_id: n,
            failpoints: None,
        })
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

    /// Restarts member `id` (a founder or a joined node).
    pub fn restart(&mut self, id: u64, failpoints: Option<&str>) -> anyhow::Result<()> {
        let joining = self.joined.contains(&id);
        self.nodes.start(id, joining, failpoints)?;
        self.down.remove(&id);
        Ok(())
    }

    /// Kills member `id` (SIGKILL) and remembers it is down.
    pub fn kill(&mut self, id: u64) {
        self.nodes.kill(id);
        self.down.insert(id);
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

    /// Heals everything: resumes paused nodes, removes every nftables rule, restarts dead members.
    pub fn heal_everything(&mut self) -> anyhow::Result<Vec<u64>> {
        self.nodes.resume_all()?;
        self.lab.heal_all()?;
        let mut restarted = Vec::new();
        for id in self.members() {
            if !self.nodes.is_running(id) {
                self.restart(id, None)?;
                restarted.push(id);
            }
        }
        Ok(restarted)
    }
}
