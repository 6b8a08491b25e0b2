//! Lost volumes: a member's data directory is lost and the node is started again with its
//! original flags, as a StatefulSet does when a pod's volume is gone. kill -9, delete everything
//! in the data directory, restart — alone, or combined with other faults (a variant picked per
//! episode):
//!
//! - `alone`: one voter (any, the leader or the bootstrapping node 0 included) is wiped.
//! - `killed-peer`: another voter is killed first and restarted after the wiped one rejoined.
//! - `paused-peer` (issue 13's scenario, for n voters): n − q followers are paused (q the quorum);
//!   writes are acknowledged by the leader and the q − 1 others; the leader and those others are
//!   killed, the others wiped and restarted, the paused ones resumed — the wiped and the stale
//!   nodes are a quorum together, and only the killed leader holds the acknowledged writes until it
//!   is restarted.
//!
//! Then the harness looks at what each wiped node did (bounded): it `rejoined` (serves, caught up
//! with the leader), stayed `unsettled`, or `refused` (its process exited: the safe answer of a
//! node that knows it lost its state). A node that refused is parked (the heal leaves it down) and
//! repaired the way an operator would: remove its id, give it an empty volume, start it as a
//! joining node, add it as a learner, promote it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::admin::{add_learner, promote, refresh, remove_node};
use crate::harness::heal::{heal, HealMoment};
use crate::harness::lab::node_addr;
use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// How long a wiped node has to rejoin or refuse before it is reported `unsettled`.
const SETTLE_WITHIN: Duration = Duration::from_secs(20);

/// What one episode does, decided before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `alone`, `killed-peer` or `paused-peer`.
    pub variant: &'static str,
    /// Voters whose data directory is lost.
    pub wiped: Vec<u64>,
    /// Voters killed with them and restarted only after the wiped ones started.
    pub killed: Vec<u64>,
    /// Voters paused before, resumed after the wiped ones started.
    pub paused: Vec<u64>,
}

/// Plans an episode of `variant` over the serving `voters`; falls back to `alone` when the
/// variant needs more (three voters, a known leader).
pub fn plan(variant: &'static str, voters: &[u64], leader: Option<u64>, rng: &mut Rng) -> Option<Plan> {
    let mut v = voters.to_vec();
    rng.shuffle(&mut v);
    match (variant, leader) {
        ("paused-peer", Some(l)) if v.len() >= 3 && v.contains(&l) => {
            let n = v.len();
            let q = n / 2 + 1;
            let mut others: Vec<u64> = v.into_iter().filter(|id| *id != l).collect();
            let wiped = others.split_off(n - q);
            Some(Plan { variant, wiped, killed: vec![l], paused: others })
        }
        ("killed-peer", _) if v.len() >= 3 => {
            Some(Plan { variant, wiped: vec![v[0]], killed: vec![v[1]], paused: vec![] })
        }
        _ => v.first().map(|w| Plan { variant: "alone", wiped: vec![*w], killed: vec![], paused: vec![] }),
    }
}

/// What a wiped node did after its restart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// It serves and applied what the leader had.
    Rejoined,
    /// It runs but did not catch up within [`SETTLE_WITHIN`].
    Unsettled,
    /// Its process exited.
    Refused,
}

/// What the leader (another node than `id`) has applied, if a leader answers quickly.
async fn leader_applied(tb: &mut Testbed, st: &RunState, id: u64) -> Option<u64> {
    match tb.leader(st, Duration::from_secs(1)).await {
        Some(l) if l != id => st.clients.local_status(l).await.map(|s| s.applied_index),
        _ => None,
    }
}

