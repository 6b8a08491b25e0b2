//! How a node with an empty data directory takes part in a cluster, safely.
//!
//! An empty directory is either a founder's first start or a member whose volume was lost. The
//! two look the same from inside, and the second is dangerous: a member that forgot its vote and
//! the entries it acknowledged must never vote or count toward a quorum under its old identity (a
//! stale node and a wiped one would otherwise elect each other and lose acknowledged writes). So
//! an empty founder (`--initial-cluster-state new`) first takes no part in Raft at all (its Raft
//! service refuses everything but `Describe`) and asks the other founders:
//!
//! - any founder's state machine applied a client write → the cluster has a history this node may
//!   have acknowledged and forgotten: it rejoins as a new incarnation of its ordinal (a Raft id
//!   nothing was ever addressed to; peers refuse messages for another id), added as a learner,
//!   caught up from the leader, then promoted in one membership change that removes its old
//!   incarnation;
//! - every other founder answered, none applied a write → no write was ever acknowledged (a write
//!   is acknowledged after the leader applied it, and the leader answered): bootstrap. Every
//!   founder initializes with the same membership (openraft allows that), so no single founder —
//!   node 0 or any other — is needed, and a founder that starts after the others bootstrapped
//!   joins under its own id;
//! - some founders are silent: bootstrap only if a majority (this node included) never took part
//!   in any cluster and the silent ones stayed silent for `--bootstrap-wait-ms` (a founder that
//!   never starts does not stop the others);
//! - otherwise it waits: it cannot tell a first start from a lost volume.

#[cfg(all(feature = "planted-bug-no-describe", not(debug_assertions)))]
compile_error!("planted-bug-no-describe is a test-only planted bug: never build it with optimizations/release");

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use openraft::error::{InitializeError, RaftError};
use openraft::BasicNode;
use proto::ipam as ipb;
use proto::raft as rpb;
use raft_store::types::{display_id, incarnation, node_id, ordinal, typ, NodeId};
use raft_store::LogStore;
use tokio::sync::watch;

pub use crate::raft_net::gate::Gate;
use crate::service::Context;
use crate::tls::Transport;

/// What an empty founder does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody has state: bootstrap the founding membership.
    Fresh,
    /// A cluster exists: come back as `id`, replacing the incarnations `replaces`.
    Rejoin {
        /// The new incarnation's Raft id.
        id: NodeId,
        /// Earlier incarnations of this ordinal in the membership.
        replaces: Vec<NodeId>,
    },
    /// Take part in Raft under this id without bootstrapping: another founder did already (and
    /// its membership has this node), or, for a joiner, the cluster does not know this ordinal
    /// yet (it waits to be added with `whereabouts-ctl add-learner`).
    AwaitAdd,
    /// Not enough answers yet (why, for the log).
    Wait(String),
}

/// Decides from the founders' answers (`None`: no answer) what empty founder `me` does, after
/// waiting `waited` of at most `wait` for the silent ones.
pub fn decide(
    me: u64,
    founders: usize,
    answers: &BTreeMap<u64, Option<rpb::DescribeResponse>>,
    waited: Duration,
    wait: Duration,
) -> Decision {
    let with_history = answers.values().flatten().filter(|a| a.has_writes).max_by_key(|a| a.term);
    if let Some(existing) = with_history {
        let replaces: Vec<NodeId> = existing.members.iter().map(|m| m.id).filter(|id| ordinal(*id) == me).collect();
        let next = replaces.iter().map(|id| incarnation(*id)).max().map_or(1, |i| i + 1);
        return Decision::Rejoin { id: node_id(me, next), replaces };
    }
    let heard = answers.values().flatten().count();
    if heard + 1 == founders {
        // Another founder bootstrapped already: take part under this id (the membership it wrote
        // has it), without initializing — a second bootstrap would start an election and
        // disturb the leader just elected.
        if answers.values().flatten().any(|a| !a.pristine) {
            return Decision::AwaitAdd;
        }
        return Decision::Fresh;
    }
    // A founder that bootstrapped a moment ago on its own wait (it saw the same majority of
    // empty founders) never saw an entry committed: it never was part of a quorum, so it counts
    // as never joined — or the others, seeing it no longer empty, would wait for the silent
    // founders forever while it waits for them.
    let never_joined_or_alone = |a: &&rpb::DescribeResponse| {
        a.pristine || (a.last_applied_index.is_none() && !a.has_writes && a.members.iter().all(|m| m.id < 1 << 32))
    };
    let never_joined = 1 + answers.values().flatten().filter(never_joined_or_alone).count();
    let joined = heard + 1 - never_joined;
    let majority = founders / 2 + 1;
    if joined == 0 && never_joined >= majority && waited >= wait {
        if answers.values().flatten().any(|a| !a.pristine) {
            // It initialized the founding membership already (with this node in it).
            return Decision::AwaitAdd;
        }
        return Decision::Fresh;
    }
    let silent: Vec<String> = answers.iter().filter(|(_, a)| a.is_none()).map(|(id, _)| id.to_string()).collect();
    let plan = if joined > 0 {
        "a founder has joined a cluster without writes yet: waiting for every founder to answer".to_string()
    } else if never_joined >= majority {
        format!("bootstrapping without them in {:?}", wait.saturating_sub(waited))
    } else {
        "waiting for a majority".to_string()
    };
    Decision::Wait(format!(
        "{never_joined} of {founders} founders never joined a cluster, no answer from node(s) {}; {plan}",
        silent.join(", ")
    ))
}

