//! Whether this node may act as the leader. openraft 0.9 keeps a leader cut off from its
//! followers in the `Leader` state until it hears a higher term, which may be never while the
//! partition lasts — meanwhile the majority has elected someone else. A leader that has not heard
//! from a quorum within the lease (the longest election timeout: by then the others may have a
//! new leader) stops acting as one: it refuses writes at once (so plugins move to the real
//! leader instead of waiting out their deadline), `/readyz` says it cannot serve a write, and the
//! leader-only tasks (IPPool exporter, reconciler) stop, so there are never two writers.

use std::time::Duration;

use openraft::{BasicNode, RaftMetrics, ServerState};
use raft_store::types::NodeId;

/// This node's part, as far as leading goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// Another node leads, or none is known.
    NotLeader,
    /// This node leads and a quorum answered within the lease (or it was elected a moment ago
    /// and none had to yet).
    Leads,
    /// This node is in the leader state but no quorum answered for `silent_ms` (more than the
    /// lease): it may have been replaced.
    Isolated {
        /// Milliseconds since a quorum last acknowledged this leader.
        silent_ms: u64,
    },
}

/// How long a leader may go without a quorum's acknowledgment and still act as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderLease(pub Duration);

impl LeaderLease {
    /// The lease for a node whose election timeout is at most `election_timeout_max`.
    pub fn for_election_timeout(election_timeout_max: Duration) -> LeaderLease {
        LeaderLease(election_timeout_max)
    }

    /// Whether a leader silent for `silent_ms` refuses calls at once. Twice the lease: a write
    /// could not commit without a quorum anyway, so refusing early only sends the caller to the
    /// real leader sooner — and the slack keeps a leader whose followers answer late (a loaded
    /// machine) serving instead of refusing what it could still commit.
    pub fn refuses_calls(&self, silent_ms: u64) -> bool {
        u128::from(silent_ms) > 2 * self.0.as_millis()
    }

    /// What node `id` is, read from its Raft metrics.
    pub fn judge(&self, id: NodeId, m: &RaftMetrics<NodeId, BasicNode>) -> Leadership {
        if m.state != ServerState::Leader || m.current_leader != Some(id) {
            return Leadership::NotLeader;
        }
        match m.millis_since_quorum_ack {
            Some(silent_ms) if u128::from(silent_ms) > self.0.as_millis() => Leadership::Isolated { silent_ms },
            _ => Leadership::Leads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(state: ServerState, leader: Option<NodeId>, silent: Option<u64>) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(1);
        m.state = state;
        m.current_leader = leader;
        m.millis_since_quorum_ack = silent;
        m
    }

    #[test]
    fn a_leader_is_isolated_once_no_quorum_answered_within_the_lease() {
        let lease = LeaderLease::for_election_timeout(Duration::from_millis(1000));
        assert_eq!(lease.judge(1, &metrics(ServerState::Leader, Some(1), Some(20))), Leadership::Leads);
        assert_eq!(lease.judge(1, &metrics(ServerState::Leader, Some(1), Some(1000))), Leadership::Leads);
        assert_eq!(lease.judge(1, &metrics(ServerState::Leader, Some(1), None)), Leadership::Leads);
        assert_eq!(
            lease.judge(1, &metrics(ServerState::Leader, Some(1), Some(1001))),
            Leadership::Isolated { silent_ms: 1001 }
        );
        assert_eq!(lease.judge(1, &metrics(ServerState::Follower, Some(2), Some(5000))), Leadership::NotLeader);
        assert_eq!(lease.judge(1, &metrics(ServerState::Candidate, None, None)), Leadership::NotLeader);
    }
}
