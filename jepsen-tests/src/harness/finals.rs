//! The end of a run: heal every fault ([`heal`]), wait until every member applied the same log
//! index (recorded as `converge`, which the checker requires), ask for the cluster version and
//! every member's stored formats (recorded as `cluster-version`), then read each member's own
//! state machine (`ListAllocations` with `local`) and one linearizable table through the leader,
//! all recorded as final reads.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use proto::ipam as pb;

use super::heal::{heal, HealMoment};
use super::rpc::Answer;
use super::run_state::RunState;
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
    /// The cluster version a member reported at the end (`None`: none answered, e.g. every
    /// member runs release 0.1.0).
    pub cluster_version: Option<u32>,
    /// In a mixed-version run, the build each member ended on.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub builds: BTreeMap<u64, &'static str>,
}

/// How long the members have to agree after the load stopped.
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

/// Each member's last answer (leader, applied index; `None`: it did not answer).
type Seen = BTreeMap<u64, Option<(Option<u64>, u64)>>;

/// Waits (bounded by `within`) until every member answers with one leader and one applied
/// index, twice in a row; returns that index (if they agreed) and what each member said last.
async fn converge(tb: &mut Testbed, st: &RunState, within: Duration) -> (Option<u64>, Seen) {
    let started = Instant::now();
    let mut previous: Option<u64> = None;
    let mut seen = Seen::new();
    while started.elapsed() < within {
        seen.clear();
        for id in tb.members() {
            seen.insert(id, st.clients.local_status(id).await.map(|s| (s.leader_id, s.applied_index)));
        }
        let answers: Vec<(Option<u64>, u64)> = seen.values().map_while(|a| *a).collect();
        let agreed = answers.len() == seen.len()
            && answers.windows(2).all(|w| w[0] == w[1])
            && answers.first().is_some_and(|(l, _)| l.is_some());
        match (agreed, answers.first()) {
            (true, Some((_, index))) if previous == Some(*index) => return (Some(*index), seen),
            (true, Some((_, index))) => previous = Some(*index),
            _ => previous = None,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (None, seen)
}

/// Records `converge` (info): whether the members agreed, and each one's last answer.
fn record_convergence(st: &RunState, index: Option<u64>, seen: &Seen, after: Duration) -> anyhow::Result<()> {
    let members: BTreeMap<String, serde_json::Value> = seen
        .iter()
        .map(|(id, a)| {
            let v = a.map_or(json!(null), |(leader, applied)| json!({"leader": leader, "applied_index": applied}));
            (id.to_string(), v)
        })
        .collect();
    let value = json!({"converged": index.is_some(), "applied_index": index, "after_ms": after.as_millis() as u64,
        "within_ms": CONVERGE_WITHIN.as_millis() as u64, "members": members});
    st.note(EventType::Info, "converge", value)
}

/// Asks the members in turn for the cluster version (`ClusterVersion`, which release 0.1.0 does
/// not serve) and records the first answer as `cluster-version` (info): the version and each
/// member's release and the newest formats in its log and snapshot. Returns the version.
async fn record_cluster_version(tb: &mut Testbed, st: &RunState) -> anyhow::Result<Option<u32>> {
    let (version, value) = st.clients.versions(&tb.serving()).await;
    st.note(EventType::Info, "cluster-version", value)?;
    Ok(version)
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
    heal(tb, st, HealMoment::BeforeFinalReads)?;
    let started = Instant::now();
    // A call a node accepted before the clients stopped ends within the nodes' request timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (index, seen) = converge(tb, st, CONVERGE_WITHIN).await;
    record_convergence(st, index, &seen, started.elapsed())?;
    let cluster_version = record_cluster_version(tb, st).await?;
    let builds = match tb.builds {
        Some(_) => tb.members().into_iter().map(|id| (id, tb.build(id).name())).collect(),
        None => BTreeMap::new(),
    };
    let mut finals = Finals {
        converged_ms: index.map(|_| started.elapsed().as_millis() as u64),
        applied_index: index.unwrap_or(0),
        members: tb.members(),
        reads_ok: 0,
        cluster_version,
        builds,
    };
    if index.is_none() {
        tracing::warn!(?seen, "members did not converge within 120 s; reading anyway");
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