/// Decides what empty node `me` started with `--initial-cluster-state existing` does: rejoin as a
/// new incarnation if any member has its ordinal as a voter (its volume was lost after it joined);
/// else take part under its id (a learner's forgotten state counts for nothing: it never votes
/// and its acknowledgments never make a quorum) and wait to be added or promoted.
pub fn decide_existing(me: u64, answers: &BTreeMap<u64, Option<rpb::DescribeResponse>>) -> Decision {
    if answers.values().flatten().next().is_none() {
        return Decision::Wait("no member answered yet".into());
    }
    let replaces: Vec<NodeId> = answers
        .values()
        .flatten()
        .flat_map(|a| a.members.iter().filter(|m| m.voter).map(|m| m.id))
        .filter(|id| ordinal(*id) == me)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if replaces.is_empty() {
        return Decision::AwaitAdd;
    }
    let next = replaces.iter().map(|id| incarnation(*id)).max().map_or(1, |i| i + 1);
    Decision::Rejoin { id: node_id(me, next), replaces }
}

/// Asks one founder what it knows (bounded by a second). A founder on release 0.1.0 (no
/// `Describe`) counts as silent: it tells nothing of its state, so it never lets this node decide.
async fn describe(transport: &Transport, cluster: &str, addr: &str) -> Option<rpb::DescribeResponse> {
    crate::raft_net::admin::describe(transport, cluster, addr, Duration::from_secs(1)).await.ok()?.into_response()
}

/// What an empty founder needs to find out whether a cluster exists.
pub struct Discovery {
    /// This node's ordinal.
    pub me: u64,
    /// The cluster's name.
    pub cluster: String,
    /// The founding members (ordinal → address).
    pub founders: BTreeMap<u64, String>,
    /// How long to wait for silent founders once a majority is empty.
    pub wait: Duration,
    /// How to reach them.
    pub transport: Transport,
    /// `--initial-cluster-state existing`: this node joins a cluster that exists.
    pub existing: bool,
}

