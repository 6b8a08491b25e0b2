//! Storage faults: a follower kept away until the leader compacted its log past it (it must
//! catch up by installing a snapshot), and crashes around the Raft log flush through the node's
//! failpoints (raft-store's `failpoints` feature).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::heal::{heal, HealMoment};
use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// Failpoints a flush-crash episode picks from (see raft-store's `failpoints` feature).
pub const FLUSH_FAILPOINTS: [&str; 3] = ["log-flush-before", "log-flush-after", "log-append-unflushed"];

/// Isolates a follower until the leader took a snapshot well past it, heals, and records whether
/// it caught up by installing a snapshot. The absence lasts until the leader compacted (bounded:
/// 60 s), not `hold`.
pub async fn snapshot_catchup(tb: &mut Testbed, st: &RunState, _hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let Some(leader) = tb.leader(st, Duration::from_secs(3)).await else { return Ok(()) };
    let followers: Vec<u64> = tb.serving().into_iter().filter(|id| *id != leader).collect();
    let Some(f) = rng.pick(&followers).copied() else { return Ok(()) };
    let Some(from) = st.clients.local_status(f).await.map(|s| s.applied_index) else { return Ok(()) };
    let installs_before = tb.nodes.log_count(f, "installed a snapshot");
    let others: Vec<u64> = tb.members().into_iter().filter(|id| *id != f).collect();
    st.note(EventType::Invoke, "partition", json!({"kind": "snapshot", "groups": [[f], others]}))?;
    tb.lab.partition(&[f], &others)?;
    st.note(EventType::Ok, "partition", json!({"kind": "snapshot", "groups": [[f], others]}))?;
    let started = Instant::now();
    let mut snapshot = 0;
    while started.elapsed() < Duration::from_secs(60) {
        let l = tb.leader(st, Duration::from_secs(2)).await;
        if let Some(s) = match l {
            Some(l) => st.clients.local_status(l).await,
            None => None,
        } {
            snapshot = s.snapshot_index;
            if snapshot > from + 20 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    heal(tb, st, HealMoment::Episode)?;
    let lag = tb.caught_up(st, f, Duration::from_secs(30)).await;
    let installed = tb.nodes.log_count(f, "installed a snapshot") > installs_before;
    let value = json!({"node": f, "applied_before": from, "leader_snapshot": snapshot, "installed_snapshot": installed,
        "away_ms": started.elapsed().as_millis() as u64, "caught_up_ms": lag.map(|d| d.as_millis() as u64)});
    st.note(EventType::Info, "snapshot-catchup", value)
}

/// Restarts a voter with a failpoint that aborts it around the log flush, waits for the crash
/// (bounded), then restarts it without failpoints.
pub async fn flush_crash(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let voters: Vec<u64> = tb.serving().into_iter().filter(|id| tb.voters.contains(id)).collect();
    let Some(v) = rng.pick(&voters).copied() else { return Ok(()) };
    let point = *rng.pick(&FLUSH_FAILPOINTS).expect("non-empty");
    let spec = format!("{point}=5%return");
    let enabled_before = tb.nodes.log_count(v, "failpoints enabled");
    st.note(EventType::Invoke, "flush-crash", json!({"node": v, "failpoints": spec}))?;
    tb.kill(v);
    tb.restart(v, Some(&spec))?;
    st.note(EventType::Ok, "flush-crash", json!({"node": v, "failpoints": spec}))?;
    let started = Instant::now();
    let bound = (hold * 3).max(Duration::from_secs(15));
    let mut crashed = false;
    while started.elapsed() < bound {
        if tb.nodes.exited(v).is_some() {
            crashed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let supported = tb.nodes.log_count(v, "failpoints enabled") > enabled_before;
    tb.failpoints = Some(tb.failpoints.unwrap_or(false) || supported);
    if !crashed {
        tb.kill(v);
    } else {
        tb.down.insert(v);
    }
    let value = json!({"node": v, "failpoint": point, "crashed": crashed, "after_ms": started.elapsed().as_millis() as u64,
        "failpoints_compiled_in": supported});
    st.note(EventType::Info, "crash", value)?;
    st.note(EventType::Invoke, "restart", json!({"nodes": [v]}))?;
    tb.restart(v, None)?;
    st.note(EventType::Ok, "restart", json!({"nodes": [v]}))
}
