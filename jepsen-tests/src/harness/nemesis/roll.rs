//! Mixed versions: a rolling upgrade, one member at a time, the way a StatefulSet rolls its pods,
//! and a rollback. Every node starts on the previous release (`--old-node-bin`); each episode
//! moves one member: stop it (SIGTERM, SIGKILL after [`STOP_GRACE`]), leave it down for half the
//! hold, start it on the other binary with the same data directory and flags, and wait (at most
//! [`CATCH_UP_WITHIN`]) until it serves and every member, on either binary, applied what the
//! leader had when first asked, twice (an old member that cannot read what a new leader writes
//! falls behind even when the moved one caught up). Members move forward
//! (old → new) highest id first; once every member runs the new binary, the next episode moves
//! one member, picked at random, back to the old one, and the one after moves it forward again.
//!
//! The test never raises the cluster version, so every rollback is legal: before one, the
//! cluster version and every member's stored formats, as a new member reports them, are recorded
//! with the roll (`cluster`; the checker requires nothing newer than the cluster version). A roll after which a member
//! did not catch up (it refused the log, or the moved one exited) ends `info` with
//! `caught_up: false` and the members `behind`, which the checker reports (`roll-stalled`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::run_state::RunState;
use crate::harness::testbed::{Build, Stopped, Testbed};
use crate::history::EventType;
use crate::rng::Rng;

/// How long a stopped member may take to shut down cleanly before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a restarted member has to serve and catch up with the leader.
pub const CATCH_UP_WITHIN: Duration = Duration::from_secs(30);

/// One member moved from one build to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The member.
    pub node: u64,
    /// The build it runs now.
    pub from: Build,
    /// The build it is restarted on.
    pub to: Build,
}

/// The next move over `members` (each with the build it runs): the highest id still on the old
/// build moves forward; when none is, a random member moves back. `None` without members.
pub fn next_move(members: &[(u64, Build)], rng: &mut Rng) -> Option<Move> {
    if let Some((node, _)) = members.iter().filter(|(_, b)| *b == Build::Old).max_by_key(|(id, _)| *id) {
        return Some(Move { node: *node, from: Build::Old, to: Build::New });
    }
    rng.pick(members).map(|(node, _)| Move { node: *node, from: Build::New, to: Build::Old })
}

/// The cluster version and every member's formats as a member on the new build reports them
/// (`ClusterVersion`; older releases do not serve it).
async fn cluster_version(tb: &mut Testbed, st: &RunState) -> serde_json::Value {
    let asked: Vec<u64> = tb.serving().into_iter().filter(|id| tb.build(*id) == Build::New).collect();
    st.clients.versions(&asked).await.1
}

/// What the members did after the move: caught up (after how long), or not (and why).
enum Settled {
    CaughtUp { after: Duration, applied: u64, leader: Option<u64> },
    Exited { after: Duration, code: Option<i32> },
    Behind { behind: serde_json::Map<String, serde_json::Value> },
}

