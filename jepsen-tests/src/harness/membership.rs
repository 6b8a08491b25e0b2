//! The nemeses that change who is in the cluster or how a node rejoins it: membership changes
//! under load (add a learner, promote it, remove or replace a voter), catch-up by snapshot after
//! a long absence, and crashes around the log flush through failpoints.

use std::time::{Duration, Instant};

use proto::ipam as pb;
use serde_json::json;

use super::client::RunState;
use super::nemesis::{heal, note};
use super::netns::{node_addr, MAX_NODE_ID};
use super::rpc::Answer;
use super::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// Failpoints a flush-crash episode picks from (see raft-store's `failpoints` feature).
pub const FLUSH_FAILPOINTS: [&str; 3] = ["log-flush-before", "log-flush-after", "log-append-unflushed"];

/// Sends a membership call to serving members until one answers definitely (bounded: 20 s).
async fn admin<F, Fut>(tb: &mut Testbed, st: &RunState, call: F) -> String
where
    F: Fn(proto::ipam::ipam_client::IpamClient<tonic::transport::Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<pb::MembershipResponse>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::from("no member to ask");
    for round in 0..200u64 {
        let serving = tb.serving();
        let Some(id) = serving.get(round as usize % serving.len().max(1)).copied() else { break };
        let fut = call(st.clients.get(id));
        match tokio::time::timeout(Duration::from_secs(6), fut).await {
            Ok(Ok(_)) => return "ok".into(),
            Ok(Err(s)) => match super::rpc::classify::<()>(&s) {
                Answer::Refused(r) => return format!("refused: {r}: {}", s.message()),
                _ => last = format!("{:?}: {}", s.code(), s.message()),
            },
            Err(_) => last = "client deadline".into(),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    format!("unknown: {last}")
}

/// Reads the membership from the leader (linearizable `Status`) into the testbed.
async fn refresh(tb: &mut Testbed, st: &RunState) -> bool {
    for round in 0..50usize {
        let serving = tb.serving();
        let Some(id) = serving.get(round % serving.len().max(1)).copied() else { return false };
        let msg = pb::StatusRequest { local: false };
        let answer =
            st.clients.call(id, Duration::from_secs(3), msg, |mut c, r| async move { c.status(r).await }).await;
        if let Answer::Ok(s) = answer {
            if !s.members.is_empty() {
                tb.voters = s.members.iter().filter(|m| m.voter).map(|m| m.id).collect();
                tb.learners = s.members.iter().filter(|m| !m.voter).map(|m| m.id).collect();
                tb.publish_targets(st);
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Waits (bounded) until node `id` applied at least what the leader had applied when asked.
async fn caught_up(tb: &mut Testbed, st: &RunState, id: u64, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let leader = tb.leader(st, Duration::from_secs(3)).await?;
    let target = st.clients.local_status(leader).await?.applied_index;
    while started.elapsed() < within {
        if st.clients.local_status(id).await.is_some_and(|s| s.applied_index >= target) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Takes a member out of the cluster for good: removes it, kills it, deletes its namespace.
async fn remove(tb: &mut Testbed, st: &RunState, id: u64) -> anyhow::Result<()> {
    note(st, EventType::Invoke, "remove", json!({"node": id}))?;
    let result = admin(tb, st, |mut c| async move { c.remove_node(pb::RemoveNodeRequest { id }).await }).await;
    refresh(tb, st).await;
    let gone = !tb.voters.contains(&id) && !tb.learners.contains(&id);
    let kind = if gone { EventType::Ok } else { EventType::Info };
    note(st, kind, "remove", json!({"node": id, "result": result, "voters": tb.voters}))?;
    if gone {
        tb.nodes.forget(id);
        tb.lab.remove_node(id);
        tb.down.remove(&id);
    }
    Ok(())
}

/// Adds a fresh node as a learner; then either promotes it and removes another voter (a
/// replacement, 70 %), or removes the learner again.
pub async fn change(tb: &mut Testbed, st: &RunState, rng: &mut Rng) -> anyhow::Result<()> {
    let id = tb.next_id;
    if id > MAX_NODE_ID {
        return Ok(());
    }
    tb.next_id += 1;
    let replace = rng.chance(70);
    tb.lab.add_node(id)?;
    tb.joined.insert(id);
    tb.nodes.start(id, true, None)?;
    let addr = node_addr(id);
    note(st, EventType::Invoke, "add-learner", json!({"node": id, "addr": addr}))?;
    let a = addr.clone();
    let result = admin(tb, st, move |mut c| {
        let addr = a.clone();
        async move { c.add_learner(pb::AddLearnerRequest { id, addr }).await }
    })
    .await;
    refresh(tb, st).await;
    let joined = tb.learners.contains(&id) || tb.voters.contains(&id);
    note(
        st,
        if joined { EventType::Ok } else { EventType::Info },
        "add-learner",
        json!({"node": id, "result": result}),
    )?;
    if !joined {
        tb.nodes.forget(id);
        tb.lab.remove_node(id);
        return Ok(());
    }
    let lag = caught_up(tb, st, id, Duration::from_secs(20)).await;
    if !replace {
        return remove(tb, st, id).await;
    }
    note(st, EventType::Invoke, "promote", json!({"node": id, "caught_up_ms": lag.map(|d| d.as_millis() as u64)}))?;
    let result = admin(tb, st, |mut c| async move { c.promote(pb::PromoteRequest { id }).await }).await;
    refresh(tb, st).await;
    let promoted = tb.voters.contains(&id);
    note(st, if promoted { EventType::Ok } else { EventType::Info }, "promote", json!({"node": id, "result": result}))?;
    let others: Vec<u64> = tb.voters.iter().copied().filter(|v| *v != id).collect();
    let old = if promoted { rng.pick(&others).copied() } else { Some(id) };
    match old {
        Some(old) => remove(tb, st, old).await,
        None => Ok(()),
    }
}

/// Isolates a follower until the leader took a snapshot well past it, heals, and records whether
/// it caught up by installing a snapshot.
pub async fn snapshot_catchup(tb: &mut Testbed, st: &RunState, rng: &mut Rng) -> anyhow::Result<()> {
    let Some(leader) = tb.leader(st, Duration::from_secs(3)).await else { return Ok(()) };
    let followers: Vec<u64> = tb.serving().into_iter().filter(|id| *id != leader).collect();
    let Some(f) = rng.pick(&followers).copied() else { return Ok(()) };
    let Some(from) = st.clients.local_status(f).await.map(|s| s.applied_index) else { return Ok(()) };
    let installs_before = tb.nodes.log_count(f, "installed a snapshot");
    let others: Vec<u64> = tb.members().into_iter().filter(|id| *id != f).collect();
    note(st, EventType::Invoke, "partition", json!({"kind": "snapshot", "groups": [[f], others]}))?;
    tb.lab.partition(&[f], &others)?;
    note(st, EventType::Ok, "partition", json!({"kind": "snapshot", "groups": [[f], others]}))?;
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
    heal(tb, st)?;
    let lag = caught_up(tb, st, f, Duration::from_secs(30)).await;
    let installed = tb.nodes.log_count(f, "installed a snapshot") > installs_before;
    let value = json!({"node": f, "applied_before": from, "leader_snapshot": snapshot, "installed_snapshot": installed,
        "away_ms": started.elapsed().as_millis() as u64, "caught_up_ms": lag.map(|d| d.as_millis() as u64)});
    note(st, EventType::Info, "snapshot-catchup", value)
}

/// Restarts a voter with a failpoint that aborts it around the log flush, waits for the crash
/// (bounded), then restarts it without failpoints.
pub async fn flush_crash(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let voters: Vec<u64> = tb.serving().into_iter().filter(|id| tb.voters.contains(id)).collect();
    let Some(v) = rng.pick(&voters).copied() else { return Ok(()) };
    let point = *rng.pick(&FLUSH_FAILPOINTS).expect("non-empty");
    let spec = format!("{point}=5%return");
    let enabled_before = tb.nodes.log_count(v, "failpoints enabled");
    note(st, EventType::Invoke, "flush-crash", json!({"node": v, "failpoints": spec}))?;
    tb.kill(v);
    tb.restart(v, Some(&spec))?;
    note(st, EventType::Ok, "flush-crash", json!({"node": v, "failpoints": spec}))?;
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
    note(st, EventType::Info, "crash", value)?;
    note(st, EventType::Invoke, "restart", json!({"nodes": [v]}))?;
    tb.restart(v, None)?;
    note(st, EventType::Ok, "restart", json!({"nodes": [v]}))
}
