//! The fault schedule: one fault episode at a time (inject, hold, heal), separated by quiet
//! periods, cycling through the selected fault families in a seeded random order. Every step is
//! recorded in the history with `"process":"nemesis"`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::RunState;
use super::membership;
use super::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// A fault family (`--nemesis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// kill -9 one node, the leader, a majority or every node; restart after the hold.
    Kill,
    /// SIGSTOP one node or the leader; SIGCONT after the hold.
    Pause,
    /// nftables partitions: isolate the leader, majority/minority, or a bridge.
    Partition,
    /// Random packet loss (`numgen random mod 100 < N drop`) on every node.
    Drop,
    /// Keep a follower away until the leader compacted its log past it: it must catch up by snapshot.
    Snapshot,
    /// Membership changes under load: add a learner, promote it, remove (replace) a voter.
    Membership,
    /// Restart a node with a failpoint that aborts it around the log flush, then restart it clean.
    FlushCrash,
}

/// Every fault family, in the order `all` lists them.
pub const ALL: [Fault; 7] =
    [Fault::Kill, Fault::Pause, Fault::Partition, Fault::Drop, Fault::Snapshot, Fault::Membership, Fault::FlushCrash];

impl Fault {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::Drop => "drop",
            Fault::Snapshot => "snapshot",
            Fault::Membership => "membership",
            Fault::FlushCrash => "flush-crash",
        }
    }
}

