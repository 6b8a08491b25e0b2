//! The properties checked after every simulation step:
//!
//! - election safety: at most one leader per term (from each node's state and committed vote);
//! - log matching: two logs holding an entry with the same index and term hold the same entry
//!   there, and agree on every earlier index both still hold;
//! - state-machine safety: one log id per applied index everywhere, one reply per request id
//!   (checked while applying, by the [`Oracle`](super::oracle::Oracle)), and nodes that applied
//!   the same index hold the same state (same snapshot encoding);
//! - IPAM: no address held twice in one network on any node.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use ipam::snapshot;
use openraft::ServerState;
use raft_store::types::typ;
use testkit::mem_log::MemLog;
use testkit::mem_state_machine::MemSm;

use super::router::Router;

/// One log as index → (log id, payload hash).
type LogIds = BTreeMap<u64, (typ::LogId, u64)>;

/// Violations found so far, and what was seen.
#[derive(Debug, Default)]
pub struct Invariants {
    leaders: BTreeMap<u64, u64>,
    /// Per node: the last applied log id checked and its state digest.
    applied: HashMap<u64, (Option<typ::LogId>, u64)>,
    /// Log versions at the last log-matching check.
    log_versions: Vec<(u64, u64)>,
    /// Human-readable violations (the first few are enough).
    pub violations: Vec<String>,
    /// Steps checked.
    pub steps: u64,
}

fn hash<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

impl Invariants {
    fn fail(&mut self, step: u64, what: String) {
        if self.violations.len() < 20 {
            self.violations.push(format!("step {step}: {what}"));
        }
    }

    /// Terms with a known leader.
    pub fn terms(&self) -> usize {
        self.leaders.len()
    }

    fn leader(&mut self, step: u64, term: u64, id: u64) {
        let first = *self.leaders.entry(term).or_insert(id);
        if first != id {
            self.fail(step, format!("election safety: term {term} has leaders {first} and {id}"));
        }
    }

    /// Runs every check; returns a fingerprint of what it saw (for determinism comparisons).
    pub fn check(&mut self, step: u64, router: &Router, logs: &BTreeMap<u64, MemLog>) -> u64 {
        self.steps += 1;
        let up: Vec<(u64, typ::Raft, MemSm)> =
            router.lock().up.iter().map(|(id, (r, m))| (*id, r.clone(), m.clone())).collect();
        let mut fingerprint = Vec::new();
        let mut states: HashMap<Option<u64>, (u64, u64)> = HashMap::new();
        for (id, raft, sm) in &up {
            let m = raft.metrics().borrow().clone();
            if m.state == ServerState::Leader {
                self.leader(step, m.current_term, *id);
            }
            if m.vote.is_committed() {
                if let Some(v) = m.vote.leader_id().voted_for() {
                    self.leader(step, m.vote.leader_id().get_term(), v);
                }
            }
            let vol = sm.volatile();
            let digest = match self.applied.get(id) {
                Some((at, d)) if *at == vol.last_applied => *d,
                _ => {
                    let d = hash(&snapshot::encode(&vol.state));
                    let mut seen = HashSet::new();
                    for a in vol.state.allocations(None) {
                        if !seen.insert((a.network.clone(), a.ip)) {
                            self.fail(step, format!("ipam: node {id} gives {} twice in network {:?}", a.ip, a.network));
                        }
                    }
                    self.applied.insert(*id, (vol.last_applied, d));
                    d
                }
            };
            match states.get(&vol.last_applied.map(|l| l.index)) {
                Some((other, d)) if *d != digest => {
                    let at = vol.last_applied;
                    self.fail(
                        step,
                        format!("state-machine safety: nodes {other} and {id} applied up to {at:?} but differ"),
                    );
                }
                _ => {
                    states.insert(vol.last_applied.map(|l| l.index), (*id, digest));
                }
            }
            fingerprint.push((*id, m.current_term, m.current_leader, m.last_applied.map(|l| l.index), digest));
        }
        let versions: Vec<(u64, u64)> = logs.iter().map(|(id, l)| (*id, l.version())).collect();
        if versions != self.log_versions {
            self.log_matching(step, logs);
            self.log_versions = versions;
        }
        hash(&fingerprint)
    }

    fn log_matching(&mut self, step: u64, logs: &BTreeMap<u64, MemLog>) {
        let ids: Vec<(u64, LogIds)> =
            logs.iter().map(|(n, l)| (*n, l.ids().into_iter().map(|(i, id, h)| (i, (id, h))).collect())).collect();
        for (x, (a, la)) in ids.iter().enumerate() {
            for (b, lb) in &ids[x + 1..] {
                // The highest common index where both hold the same log id…
                let top = la.iter().rev().find(|(i, (id, _))| lb.get(i).is_some_and(|(o, _)| o == id)).map(|(i, _)| *i);
                let Some(top) = top else { continue };
                // …and every common index up to it must match, payload included.
                for (i, (id, h)) in la.range(..=top) {
                    if let Some((o, g)) = lb.get(i) {
                        if o != id || g != h {
                            self.fail(
                                step,
                                format!(
                                    "log matching: nodes {a} and {b} agree at {top} but differ at {i} ({id} vs {o})"
                                ),
                            );
                            return;
                        }
                    }
                }
            }
        }
    }
}
