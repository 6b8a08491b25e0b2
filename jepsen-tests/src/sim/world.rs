//! The simulated cluster: nodes (openraft + in-memory log + the IPAM state machine), their disks,
//! and the seeded fault schedule — crashes with downtime, partitions, message loss and delay
//! spikes, membership changes (add a learner, promote it, remove a voter).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, ServerState};
use raft_store::types::typ;
use serde::Serialize;
use testkit::mem_log::MemLog;
use testkit::mem_state_machine::{MemSm, SmDisk};

use super::oracle::Oracle;
use super::router::{NetFactory, Router};
use crate::rng::Rng;

/// What survives a crash: the log and the snapshot, plus the node's own timing.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The Raft log (durable as soon as appended).
    pub log: MemLog,
    /// The last snapshot.
    pub sm: Arc<Mutex<SmDisk>>,
    /// This node's election timeout (ms): fixed per node, chosen from the seed.
    pub timeout_ms: u64,
}

/// Faults injected, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultCounts {
    /// Nodes crashed (each later restarted).
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Packet-loss periods.
    pub drops: u64,
    /// Delay spikes.
    pub delays: u64,
    /// Membership changes started (add learner + promote + remove a voter).
    pub membership: u64,
    /// …and completed.
    pub membership_done: u64,
}

/// The simulated cluster.
pub struct World {
    /// Link conditions and running nodes.
    pub router: Router,
    /// Every node's disk, removed nodes excluded.
    pub disks: BTreeMap<u64, Disk>,
    /// Down nodes and the step they come back at.
    pub down: BTreeMap<u64, u64>,
    /// State-machine safety oracle shared by all machines.
    pub oracle: Arc<Oracle>,
    /// Faults injected.
    pub faults: FaultCounts,
    /// Planted bug: a crash drops the last 3 (acknowledged) log entries.
    pub lose_tail_on_crash: bool,
    rng: Rng,
    heal_at: Option<u64>,
    next_id: u64,
    /// A membership change in progress: returns (node to drop if the change failed early, voter removed).
    change: Option<tokio::task::JoinHandle<(Option<u64>, Option<u64>)>>,
}

fn config(timeout_ms: u64) -> Arc<openraft::Config> {
    let c = openraft::Config {
        cluster_name: "sim".into(),
        heartbeat_interval: 50,
        election_timeout_min: timeout_ms,
        // min..min+1: openraft draws the timeout from its own (unseeded) generator; a one-value
        // range makes it the seeded value.
        election_timeout_max: timeout_ms + 1,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(40),
        max_in_snapshot_log_to_keep: 5,
        purge_batch_size: 1,
        max_payload_entries: 16,
        install_snapshot_timeout: 1_000,
        ..Default::default()
    };
    Arc::new(c.validate().expect("valid simulation config"))
}

impl World {
    /// A world of `n` founders (not started yet).
    pub fn new(n: u64, mut rng: Rng) -> World {
        let router = Router::new(rng.fork());
        let mut disks = BTreeMap::new();
        for id in 0..n {
            let d = Disk { log: MemLog::default(), sm: Arc::default(), timeout_ms: rng.between(150, 400) };
            disks.insert(id, d);
        }
        let (heal_at, change) = (None, None);
        World {
            router,
            disks,
            down: BTreeMap::new(),
            oracle: Oracle::shared(),
            faults: FaultCounts::default(),
            lose_tail_on_crash: false,
            rng,
            heal_at,
            next_id: n,
            change,
        }
    }

    /// Starts (or restarts) node `id` from its disk.
    pub async fn start(&mut self, id: u64) -> anyhow::Result<()> {
        let disk = self.disks.get(&id).cloned().ok_or_else(|| anyhow::anyhow!("no disk for node {id}"))?;
        let sm = MemSm::open(id, disk.sm.clone(), self.oracle.clone())?;
        let net = NetFactory { me: id, router: self.router.clone() };
        let raft = openraft::Raft::new(id, config(disk.timeout_ms), net, disk.log.clone(), sm.clone()).await?;
        self.router.lock().up.insert(id, (raft, sm));
        self.down.remove(&id);
        Ok(())
    }

    /// Starts the founders and bootstraps the cluster from node 0.
    pub async fn boot(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u64> = self.disks.keys().copied().collect();
        for id in &ids {
            self.start(*id).await?;
        }
        let members: BTreeMap<u64, BasicNode> = ids.iter().map(|id| (*id, BasicNode::new(format!("n{id}")))).collect();
        let raft = self.router.raft(ids[0]).ok_or_else(|| anyhow::anyhow!("node 0 is not up"))?;
        raft.initialize(members).await?;
        Ok(())
    }

    /// Crashes node `id`: its memory is gone, its disk stays.
    pub async fn crash(&mut self, id: u64, until_step: u64) {
        let entry = self.router.lock().up.remove(&id);
        if let Some((raft, _)) = entry {
            let _ = tokio::time::timeout(Duration::from_secs(5), raft.shutdown()).await;
        }
        if self.lose_tail_on_crash {
            if let Some(d) = self.disks.get(&id) {
                let mut log = d.log.lock();
                let keep = log.entries.len().saturating_sub(3);
                if let Some(cut) = log.entries.keys().nth(keep).copied() {
                    log.entries.split_off(&cut);
                    log.version += 1;
                }
            }
        }
        self.down.insert(id, until_step);
    }