/// Parses `--nemesis`: a comma-separated list of families, `all`, or `none`.
pub fn parse_faults(text: &str) -> Result<Vec<Fault>, String> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "all" | "mixed" => out.extend(ALL),
            "none" => {}
            w => out.push(*ALL.iter().find(|f| f.name() == w).ok_or_else(|| {
                let names: Vec<&str> = ALL.iter().map(|f| f.name()).collect();
                format!("unknown nemesis {w:?} (expected all, none or {})", names.join(", "))
            })?),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The selected fault families (`--nemesis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultList(pub Vec<Fault>);

/// [`parse_faults`] for clap.
pub fn parse_fault_list(text: &str) -> Result<FaultList, String> {
    parse_faults(text).map(FaultList)
}

/// Timing of the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Mean quiet time between episodes.
    pub interval: Duration,
    /// Mean time a fault is held.
    pub hold: Duration,
}

/// Records a nemesis event (the history writer only fails on I/O; a failed write aborts the run).
pub fn note(st: &RunState, kind: EventType, f: &str, value: serde_json::Value) -> anyhow::Result<()> {
    st.history.nemesis(kind, f, value)?;
    Ok(())
}

/// Sleeps about `mean` (½–1½×), in short steps; returns early when `until` passes.
pub async fn jitter_sleep(rng: &mut Rng, mean: Duration, until: Instant) {
    let ms = mean.as_millis() as u64;
    let end = Instant::now() + Duration::from_millis(rng.between(ms / 2, ms + ms / 2));
    while Instant::now() < end.min(until) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs episodes until the clients stop or `until`; returns episodes per family.
pub async fn run(
    tb: &mut Testbed,
    st: &RunState,
    faults: &[Fault],
    timing: Timing,
    rng: &mut Rng,
    until: Instant,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut done: BTreeMap<String, u64> = BTreeMap::new();
    let mut order: Vec<Fault> = Vec::new();
    // Faults stop before the last tenth of the operations: those run after the final heal.
    let active = || {
        !st.stop.load(Ordering::Relaxed)
            && Instant::now() < until
            && st.invoked.load(Ordering::Relaxed) < st.max_ops / 10 * 9
    };
    while active() && !faults.is_empty() {
        jitter_sleep(rng, timing.interval, until).await;
        if !active() {
            break;
        }
        if order.is_empty() {
            order = faults.to_vec();
            rng.shuffle(&mut order);
        }
        let fault = order.pop().expect("refilled above");
        let hold = Duration::from_millis(
            rng.between(timing.hold.as_millis() as u64 / 2, timing.hold.as_millis() as u64 * 3 / 2),
        );
        episode(tb, st, fault, hold, rng).await?;
        *done.entry(fault.name().to_string()).or_default() += 1;
    }
    Ok(done)
}

async fn episode(tb: &mut Testbed, st: &RunState, fault: Fault, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    tracing::info!(fault = fault.name(), hold_ms = hold.as_millis() as u64, "nemesis episode");
    match fault {
        Fault::Kill => kill(tb, st, hold, rng).await,
        Fault::Pause => pause(tb, st, hold, rng).await,
        Fault::Partition => partition(tb, st, hold, rng).await,
        Fault::Drop => drop_packets(tb, st, hold, rng).await,
        Fault::Snapshot => membership::snapshot_catchup(tb, st, rng).await,
        Fault::Membership => membership::change(tb, st, rng).await,
        Fault::FlushCrash => membership::flush_crash(tb, st, hold, rng).await,
    }
}

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

async fn kill(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
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
    note(st, EventType::Invoke, "kill", json!({"target": target, "nodes": nodes}))?;
    for id in &nodes {
        tb.kill(*id);
    }
    note(st, EventType::Ok, "kill", json!({"target": target, "nodes": nodes}))?;
    tokio::time::sleep(hold).await;
    note(st, EventType::Invoke, "restart", json!({"nodes": nodes}))?;
    for id in &nodes {
        tb.restart(*id, None)?;
    }
    note(st, EventType::Ok, "restart", json!({"nodes": nodes}))
}

async fn pause(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let target = *rng.pick(&["one", "leader"]).expect("non-empty");
    let Some(id) = victim(tb, st, target == "leader", rng).await else { return Ok(()) };
    note(st, EventType::Invoke, "pause", json!({"target": target, "nodes": [id]}))?;
    tb.nodes.pause(id)?;
    note(st, EventType::Ok, "pause", json!({"target": target, "nodes": [id]}))?;
    tokio::time::sleep(hold).await;
    note(st, EventType::Invoke, "resume", json!({"nodes": [id]}))?;
    tb.nodes.resume(id)?;
    note(st, EventType::Ok, "resume", json!({"nodes": [id]}))
}

/// Two sides of a partition of `members`: the leader alone, a random minority, or (`bridge`)
/// two halves that both still reach one bridge node, which is in neither list.
pub fn split(kind: &str, members: &[u64], leader: Option<u64>, rng: &mut Rng) -> (Vec<u64>, Vec<u64>) {
    let mut m = members.to_vec();
    rng.shuffle(&mut m);
    match (kind, leader) {
        ("leader", Some(l)) => (vec![l], m.into_iter().filter(|x| *x != l).collect()),
        ("bridge", _) if m.len() >= 3 => {
            let rest = m.split_off(1);
            let half = rest.len() / 2;
            (rest[..half].to_vec(), rest[half..].to_vec())
        }
        _ => {
            let minority = (m.len().saturating_sub(1) / 2).max(1);
            let majority = m.split_off(minority);
            (m, majority)
        }
    }
}

async fn partition(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let kind = *rng.pick(&["leader", "halves", "bridge"]).expect("non-empty");
    let leader = if kind == "leader" { tb.leader(st, Duration::from_secs(2)).await } else { None };
    let (a, b) = split(kind, &tb.members(), leader, rng);
    note(st, EventType::Invoke, "partition", json!({"kind": kind, "groups": [a, b]}))?;
    tb.lab.partition(&a, &b)?;
    note(st, EventType::Ok, "partition", json!({"kind": kind, "groups": [a, b]}))?;
    tokio::time::sleep(hold).await;
    heal(tb, st)
}

/// Removes every nftables rule, recording `heal`.
pub fn heal(tb: &mut Testbed, st: &RunState) -> anyhow::Result<()> {
    note(st, EventType::Invoke, "heal", json!({}))?;
    tb.lab.heal_all()?;
    note(st, EventType::Ok, "heal", json!({}))
}

async fn drop_packets(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let percent = rng.between(10, 40) as u8;
    let nodes = tb.members();
    note(st, EventType::Invoke, "drop", json!({"percent": percent, "nodes": nodes}))?;
    for id in &nodes {
        let mut f = tb.lab.faults(*id);
        f.drop_percent = percent;
        tb.lab.set_faults(*id, f)?;
    }
    note(st, EventType::Ok, "drop", json!({"percent": percent, "nodes": nodes}))?;
    tokio::time::sleep(hold).await;
    heal(tb, st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists_parse() {
        assert_eq!(parse_faults("all").unwrap().len(), ALL.len());
        assert_eq!(parse_faults("kill,pause,kill").unwrap(), vec![Fault::Kill, Fault::Pause]);
        assert!(parse_faults("none").unwrap().is_empty());
        assert!(parse_faults("meteor").is_err());
    }

    #[test]
    fn splits_are_partitions() {
        let mut rng = Rng::new(5);
        let members = [0, 1, 2, 3, 4];
        let (a, b) = split("leader", &members, Some(3), &mut rng);
        assert_eq!(a, vec![3]);
        assert_eq!(b.len(), 4);
        let (a, b) = split("halves", &members, None, &mut rng);
        assert_eq!((a.len(), b.len()), (2, 3));
        let (a, b) = split("bridge", &members, None, &mut rng);
        assert_eq!((a.len(), b.len()), (2, 2), "one node bridges both sides");
        let (a, b) = split("halves", &[0, 1, 2], None, &mut rng);
        assert_eq!((a.len(), b.len()), (1, 2));
    }
}
