//! Membership calls to the cluster, for every nemesis that changes who is a member (the
//! `membership` family, the repair of a wiped node): a call sent to serving members until one
//! answers definitely, and the membership read back from the leader into the testbed.
//!
//! The harness names a node by its ordinal (its namespace, process and data directory); the
//! cluster's Raft ids add an incarnation (`raft_store::types::node_id`): a node that lost its
//! data directory rejoins under a new one. [`refresh`] maps the membership back to ordinals and
//! remembers each ordinal's Raft ids, which [`remove_node`] removes.

use std::future::Future;
use std::time::{Duration, Instant};

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tonic::transport::Channel;

use raft_store::types::ordinal;

use super::rpc::{classify, Answer};
use super::run_state::RunState;
use super::testbed::Testbed;

/// Sends a membership call to serving members until one answers definitely (bounded: 20 s);
/// returns `ok`, `refused: …` or `unknown: …`.
pub async fn admin<F, Fut>(tb: &mut Testbed, st: &RunState, call: F) -> String
where
    F: Fn(IpamClient<Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<pb::MembershipResponse>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::from("no member to ask");
    for round in 0..200u64 {
        let serving = tb.serving();
        let Some(id) = serving.get(round as usize % serving.len().max(1)).copied() else { break };
        let fut = call(st.clients.get(id));
        match tokio::time::timeout(Duration::from_secs(6), fut).await {
            Ok(Ok(_)) => return "ok".into(),
            Ok(Err(s)) => match classify::<()>(&s) {
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

/// Reads the membership from the leader (linearizable `Status`) into the testbed, as ordinals
/// (a node both a voter and, as its next incarnation, a learner counts as a voter); false when
/// no serving member answered (bounded: 50 rounds).
pub async fn refresh(tb: &mut Testbed, st: &RunState) -> bool {
    for round in 0..50usize {
        let serving = tb.serving();
        let Some(id) = serving.get(round % serving.len().max(1)).copied() else { return false };
        let msg = pb::StatusRequest { local: false };
        let answer =
            st.clients.call(id, Duration::from_secs(3), msg, |mut c, r| async move { c.status(r).await }).await;
        if let Answer::Ok(s) = answer {
            if !s.members.is_empty() {
                tb.voters = s.members.iter().filter(|m| m.voter).map(|m| ordinal(m.id)).collect();
                tb.learners = s.members.iter().filter(|m| !m.voter).map(|m| ordinal(m.id)).collect();
                tb.learners.retain(|id| !tb.voters.contains(id));
                tb.raft_ids.clear();
                for m in &s.members {
                    tb.raft_ids.entry(ordinal(m.id)).or_default().insert(m.id);
                }
                tb.publish_targets(st);
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// `RemoveNode` through [`admin`] of every Raft id of node `id` (ordinal) in the membership last
/// read (`id` itself when none is known); the answers, `ok` when every one was.
pub async fn remove_node(tb: &mut Testbed, st: &RunState, id: u64) -> String {
    let raft_ids: Vec<u64> = match tb.raft_ids.get(&id) {
        Some(ids) if !ids.is_empty() => ids.iter().copied().collect(),
        _ => vec![id],
    };
    let mut answers = Vec::new();
    for raft_id in raft_ids {
        let answer =
            admin(tb, st, |mut c| async move { c.remove_node(pb::RemoveNodeRequest { id: raft_id }).await }).await;
        answers.push(answer);
    }
    if answers.iter().all(|a| a == "ok") {
        "ok".into()
    } else {
        answers.join("; ")
    }
}

/// `AddLearner(id, addr)` through [`admin`].
pub async fn add_learner(tb: &mut Testbed, st: &RunState, id: u64, addr: &str) -> String {
    let addr = addr.to_string();
    admin(tb, st, move |mut c| {
        let addr = addr.clone();
        async move { c.add_learner(pb::AddLearnerRequest { id, addr }).await }
    })
    .await
}

/// `Promote(id)` through [`admin`].
pub async fn promote(tb: &mut Testbed, st: &RunState, id: u64) -> String {
    admin(tb, st, |mut c| async move { c.promote(pb::PromoteRequest { id, ..Default::default() }).await }).await
}
