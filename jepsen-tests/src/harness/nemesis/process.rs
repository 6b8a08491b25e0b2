//! Process faults: `kill -9` (one node, the leader, a majority or every node; restarted after
//! the hold) and SIGSTOP (one node or the leader; SIGCONT after the hold).

use std::time::Duration;

use serde_json::json;

use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// A random serving voter, or the leader when `leader`.
async fn victim(tb: &mut Testbed, st: &RunState, leader: bool, rng: &mut Rng) -> Option<u64> {
    if leader {
        if let Some(l) = tb.leader(st, Duration::from_secs(2)).await {
            return Some(l);
        }
    }
    let voters: Vec<u64> = tb.serving().into_iter().filter(|id| tb.voters.contains(id)).collect();
    rng.pick(&voters).copied()
}

/// Kills one node, the leader, a majority or every member; restarts them after `hold`.
pub async fn kill(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let target = *rng.pick(&["one", "leader", "majority", "all"]).expect("non-empty");
    let mut nodes = Vec::new();
    if let Some(first) = victim(tb, st, target != "one", rng).await {
        nodes.push(first);
    }
    let want = match target {
        "majority" => tb.voters.len() / 2 + 1,
        "all" => tb.members().len(),
        _ => 1,
    };
    let mut others: Vec<u64> = tb.members().into_iter().filter(|v| !nodes.contains(v)).collect();
    others.retain(|v| target == "all" || tb.voters.contains(v));
    rng.shuffle(&mut others);
    nodes.extend(others.into_iter().take(want.saturating_sub(nodes.len())));
    st.note(EventType::Invoke, "kill", json!({"target": target, "nodes": nodes}))?;
    for id in &nodes {
        tb.kill(*id);
    }
    st.note(EventType::Ok, "kill", json!({"target": target, "nodes": nodes}))?;
    tokio::time::sleep(hold).await;
    st.note(EventType::Invoke, "restart", json!({"nodes": nodes}))?;
    for id in &nodes {
        tb.restart(*id, None)?;
    }
    st.note(EventType::Ok, "restart", json!({"nodes": nodes}))
}

/// Pauses one node or the leader (SIGSTOP); resumes it after `hold`.
pub async fn pause(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let target = *rng.pick(&["one", "leader"]).expect("non-empty");
    let Some(id) = victim(tb, st, target == "leader", rng).await else { return Ok(()) };
    st.note(EventType::Invoke, "pause", json!({"target": target, "nodes": [id]}))?;
    tb.nodes.pause(id)?;
    st.note(EventType::Ok, "pause", json!({"target": target, "nodes": [id]}))?;
    tokio::time::sleep(hold).await;
    st.note(EventType::Invoke, "resume", json!({"nodes": [id]}))?;
    tb.nodes.resume(id)?;
    st.note(EventType::Ok, "resume", json!({"nodes": [id]}))
}