/// Watches the members after member `moved` restarted, in two rounds, until every one of them
/// applied what a leader had applied when first asked in that round (a member that leads holds
/// the committed log), the moved member's process exits, or [`CATCH_UP_WITHIN`] passes. The
/// second round's target is taken once the first was met: a new leader elected during the move
/// may have written nothing yet when the first was taken, and an old member that cannot read what
/// it writes would pass the first round on what it had before.
async fn settle(tb: &mut Testbed, st: &RunState, moved: u64) -> Settled {
    let started = Instant::now();
    let mut target = None;
    let mut round = 0;
    let mut behind = serde_json::Map::new();
    while started.elapsed() < CATCH_UP_WITHIN {
        if let Some(status) = tb.nodes.exited(moved) {
            return Settled::Exited { after: started.elapsed(), code: status.code() };
        }
        if target.is_none() {
            target = match tb.leader(st, Duration::from_secs(1)).await {
                Some(l) => st.clients.local_status(l).await.map(|s| s.applied_index),
                None => None,
            };
        }
        behind.clear();
        let mut moved_status = None;
        for id in tb.members() {
            let status = st.clients.local_status(id).await;
            let caught = status.as_ref().is_some_and(|s| {
                s.role == "Leader" || (s.leader_id.is_some() && target.is_some_and(|t| s.applied_index >= t))
            });
            if !caught {
                let v = status.as_ref().map_or(json!(null), |s| {
                    json!({"role": s.role, "term": s.term, "applied_index": s.applied_index, "leader": s.leader_id})
                });
                behind.insert(id.to_string(), v);
            }
            if id == moved {
                moved_status = status;
            }
        }
        match (behind.is_empty(), moved_status) {
            (true, Some(_)) if round == 0 => {
                round = 1;
                target = None;
                continue;
            }
            (true, Some(s)) => {
                return Settled::CaughtUp { after: started.elapsed(), applied: s.applied_index, leader: s.leader_id }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    behind.insert("leader_applied".into(), json!(target));
    behind.insert("round".into(), json!(round + 1));
    Settled::Behind { behind }
}

/// One roll episode (see the module doc). Records `roll`: invoke with the move (and, before a
/// rollback, the cluster version), `ok` with how it stopped and when it caught up, or `info`
/// with `caught_up: false` and why.
pub async fn roll(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let members: Vec<(u64, Build)> = tb.members().into_iter().map(|id| (id, tb.build(id))).collect();
    let Some(m) = next_move(&members, rng) else { return Ok(()) };
    let mut invoke = json!({"node": m.node, "from": m.from.name(), "to": m.to.name()});
    if m.to == Build::Old {
        invoke["cluster"] = cluster_version(tb, st).await;
    }
    st.note(EventType::Invoke, "roll", invoke)?;
    let stopping = Instant::now();
    let stopped = match tb.stop(m.node, STOP_GRACE).await? {
        Stopped::Exited(status) => json!({"signal": "term", "exit": status.code()}),
        Stopped::Killed => json!({"signal": "kill"}),
        Stopped::NotRunning => json!({"signal": null}),
    };
    let stop_ms = stopping.elapsed().as_millis() as u64;
    let down = hold / 2;
    tokio::time::sleep(down).await;
    let bin = tb.set_build(m.node, m.to)?;
    tb.restart(m.node, None)?;
    let mut value = json!({"node": m.node, "from": m.from.name(), "to": m.to.name(), "bin": bin,
        "stopped": stopped, "stop_ms": stop_ms, "down_ms": down.as_millis() as u64});
    match settle(tb, st, m.node).await {
        Settled::CaughtUp { after, applied, leader } => {
            value["caught_up_ms"] = json!(after.as_millis() as u64);
            value["applied_index"] = json!(applied);
            value["leader"] = json!(leader);
            st.note(EventType::Ok, "roll", value)
        }
        Settled::Exited { after, code } => {
            tb.down.insert(m.node);
            value["caught_up"] = json!(false);
            value["exited"] = json!({"after_ms": after.as_millis() as u64, "code": code});
            value["message"] = json!(tb.last_error(m.node));
            st.note(EventType::Info, "roll", value)
        }
        Settled::Behind { behind } => {
            let messages: serde_json::Map<String, serde_json::Value> = behind
                .keys()
                .filter_map(|k| k.parse::<u64>().ok())
                .map(|id| (id.to_string(), json!(tb.last_error(id))))
                .collect();
            value["caught_up"] = json!(false);
            value["within_ms"] = json!(CATCH_UP_WITHIN.as_millis() as u64);
            value["behind"] = json!(behind);
            value["message"] = json!(messages);
            st.note(EventType::Info, "roll", value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_roll_forward_highest_first_then_one_back_then_forward_again() {
        let mut rng = Rng::new(7);
        let mut running = vec![(0, Build::Old), (1, Build::Old), (2, Build::Old)];
        let mut moves = Vec::new();
        for _ in 0..7 {
            let m = next_move(&running, &mut rng).expect("members");
            let slot = running.iter_mut().find(|(id, _)| *id == m.node).expect("a member");
            assert_eq!(slot.1, m.from);
            slot.1 = m.to;
            moves.push(m);
        }
        let forward: Vec<u64> = moves[..3].iter().map(|m| m.node).collect();
        assert_eq!(forward, [2, 1, 0]);
        assert!(moves[..3].iter().all(|m| (m.from, m.to) == (Build::Old, Build::New)));
        for pair in moves[3..].chunks(2) {
            assert_eq!((pair[0].from, pair[0].to), (Build::New, Build::Old), "{moves:?}");
            assert_eq!(pair[1], Move { node: pair[0].node, from: Build::Old, to: Build::New }, "{moves:?}");
        }
        assert!(running.iter().all(|(_, b)| *b == Build::New));
    }

    #[test]
    fn rollbacks_pick_different_members_and_no_members_no_move() {
        let mut rng = Rng::new(11);
        let all_new = [(0, Build::New), (1, Build::New), (2, Build::New)];
        let picked: std::collections::BTreeSet<u64> =
            (0..50).filter_map(|_| next_move(&all_new, &mut rng)).map(|m| m.node).collect();
        assert_eq!(picked.len(), 3, "every member is rolled back sometimes: {picked:?}");
        assert_eq!(next_move(&[], &mut rng), None);
    }
}
