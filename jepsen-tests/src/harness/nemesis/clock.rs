//! Clock faults: a node's wall clock jumps forward and back (libfaketime,
//! [`crate::harness::clocks`]; the monotonic clock is left alone). The leader stamps its wall
//! clock into every event it proposes, so the interesting case is a new leader whose clock is
//! behind the old one's: nothing may go wrong when time seems to run backwards between entries.
//!
//! Variants, one picked per episode:
//! - `leader-ahead`: the leader's clock jumps 1 min–3 h ahead; it leads for half the hold (its
//!   stamps are in the future), then is paused until another node leads (whose stamps are now
//!   behind), resumed; its clock jumps back at the heal.
//! - `restart-behind`: a follower is killed and restarted with its clock 1 min–3 h behind; then
//!   the leader is killed and restarted, so the next leader may be the node that lives in the past.
//! - `jumps`: the leader's clock jumps ahead, then behind, then back to the real time, while it
//!   runs (its stamps go forward and backward between entries).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::json;

use crate::harness::heal::{heal, HealMoment};
use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// Smallest and largest clock offset of an episode (seconds).
const OFFSET_SECS: (u64, u64) = (60, 3 * 3600);
/// How long libfaketime may take to see a new offset (it re-reads the file every second).
const SEEN_WITHIN: Duration = Duration::from_millis(1_500);

/// Sets node `id`'s clock offset and records it (`clock-jump` info, `{node, offset_secs}`).
fn jump(tb: &mut Testbed, st: &RunState, id: u64, secs: i64) -> anyhow::Result<()> {
    tb.clocks
        .as_mut()
        .context("the clock nemesis needs the fake clocks (set up when it is selected)")?
        .set(id, secs)?;
    st.note(EventType::Info, "clock-jump", json!({"node": id, "offset_secs": secs}))
}

fn offset(rng: &mut Rng) -> i64 {
    rng.between(OFFSET_SECS.0, OFFSET_SECS.1) as i64
}

/// One clock episode (the variant picked at random; `clock` invoke/ok), then the heal (every
/// clock back on time). Ends with a `clock-stamps` info: how many allocations the leader holds
/// stamped more than a minute in the future, or more than a minute before the run started
/// (evidence that a skewed clock led).
pub async fn clock(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    if tb.clocks.is_none() {
        anyhow::bail!("the clock nemesis needs the fake clocks (set up when it is selected)");
    }
    let variant = *rng.pick(&["leader-ahead", "restart-behind", "jumps"]).expect("non-empty");
    let Some(leader) = tb.leader(st, Duration::from_secs(3)).await else { return Ok(()) };
    let serving = tb.serving();
    st.note(EventType::Invoke, "clock", json!({"variant": variant, "leader": leader}))?;
    match variant {
        "leader-ahead" => {
            jump(tb, st, leader, offset(rng))?;
            tokio::time::sleep(hold / 2).await;
            st.note(EventType::Invoke, "pause", json!({"target": "leader", "nodes": [leader]}))?;
            tb.nodes.pause(leader)?;
            st.note(EventType::Ok, "pause", json!({"target": "leader", "nodes": [leader]}))?;
            let others: Vec<u64> = tb.serving();
            let mut next = None;
            for _ in 0..100 {
                next = st.clients.leader(&others).await;
                if next.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            st.note(EventType::Info, "clock-leader", json!({"deposed": leader, "new_leader": next}))?;
            tokio::time::sleep(hold / 4).await;
            st.note(EventType::Invoke, "resume", json!({"nodes": [leader]}))?;
            tb.nodes.resume(leader)?;
            st.note(EventType::Ok, "resume", json!({"nodes": [leader]}))?;
            tokio::time::sleep(hold / 4).await;
        }
        "restart-behind" => {
            let followers: Vec<u64> = serving.iter().copied().filter(|id| *id != leader).collect();
            let Some(f) = rng.pick(&followers).copied() else { return heal(tb, st, HealMoment::Episode) };
            st.note(EventType::Invoke, "kill", json!({"target": "one", "nodes": [f]}))?;
            tb.kill(f);
            st.note(EventType::Ok, "kill", json!({"target": "one", "nodes": [f]}))?;
            jump(tb, st, f, -offset(rng))?;
            st.note(EventType::Invoke, "restart", json!({"nodes": [f]}))?;
            tb.restart(f, None)?;
            st.note(EventType::Ok, "restart", json!({"nodes": [f]}))?;
            tb.caught_up(st, f, hold).await;
            st.note(EventType::Invoke, "kill", json!({"target": "leader", "nodes": [leader]}))?;
            tb.kill(leader);
            st.note(EventType::Ok, "kill", json!({"target": "leader", "nodes": [leader]}))?;
            let next = tb.leader(st, Duration::from_secs(10)).await;
            st.note(EventType::Info, "clock-leader", json!({"deposed": leader, "new_leader": next, "behind": f}))?;
            st.note(EventType::Invoke, "restart", json!({"nodes": [leader]}))?;
            tb.restart(leader, None)?;
            st.note(EventType::Ok, "restart", json!({"nodes": [leader]}))?;
            tokio::time::sleep(hold / 2).await;
        }
        _ => {
            for secs in [offset(rng), -offset(rng), 0] {
                jump(tb, st, leader, secs)?;
                tokio::time::sleep((hold / 3).max(SEEN_WITHIN)).await;
            }
        }
    }
    st.note(EventType::Ok, "clock", json!({"variant": variant}))?;
    let stamps = skewed_stamps(tb, st).await;
    heal(tb, st, HealMoment::Episode)?;
    st.note(EventType::Info, "clock-stamps", stamps)
}

/// Counts the leader's allocations stamped more than a minute in the future, or more than a
/// minute before the run started (by the harness's clock).
async fn skewed_stamps(tb: &mut Testbed, st: &RunState) -> serde_json::Value {
    let started = tb.clocks.as_ref().map_or(0, |c| c.started_ms());
    let Some(leader) = tb.leader(st, Duration::from_secs(5)).await else { return json!({"read": false}) };
    let crate::harness::rpc::Answer::Ok(all) = st.clients.all_allocations(leader, true).await else {
        return json!({"read": false});
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let ahead = all.iter().filter(|a| a.since_ms > now + 60_000).count();
    let behind = all.iter().filter(|a| a.since_ms + 60_000 < started).count();
    json!({"read": true, "allocations": all.len(), "ahead": ahead, "behind": behind})
}
