//! What every part of a run shares — the clients, the nemesis, the heal and the final phase: the
//! history being written, the channels to the nodes, the nodes clients may talk to, the stop flag
//! and the operation counters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use super::rpc::Clients;
use crate::history::{EventType, HistoryWriter, Op};
use crate::rng::Rng;

/// The state of one run, shared (behind an `Arc`) by every task of it.
pub struct RunState {
    /// The history being written.
    pub history: HistoryWriter,
    /// Channels to the nodes.
    pub clients: Clients,
    /// Nodes clients may send requests to (the current members).
    pub targets: RwLock<Vec<u64>>,
    /// Set when clients must stop invoking new operations.
    pub stop: AtomicBool,
    /// Operations invoked so far.
    pub invoked: AtomicU64,
    /// Operations completed `ok` so far (the nemesis waits for service between episodes).
    pub oks: AtomicU64,
    /// Bound on invoked operations.
    pub max_ops: u64,
    /// Time budget of one operation (all its retries).
    pub op_budget: Duration,
    /// Pause between two operations of a client.
    pub think: Duration,
    /// Last address acknowledged per (network, owner): guesses for guarded releases.
    held: Mutex<HashMap<(String, String), IpAddr>>,
}

impl RunState {
    /// Shared state for a run.
    pub fn new(
        history: HistoryWriter,
        targets: Vec<u64>,
        max_ops: u64,
        op_budget: Duration,
        think: Duration,
    ) -> RunState {
        RunState {
            history,
            clients: Clients::default(),
            targets: RwLock::new(targets),
            stop: AtomicBool::new(false),
            invoked: AtomicU64::new(0),
            oks: AtomicU64::new(0),
            max_ops,
            op_budget,
            think,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Records a nemesis event (`"process":"nemesis"`). The history writer only fails on I/O,
    /// and a failed write aborts the run.
    pub fn note(&self, kind: EventType, f: &str, value: serde_json::Value) -> anyhow::Result<()> {
        self.history.nemesis(kind, f, value)?;
        Ok(())
    }

    /// A random current target node.
    pub fn pick_target(&self, rng: &mut Rng) -> u64 {
        let t = self.targets.read().unwrap_or_else(|p| p.into_inner());
        rng.pick(&t).copied().unwrap_or(0)
    }

    /// Replaces the set of target nodes.
    pub fn set_targets(&self, ids: Vec<u64>) {
        *self.targets.write().unwrap_or_else(|p| p.into_inner()) = ids;
    }

    /// The address `owner` was last acknowledged in `network`, if any (a guess: it may have
    /// been released since), so that guarded releases often name the real holder.
    pub fn guess(&self, network: &str, owner: &str) -> Option<IpAddr> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&(network.to_string(), owner.to_string())).copied()
    }

    /// Learns from an operation that completed `ok` what [`RunState::guess`] answers.
    pub fn learn(&self, op: &Op) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match op {
            Op::Allocate(a) => {
                if let Some(ip) = a.ips.as_ref().and_then(|v| v.first()) {
                    held.insert((a.network.clone(), a.owner.clone()), *ip);
                }
            }
            Op::Release(r) => {
                held.remove(&(r.network.clone(), r.owner.clone()));
            }
            _ => {}
        }
    }
}