impl Discovery {
    /// Asks the other founders until a decision is possible (or `stop` turns true: `None`).
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Option<Decision> {
        let started = Instant::now();
        let mut last_log = None::<Instant>;
        loop {
            let mut asks = tokio::task::JoinSet::new();
            for (id, addr) in self.founders.iter().filter(|(id, _)| **id != self.me) {
                let (id, addr, transport, cluster) = (*id, addr.clone(), self.transport.clone(), self.cluster.clone());
                asks.spawn(async move { (id, describe(&transport, &cluster, &addr).await) });
            }
            let mut answers: BTreeMap<u64, Option<rpb::DescribeResponse>> = BTreeMap::new();
            while let Some(answer) = asks.join_next().await {
                if let Ok((id, a)) = answer {
                    answers.insert(id, a);
                }
            }
            let decision = if self.existing {
                decide_existing(self.me, &answers)
            } else {
                decide(self.me, self.founders.len(), &answers, started.elapsed(), self.wait)
            };
            match decision {
                Decision::Wait(why) => {
                    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                        tracing::info!(%why, "empty data directory: finding out whether a cluster exists");
                        last_log = Some(Instant::now());
                    }
                }
                decision => return Some(decision),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    }
}

/// Bootstraps the founding membership on this node (every founder may: the same config).
pub async fn initialize(raft: &typ::Raft, founders: &BTreeMap<u64, String>) -> anyhow::Result<()> {
    let nodes: BTreeMap<u64, BasicNode> =
        founders.iter().map(|(id, addr)| (*id, BasicNode::new(addr.clone()))).collect();
    match raft.initialize(nodes).await {
        Ok(()) => {
            tracing::info!(members = ?founders, "bootstrapped a new cluster");
            Ok(())
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            tracing::info!(reason = %e, "cluster already initialized");
            Ok(())
        }
        Err(e) => Err(e).context("cannot bootstrap the cluster"),
    }
}

/// Runs the decision of an empty founder: opens the gate and bootstraps, or records the new
/// incarnation and asks for a restart under it (`restart` gets the reason).
pub async fn settle(
    discovery: Discovery,
    ctx: Arc<Context>,
    log: LogStore,
    gate: Gate,
    stop: watch::Receiver<bool>,
    restart: watch::Sender<Option<String>>,
) {
    let stop_raise = stop.clone();
    // PLANTED BUG (test-only feature, never in release builds): decide without asking the peers,
    // as before issue 13's fix — the lowest founder bootstraps, every other empty node takes part
    // in Raft under its old id, so a wiped member votes with the state it forgot.
    #[cfg(feature = "planted-bug-no-describe")]
    let decision = {
        drop(stop);
        let lowest = discovery.founders.keys().next().copied();
        if !discovery.existing && lowest == Some(discovery.me) {
            Decision::Fresh
        } else {
            Decision::AwaitAdd
        }
    };
    #[cfg(not(feature = "planted-bug-no-describe"))]
    let Some(decision) = discovery.run(stop).await
    else {
        return;
    };
    match decision {
        Decision::Fresh => {
            gate.open();
            if let Err(e) = initialize(&ctx.raft, &discovery.founders).await {
                tracing::error!(error = format!("{e:#}"), "bootstrap failed");
            }
            // Whichever founder leads the new cluster raises its version (see the function).
            crate::service::cluster_version::raise_when_founded(&ctx, stop_raise).await;
        }
        Decision::AwaitAdd => {
            gate.open();
            tracing::info!(
                "a cluster exists without a history this node could have forgotten: taking part under this id"
            );
            if !discovery.existing {
                crate::service::cluster_version::raise_when_founded(&ctx, stop_raise).await;
            }
        }
        Decision::Rejoin { id, replaces } => {
            let old: Vec<String> = replaces.iter().map(|r| display_id(*r)).collect();
            tracing::warn!(
                new_id = %display_id(id),
                replaces = ?old,
                "empty data directory, but the cluster exists: this node's state was lost; rejoining as a new incarnation"
            );
            match log.record_rejoin(&discovery.cluster, id, &replaces) {
                Ok(()) => {
                    let _ = restart.send(Some(format!("rejoin as incarnation {}", display_id(id))));
                }
                Err(e) => tracing::error!(error = %e, "cannot record the new incarnation; staying out of Raft"),
            }
        }
        Decision::Wait(_) => unreachable!("run returns only decisions"),
    }
}

/// A new incarnation's way back in: ask for it to be added as a learner, wait until it has caught
/// up with the leader, then ask for its promotion replacing its earlier incarnations. Ends when
/// it is a voter (or at `stop`).
pub struct Rejoin {
    /// This node's (new) Raft id.
    pub id: NodeId,
    /// Its address as peers reach it.
    pub addr: String,
    /// Earlier incarnations to remove.
    pub replaces: Vec<NodeId>,
    /// Where to send the membership calls (any member forwards to the leader).
    pub members: Vec<String>,
    /// The node's log (to forget `replaces` once done).
    pub log: LogStore,
    /// The node's Raft and its clients of the other members' IPAM service.
    pub ctx: Arc<Context>,
}

impl Rejoin {
    /// Drives the rejoin until done or `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut next = 0usize;
        loop {
            let metrics = self.ctx.raft.metrics().borrow().clone();
            let membership = metrics.membership_config.membership();
            let voter = membership.voter_ids().any(|v| v == self.id);
            let gone = self.replaces.iter().all(|r| membership.get_node(r).is_none());
            if voter && gone {
                if let Err(e) = self.log.clear_replaces() {
                    tracing::warn!(error = %e, "cannot clear the rejoin marker");
                }
                tracing::info!(id = %display_id(self.id), "rejoined: this incarnation is a voter");
                return;
            }
            let addr = &self.members[next % self.members.len().max(1)];
            next += 1;
            let step = if membership.get_node(&self.id).is_none() {
                self.add_learner(addr).await
            } else {
                self.promote_if_caught_up(addr).await
            };
            if let Err(e) = step {
                tracing::info!(via = %addr, error = %e, "rejoin step did not complete yet; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn add_learner(&self, via: &str) -> Result<(), String> {
        let mut client = self.ctx.peers.client(via)?;
        let mut req = tonic::Request::new(ipb::AddLearnerRequest { id: self.id, addr: self.addr.clone() });
        req.set_timeout(Duration::from_secs(5));
        client.add_learner(req).await.map_err(|s| s.message().to_string())?;
        tracing::info!(id = %display_id(self.id), "added as a learner; catching up");
        Ok(())
    }

    async fn promote_if_caught_up(&self, via: &str) -> Result<(), String> {
        let mut client = self.ctx.peers.client(via)?;
        let mut req = tonic::Request::new(ipb::StatusRequest { local: false });
        req.set_timeout(Duration::from_secs(3));
        let leader = client.status(req).await.map_err(|s| s.message().to_string())?.into_inner();
        // Our own progress read after the leader's answer, so that both are of the same moment
        // or ours is the later one.
        let applied = self.ctx.raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        caught_up(applied, leader.applied_index)?;
        let mut req = tonic::Request::new(ipb::PromoteRequest { id: self.id, replaces: self.replaces.clone() });
        req.set_timeout(Duration::from_secs(5));
        client.promote(req).await.map_err(|s| s.message().to_string())?;
        Ok(())
    }
}

/// How far (in log entries) a rejoining learner may trail the leader and still be promoted. Under
/// steady writes the leader's log always moves while the learner's progress is read, so "fully
/// caught up" may never be seen; a new voter this close behind catches up within a heartbeat or
/// two, and the others form the quorum meanwhile (etcd promotes learners on a similar bound).
pub const PROMOTE_MAX_LAG: u64 = 1000;

/// `Ok` when a learner that applied `applied` may be promoted while the leader applied
/// `leader_applied`; otherwise why not.
fn caught_up(applied: u64, leader_applied: u64) -> Result<(), String> {
    if applied.saturating_add(PROMOTE_MAX_LAG) < leader_applied {
        return Err(format!("caught up to {applied} of {leader_applied} (more than {PROMOTE_MAX_LAG} entries behind)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learner_trailing_by_a_few_entries_is_caught_up() {
        // Seen failing with the rule before (applied >= leader's applied): under steady writes a
        // rejoining incarnation read "caught up to 5553 of 5554" again and again and stayed a
        // learner, so the next fault (one voter isolated) left no quorum (long chaos run, seed 2002).
        assert!(caught_up(5553, 5554).is_ok());
        assert!(caught_up(5554, 5554).is_ok());
        assert!(caught_up(5560, 5554).is_ok(), "ahead of a stale answer");
        assert!(caught_up(4554, 5554).is_ok());
        let far = caught_up(4553, 5554).unwrap_err();
        assert!(far.contains("4553 of 5554"), "{far}");
        assert!(caught_up(0, u64::MAX).is_err());
    }

    fn member(id: NodeId) -> rpb::DescribeMember {
        rpb::DescribeMember { id, addr: format!("n{id}:7000"), voter: true }
    }

    fn empty() -> Option<rpb::DescribeResponse> {
        Some(rpb::DescribeResponse { pristine: true, deciding: true, ..Default::default() })
    }

    fn with_state(term: u64, members: &[NodeId]) -> Option<rpb::DescribeResponse> {
        Some(rpb::DescribeResponse {
            term,
            last_log_index: Some(40),
            last_applied_index: Some(40),
            has_writes: true,
            members: members.iter().map(|id| member(*id)).collect(),
            ..Default::default()
        })
    }

    /// Bootstrapped, elected, no write yet.
    fn young(term: u64) -> Option<rpb::DescribeResponse> {
        Some(rpb::DescribeResponse {
            term,
            last_log_index: Some(1),
            last_applied_index: Some(1),
            members: [0, 1, 2].iter().map(|id| member(*id)).collect(),
            ..Default::default()
        })
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn all_founders_empty_is_a_new_cluster_at_once() {
        let answers = BTreeMap::from([(0, empty()), (2, empty())]);
        assert_eq!(decide(1, 3, &answers, Duration::ZERO, WAIT), Decision::Fresh);
    }

    #[test]
    fn a_majority_empty_bootstraps_without_the_silent_founder_after_the_wait() {
        // Node 0 never starts: nodes 1 and 2 form the cluster anyway (it used to be the only
        // one allowed to bootstrap).
        let answers = BTreeMap::from([(0, None), (2, empty())]);
        assert!(matches!(decide(1, 3, &answers, Duration::from_secs(3), WAIT), Decision::Wait(_)));
        assert_eq!(decide(1, 3, &answers, WAIT, WAIT), Decision::Fresh);
    }

    #[test]
    fn a_founder_that_bootstrapped_alone_on_its_wait_is_joined_not_waited_for() {
        // Node 2's wait ran out first: it initialized and waits for a vote; node 1 must join it
        // (both saw a majority of empty founders), not wait for node 0 forever.
        let alone = Some(rpb::DescribeResponse {
            term: 1,
            last_log_index: Some(0),
            members: [0, 1, 2].iter().map(|id| member(*id)).collect(),
            ..Default::default()
        });
        let answers = BTreeMap::from([(0, None), (2, alone.clone())]);
        assert!(matches!(decide(1, 3, &answers, Duration::from_secs(1), WAIT), Decision::Wait(_)));
        assert_eq!(decide(1, 3, &answers, WAIT, WAIT), Decision::AwaitAdd);
        // One that was part of a quorum (it applied the first leader's entry) may have lost
        // writes with this node's help: wait for node 0.
        let mut stale = alone;
        stale.as_mut().unwrap().last_applied_index = Some(1);
        let answers = BTreeMap::from([(0, None), (2, stale)]);
        assert!(matches!(decide(1, 3, &answers, Duration::from_secs(3600), WAIT), Decision::Wait(_)));
    }

    #[test]
    fn without_a_majority_it_waits_forever() {
        let answers = BTreeMap::from([(0, None), (2, None)]);
        assert!(matches!(decide(1, 3, &answers, Duration::from_secs(3600), WAIT), Decision::Wait(_)));
    }

    #[test]
    fn a_founder_with_state_means_this_node_lost_its_own() {
        // Node 1 wiped; node 2 stale; node 0 down: never a new cluster, and never the old id.
        let answers = BTreeMap::from([(0, None), (2, with_state(7, &[0, 1, 2]))]);
        assert_eq!(
            decide(1, 3, &answers, Duration::ZERO, WAIT),
            Decision::Rejoin { id: node_id(1, 1), replaces: vec![1] }
        );
        // Even with everyone else empty, one answer with state wins.
        let answers = BTreeMap::from([(0, empty()), (2, with_state(3, &[0, node_id(1, 4), 2]))]);
        assert_eq!(
            decide(1, 3, &answers, WAIT, WAIT),
            Decision::Rejoin { id: node_id(1, 5), replaces: vec![node_id(1, 4)] }
        );
    }

    #[test]
    fn a_late_founder_joins_a_cluster_without_writes_only_when_every_founder_answered() {
        // Nodes 0 and 2 bootstrapped a moment ago; node 1 starts a little later: it takes part
        // without bootstrapping again (which would start an election).
        let answers = BTreeMap::from([(0, young(1)), (2, young(1))]);
        assert_eq!(decide(1, 3, &answers, Duration::ZERO, WAIT), Decision::AwaitAdd);
        // With node 0 silent, node 2's view proves nothing (node 0 may have had writes acknowledged
        // with node 1's help): wait, however long.
        let answers = BTreeMap::from([(0, None), (2, young(1))]);
        assert!(matches!(decide(1, 3, &answers, Duration::from_secs(3600), WAIT), Decision::Wait(_)));
    }

    #[test]
    fn an_empty_joiner_replaces_its_earlier_incarnation_or_waits_to_be_added() {
        let answers = BTreeMap::from([(0, with_state(4, &[0, 1, 2, 3]))]);
        assert_eq!(decide_existing(3, &answers), Decision::Rejoin { id: node_id(3, 1), replaces: vec![3] });
        let answers = BTreeMap::from([(0, with_state(4, &[0, 1, 2])), (1, None)]);
        assert_eq!(decide_existing(3, &answers), Decision::AwaitAdd);
        // Added as a learner a moment ago (the operator's add-learner raced the start).
        let mut learner = with_state(4, &[0, 1, 2]);
        learner.as_mut().unwrap().members.push(rpb::DescribeMember { id: 3, addr: "n3:7000".into(), voter: false });
        assert_eq!(decide_existing(3, &BTreeMap::from([(0, learner)])), Decision::AwaitAdd);
        assert!(matches!(decide_existing(3, &BTreeMap::from([(0, None)])), Decision::Wait(_)));
    }

    #[test]
    fn a_removed_member_comes_back_as_a_new_incarnation_replacing_nothing() {
        let answers = BTreeMap::from([(0, with_state(7, &[0, 2])), (2, None)]);
        assert_eq!(
            decide(1, 3, &answers, Duration::ZERO, WAIT),
            Decision::Rejoin { id: node_id(1, 1), replaces: vec![] }
        );
    }
}