/// Watches wiped node `id` (bounded) and records `wipe-outcome`.
async fn observe(tb: &mut Testbed, st: &RunState, id: u64) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut target = leader_applied(tb, st, id).await;
    let mut last = None;
    let outcome = loop {
        // `serving()` reaps exited processes too: a node it reaped is no longer started.
        let exit = tb.nodes.exited(id).map(|s| s.code());
        if exit.is_some() || !tb.nodes.started().contains(&id) {
            tb.down.insert(id);
            tb.parked.insert(id);
            let value = json!({"node": id, "outcome": "refused", "exit": exit.flatten(), "after_ms": started.elapsed().as_millis() as u64,
                "message": tb.last_error(id)});
            st.note(EventType::Info, "wipe-outcome", value)?;
            break Outcome::Refused;
        }
        if target.is_none() {
            target = leader_applied(tb, st, id).await;
        }
        if let Some(s) = st.clients.local_status(id).await {
            let caught_up = target.is_some_and(|t| s.applied_index >= t) && s.leader_id.is_some();
            last = Some(
                json!({"raft_id": s.node_id, "role": s.role, "term": s.term, "applied_index": s.applied_index, "leader": s.leader_id}),
            );
            if caught_up {
                break Outcome::Rejoined;
            }
        }
        if started.elapsed() >= SETTLE_WITHIN {
            break Outcome::Unsettled;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if outcome != Outcome::Refused {
        let name = if outcome == Outcome::Rejoined { "rejoined" } else { "unsettled" };
        let value = json!({"node": id, "outcome": name, "after_ms": started.elapsed().as_millis() as u64,
            "leader_applied": target, "status": last});
        st.note(EventType::Info, "wipe-outcome", value)?;
    }
    Ok(outcome)
}

/// The operator's repair of a wiped node that refused to start: remove its id, an empty volume,
/// start it as a joining node, add it as a learner, promote it once it caught up. Records
/// `repair` (invoke; `ok` when it is a voter again, else `info` with every step's answer).
async fn repair(tb: &mut Testbed, st: &RunState, id: u64) -> anyhow::Result<()> {
    st.note(EventType::Invoke, "repair", json!({"node": id}))?;
    let removed = remove_node(tb, st, id).await;
    refresh(tb, st).await;
    tb.wipe(id)?;
    tb.joined.insert(id);
    tb.parked.remove(&id);
    tb.restart(id, None)?;
    let added = add_learner(tb, st, id, &node_addr(id)).await;
    refresh(tb, st).await;
    let lag = tb.caught_up(st, id, Duration::from_secs(30)).await;
    let promoted = promote(tb, st, id).await;
    refresh(tb, st).await;
    let exited = tb.nodes.exited(id).map(|s| s.code()).or((!tb.nodes.started().contains(&id)).then_some(None));
    if exited.is_some() {
        tb.down.insert(id);
        tb.parked.insert(id);
    }
    let voter = tb.voters.contains(&id) && exited.is_none();
    let value = json!({"node": id, "removed": removed, "added": added, "caught_up_ms": lag.map(|d| d.as_millis() as u64),
        "promoted": promoted, "exited": exited, "voters": tb.voters});
    st.note(if voter { EventType::Ok } else { EventType::Info }, "repair", value)
}

fn nodes(ids: &[u64]) -> serde_json::Value {
    json!({ "nodes": ids })
}

/// One lost-volume episode (see the module doc), then the outcome of each wiped node, the repair
/// of those that refused, and the heal. Records `wipe` (invoke with the plan, ok with the entries
/// deleted per node), `pause`/`kill`/`restart`/`resume` of its steps, `wipe-outcome` per wiped
/// node, `repair` when one refused.
pub async fn wipe(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let leader = tb.leader(st, Duration::from_secs(3)).await;
    let voters: Vec<u64> = tb.serving().into_iter().filter(|id| tb.voters.contains(id)).collect();
    let variant = *rng.pick(&["alone", "killed-peer", "paused-peer"]).expect("non-empty");
    let Some(p) = plan(variant, &voters, leader, rng) else { return Ok(()) };
    let value =
        json!({"variant": p.variant, "wiped": p.wiped, "killed": p.killed, "paused": p.paused, "leader": leader});
    st.note(EventType::Invoke, "wipe", value)?;
    if !p.paused.is_empty() {
        st.note(EventType::Invoke, "pause", nodes(&p.paused))?;
        for id in &p.paused {
            tb.nodes.pause(*id)?;
        }
        st.note(EventType::Ok, "pause", nodes(&p.paused))?;
        // Writes acknowledged now are held by the leader and the nodes about to be wiped only.
        tokio::time::sleep(hold / 2).await;
    }
    let down: Vec<u64> = p.killed.iter().chain(&p.wiped).copied().collect();
    st.note(EventType::Invoke, "kill", nodes(&down))?;
    for id in &down {
        tb.kill(*id);
    }
    st.note(EventType::Ok, "kill", nodes(&down))?;
    let mut removed = serde_json::Map::new();
    for id in &p.wiped {
        removed.insert(id.to_string(), json!(tb.wipe(*id)?));
    }
    st.note(EventType::Ok, "wipe", json!({"variant": p.variant, "wiped": p.wiped, "entries_removed": removed}))?;
    st.note(EventType::Invoke, "restart", nodes(&p.wiped))?;
    for id in &p.wiped {
        tb.restart(*id, None)?;
    }
    st.note(EventType::Ok, "restart", nodes(&p.wiped))?;
    if !p.paused.is_empty() {
        st.note(EventType::Invoke, "resume", nodes(&p.paused))?;
        for id in &p.paused {
            tb.nodes.resume(*id)?;
        }
        st.note(EventType::Ok, "resume", nodes(&p.paused))?;
    }
    // The window in which the wiped nodes (with the stale ones) may act on forgotten state.
    tokio::time::sleep(hold / 2).await;
    if !p.killed.is_empty() {
        st.note(EventType::Invoke, "restart", nodes(&p.killed))?;
        for id in &p.killed {
            tb.restart(*id, None)?;
        }
        st.note(EventType::Ok, "restart", nodes(&p.killed))?;
    }
    let mut refused = Vec::new();
    for id in &p.wiped {
        if observe(tb, st, *id).await? == Outcome::Refused {
            refused.push(*id);
        }
    }
    for id in refused {
        repair(tb, st, id).await?;
    }
    refresh(tb, st).await;
    heal(tb, st, HealMoment::Episode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paused_and_the_wiped_are_a_quorum_without_the_leader() {
        let mut rng = Rng::new(3);
        for voters in [vec![0, 1, 2], vec![0, 1, 2, 3, 4]] {
            let p = plan("paused-peer", &voters, Some(1), &mut rng).unwrap();
            let n = voters.len();
            assert_eq!(p.killed, vec![1]);
            assert_eq!(p.paused.len() + p.wiped.len(), n - 1);
            assert_eq!(p.wiped.len() + 1, n / 2 + 1, "leader + wiped acknowledged the writes: a quorum");
            assert!(p.wiped.len() + p.paused.len() > n / 2, "wiped + paused: a quorum without the leader");
            assert!(!p.wiped.contains(&1) && !p.paused.contains(&1));
        }
    }

    #[test]
    fn variants_fall_back_to_alone() {
        let mut rng = Rng::new(4);
        let p = plan("paused-peer", &[0, 1, 2], None, &mut rng).unwrap();
        assert_eq!((p.variant, p.wiped.len(), p.killed.len()), ("alone", 1, 0));
        let p = plan("killed-peer", &[0, 1], None, &mut rng).unwrap();
        assert_eq!(p.variant, "alone");
        let p = plan("killed-peer", &[0, 1, 2], None, &mut rng).unwrap();
        assert_eq!((p.wiped.len(), p.killed.len()), (1, 1));
        assert_ne!(p.wiped, p.killed);
        assert!(plan("alone", &[], None, &mut rng).is_none());
    }
}
