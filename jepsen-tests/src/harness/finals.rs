//! The end of a run: heal every fault, wait until every member applied the same log index, then
//! read each member's own state machine (`ListAllocations` with `local`) and one linearizable
//! table through the leader, all recorded as final reads.

use std::time::{Duration, Instant};

use proto::ipam as pb;
use serde_json::json;

use super::client::RunState;
use super::nemesis::note;
use super::rpc::Answer;
use super::testbed::Testbed;
use crate::history::{EventType, FinalRead, FinalTable, Op, Process};

/// What the final phase measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Finals {
    /// Time from the end of the load until all members agreed on the applied index (ms), if they did.
    pub converged_ms: Option<u64>,
    /// The common applied index.
    pub applied_index: u64,
    /// Members read.
    pub members: Vec<u64>,
    /// Final reads that completed `ok`.
    pub reads_ok: usize,
}

/// Heals everything and records it (`heal`, and `restart` for members that were down).
pub fn heal_all(tb: &mut Testbed, st: &RunState) -> anyhow::Result<()> {
    note(st, EventType::Invoke, "heal", json!({"final": true}))?;
    let restarted = tb.heal_everything()?;
    note(st, EventType::Ok, "heal", json!({"final": true}))?;
    if !restarted.is_empty() {
        note(st, EventType::Invoke, "restart", json!({"nodes": restarted}))?;
        note(st, EventType::Ok, "restart", json!({"nodes": restarted}))?;
    }
    Ok(())
}

/// Waits (bounded by `within`) until every member answers with one leader and one applied
/// index, twice in a row; returns that index.
async fn converge(tb: &mut Testbed, st: &RunState, within: Duration) -> Option<u64> {
    let started = Instant::now();
    let mut previous: Option<u64> = None;
    while started.elapsed() < within {
        let mut seen = Vec::new();
        for id in tb.members() {
            match st.clients.local_status(id).await {
                Some(s) => seen.push((s.leader_id, s.applied_index)),
                None => seen.clear(),
            }
        }
        let agreed = seen.len() == tb.members().len()
            && seen.windows(2).all(|w| w[0] == w[1])
            && seen.first().is_some_and(|(l, _)| l.is_some());
        match (agreed, seen.first()) {
            (true, Some((_, index))) if previous == Some(*index) => return Some(*index),
            (true, Some((_, index))) => previous = Some(*index),
            _ => previous = None,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

fn table(allocations: Vec<pb::Allocation>) -> FinalTable {
    let mut t = FinalTable::default();
    for a in allocations {
        let (Ok(ip), Some(att)) = (a.ip.parse(), a.attachment) else { continue };
        t.insert(&a.network_name, ip, &format!("{}/{}", att.container_id, att.ifname));
    }
    t
}

async fn final_read(st: &RunState, process: u64, node: u64, local: bool) -> anyhow::Result<bool> {
    let p = Process::Client(process);
    st.history.record(p, EventType::Invoke, Some(node), Op::FinalRead(FinalRead::new()))?;
    let mut last = Answer::Unknown("no attempt".into());
    for _ in 0..20 {
        last = st.clients.all_allocations(node, local).await;
        if matches!(last, Answer::Ok(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ok = if let Answer::Ok(all) = last {
        st.history.record(
            p,
            EventType::Ok,
            Some(node),
            Op::FinalRead(FinalRead::new().with_allocations(table(all))),
        )?;
        true
    } else {
        st.history.record(p, EventType::Info, Some(node), Op::FinalRead(FinalRead::new()))?;
        false
    };
    Ok(ok)
}

/// Heals, waits for convergence, and records one local final read per member plus one
/// linearizable read; `first_process` numbers the reading processes (after the clients').
pub async fn finish(tb: &mut Testbed, st: &RunState, first_process: u64) -> anyhow::Result<Finals> {
    // Normally a no-op (the final heal happened under load); recorded if it did anything.
    let restarted = tb.heal_everything()?;
    if !restarted.is_empty() {
        note(st, EventType::Invoke, "restart", json!({"nodes": restarted}))?;
        note(st, EventType::Ok, "restart", json!({"nodes": restarted}))?;
    }
    let started = Instant::now();
    // A call a node accepted before the clients stopped ends within the nodes' request timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let index = converge(tb, st, Duration::from_secs(120)).await;
    let mut finals = Finals {
        converged_ms: index.map(|_| started.elapsed().as_millis() as u64),
        applied_index: index.unwrap_or(0),
        members: tb.members(),
        reads_ok: 0,
    };
    if index.is_none() {
        tracing::warn!("members did not converge within 120 s; reading anyway");
    }
    let mut process = first_process;
    for id in tb.members() {
        finals.reads_ok += usize::from(final_read(st, process, id, true).await?);
        process += 1;
    }
    let via = tb.leader(st, Duration::from_secs(10)).await.unwrap_or(finals.members[0]);
    finals.reads_ok += usize::from(final_read(st, process, via, false).await?);
    Ok(finals)
}