    /// The current leader (by its own metrics) and its membership.
    pub fn leader(&self) -> Option<(u64, typ::Raft, BTreeSet<u64>, BTreeSet<u64>)> {
        let up: Vec<(u64, typ::Raft)> = self.router.lock().up.iter().map(|(i, (r, _))| (*i, r.clone())).collect();
        up.into_iter().find_map(|(id, r)| {
            let m = r.metrics().borrow().clone();
            let mem = m.membership_config.membership();
            let voters: BTreeSet<u64> = mem.voter_ids().collect();
            let all: BTreeSet<u64> = mem.nodes().map(|(i, _)| *i).collect();
            (m.state == ServerState::Leader).then_some((id, r, voters, all))
        })
    }

    /// One step of the fault schedule (nothing when `calm`, except restarts and heals that are due).
    pub async fn faults(&mut self, step: u64, calm: bool) -> anyhow::Result<()> {
        let due: Vec<u64> = self.down.iter().filter(|(_, at)| **at <= step || calm).map(|(id, _)| *id).collect();
        for id in due {
            self.start(id).await?;
        }
        if self.heal_at.is_some_and(|at| at <= step) || calm {
            self.router.heal();
            self.router.lock().delay_ms = (1, 8);
            self.heal_at = None;
        }
        self.finish_change().await;
        if calm {
            return Ok(());
        }
        let up: Vec<u64> = self.router.lock().up.keys().copied().collect();
        let roll = self.rng.below(10_000);
        match roll {
            0..=29 if self.down.is_empty() && self.change.is_none() => {
                let n = if self.rng.chance(25) { up.len() / 2 + 1 } else { 1 };
                let mut victims = up.clone();
                self.rng.shuffle(&mut victims);
                for id in victims.into_iter().take(n) {
                    let back = step + self.rng.between(20, 300);
                    self.crash(id, back).await;
                    self.faults.crashes += 1;
                }
            }
            30..=59 if self.heal_at.is_none() => {
                let mut m = up.clone();
                self.rng.shuffle(&mut m);
                let k = 1 + self.rng.below(m.len().max(2) as u64 - 1) as usize;
                let other = m.split_off(k.min(m.len()));
                self.router.partition(&m, &other);
                self.heal_at = Some(step + self.rng.between(20, 300));
                self.faults.partitions += 1;
            }
            60..=79 if self.heal_at.is_none() => {
                self.router.lock().drop_percent = self.rng.between(10, 50);
                self.heal_at = Some(step + self.rng.between(50, 300));
                self.faults.drops += 1;
            }
            80..=99 if self.heal_at.is_none() => {
                self.router.lock().delay_ms = (1, self.rng.between(50, 300));
                self.heal_at = Some(step + self.rng.between(50, 200));
                self.faults.delays += 1;
            }
            100..=111 if self.down.is_empty() && self.change.is_none() && self.next_id < 12 => {
                self.start_change().await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn start_change(&mut self) -> anyhow::Result<()> {
        let Some((_, leader, voters, _)) = self.leader() else { return Ok(()) };
        let id = self.next_id;
        self.next_id += 1;
        let timeout_ms = self.rng.between(150, 400);
        self.disks.insert(id, Disk { log: MemLog::default(), sm: Arc::default(), timeout_ms });
        self.start(id).await?;
        let voters: Vec<u64> = voters.into_iter().collect();
        let old = self.rng.pick(&voters).copied();
        self.faults.membership += 1;
        self.change = Some(tokio::spawn(async move {
            let t = Duration::from_secs(5);
            let add = leader.add_learner(id, BasicNode::new(format!("n{id}")), true);
            if !matches!(tokio::time::timeout(t, add).await, Ok(Ok(_))) {
                return (Some(id), None);
            }
            let promote = leader.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
            if !matches!(tokio::time::timeout(t, promote).await, Ok(Ok(_))) {
                return (None, None);
            }
            let Some(old) = old else { return (None, None) };
            let remove = leader.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([old])), false);
            match tokio::time::timeout(t, remove).await {
                Ok(Ok(_)) => (None, Some(old)),
                _ => (None, None),
            }
        }));
        Ok(())
    }

    /// When a membership change finished: shuts down the node it removed (or the new node, if it
    /// never joined) and forgets its disk.
    async fn finish_change(&mut self) {
        if !self.change.as_ref().is_some_and(|c| c.is_finished()) {
            return;
        }
        let Some(handle) = self.change.take() else { return };
        let (gone, done) = match handle.await {
            Ok((_, Some(old))) => (Some(old), true),
            Ok((new, None)) => (new, false),
            Err(_) => (None, false),
        };
        self.faults.membership_done += u64::from(done);
        if let Some(id) = gone {
            self.crash(id, u64::MAX).await;
            self.down.remove(&id);
            self.disks.remove(&id);
        }
    }
}
