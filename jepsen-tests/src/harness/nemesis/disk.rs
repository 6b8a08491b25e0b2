//! Disk faults on the power-loss filesystem (every node's data directory is a lazyfs mount,
//! [`crate::harness::disks`]): a power cut of every node at once (kill -9 them all, drop what
//! they did not fsync, start them again), and slow fsyncs on the leader, one follower or every
//! node.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use crate::harness::disks::Disks;
use crate::harness::heal::{heal, HealMoment};
use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// Slowest fsync a slow-disk episode sets (ms).
pub const MAX_FSYNC_DELAY_MS: u64 = 500;

fn disks(tb: &Testbed) -> anyhow::Result<&Disks> {
    tb.disks.as_ref().context("disk faults need the lazyfs mounts (the run sets them up for power-loss and slow-disk)")
}

/// Power cut of every member at once: SIGKILL all of them, cut every disk (un-fsynced writes and
/// namespace changes are gone), power off for about half the hold, then start them all again.
/// Records `power-cut` (invoke, then `ok` with what each disk lost, or `info` with the errors
/// when a disk refused the cut) and `restart`.
pub async fn power_loss(tb: &mut Testbed, st: &RunState, hold: Duration, _rng: &mut Rng) -> anyhow::Result<()> {
    disks(tb)?;
    let nodes: Vec<u64> = tb.members().into_iter().filter(|id| !tb.parked.contains(id)).collect();
    st.note(EventType::Invoke, "power-cut", json!({"nodes": nodes}))?;
    for id in &nodes {
        tb.kill(*id);
    }
    let cuts = disks(tb)?.cut(&nodes).await;
    let mut dropped_bytes = BTreeMap::new();
    let mut dropped_files = BTreeMap::new();
    let mut undone = BTreeMap::new();
    let mut errors = Vec::new();
    for (id, cut) in cuts {
        match cut {
            Ok(r) => {
                dropped_bytes.insert(id, r.dropped_bytes);
                dropped_files.insert(id, r.dropped_files);
                undone.insert(id, r.undone.len());
                errors.extend(r.errors.into_iter().map(|e| format!("node {id}: {e}")));
            }
            Err(e) => errors.push(format!("node {id}: {e:#}")),
        }
    }
    let kind = if errors.is_empty() { EventType::Ok } else { EventType::Info };
    let value = json!({"nodes": nodes, "dropped_bytes": dropped_bytes, "dropped_files": dropped_files,
        "undone": undone, "errors": errors});
    st.note(kind, "power-cut", value)?;
    tokio::time::sleep(hold / 2).await;
    st.note(EventType::Invoke, "restart", json!({"nodes": nodes}))?;
    for id in &nodes {
        tb.restart(*id, None)?;
    }
    st.note(EventType::Ok, "restart", json!({"nodes": nodes}))
}

/// The fsyncs (file and directory) a disk has seen.
fn fsyncs(disks: &Disks, id: u64) -> Option<u64> {
    disks.status(id).ok().map(|s| s.fsyncs + s.fdatasyncs + s.fsyncdirs)
}

/// Delays every fsync by 50–500 ms on the leader, one follower or every member for `hold`, then
/// heals. Records `slow-disk` (invoke/ok: target, nodes, `delay_ms`), then `slow-disk` info with
/// the fsyncs each disk served meanwhile (the delay was felt), then `heal`.
pub async fn slow_disk(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    disks(tb)?;
    let target = *rng.pick(&["leader", "follower", "all"]).expect("non-empty");
    let leader = tb.leader(st, Duration::from_secs(2)).await;
    let serving = tb.serving();
    let nodes: Vec<u64> = match (target, leader) {
        ("leader", Some(l)) => vec![l],
        ("follower", Some(l)) => {
            rng.pick(&serving.iter().copied().filter(|id| *id != l).collect::<Vec<_>>()).into_iter().copied().collect()
        }
        _ => serving.clone(),
    };
    let target = if nodes == serving { "all" } else { target };
    let delay_ms = rng.between(50, MAX_FSYNC_DELAY_MS);
    let value = json!({"target": target, "nodes": nodes, "delay_ms": delay_ms});
    st.note(EventType::Invoke, "slow-disk", value.clone())?;
    let mounts = tb.disks.as_mut().context("checked above")?;
    let before: BTreeMap<u64, Option<u64>> = nodes.iter().map(|id| (*id, fsyncs(mounts, *id))).collect();
    for id in &nodes {
        mounts.set_delay(*id, Duration::from_millis(delay_ms))?;
    }
    st.note(EventType::Ok, "slow-disk", value)?;
    tokio::time::sleep(hold).await;
    let mounts = disks(tb)?;
    let served: BTreeMap<u64, Option<u64>> =
        before.iter().map(|(id, b)| (*id, fsyncs(mounts, *id).zip(*b).map(|(a, b)| a.saturating_sub(b)))).collect();
    st.note(EventType::Info, "slow-disk", json!({"nodes": nodes, "delay_ms": delay_ms, "fsyncs_served": served}))?;
    heal(tb, st, HealMoment::Episode)
}
