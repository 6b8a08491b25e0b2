//! The Raft gRPC service: decodes a peer's RPC, hands it to openraft, encodes the answer.

use openraft::error::{InstallSnapshotError, RaftError};
use proto::raft as pb;
use tonic::{Request, Response, Status};

use super::{CLUSTER_KEY, TARGET_KEY};
use crate::convert::raft as conv;
use crate::tls::{Identity, PeerInfo};
use raft_store::types::{display_id, incarnation, typ, NodeId};

use raft_store::SharedMachine;

use super::gate::Gate;
use raft_store::formats::{FormatReport, StoredFormats};

/// How long each step of a requested compaction (snapshot, purge) may take.
const COMPACT_STEP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `raft.proto` for one node.
pub struct RaftService {
    raft: typ::Raft,
    id: NodeId,
    cluster: String,
    tls: bool,
    gate: Gate,
    machine: SharedMachine,
    formats: FormatReport,
}

impl RaftService {
    /// The service for `raft`, node `id` of cluster `cluster`; with `tls`, only members'
    /// certificates (`whereabouts:peer`) may speak Raft.
    pub fn new(
        raft: typ::Raft,
        id: NodeId,
        cluster: &str,
        tls: bool,
        gate: Gate,
        machine: SharedMachine,
        formats: FormatReport,
    ) -> RaftService {
        RaftService { raft, id, cluster: cluster.to_string(), tls, gate, machine, formats }
    }

    /// Refuses Raft while this node, with an empty data directory, has not decided whether it
    /// bootstraps or rejoins (see `node::bootstrap`): it must not vote or acknowledge anything
    /// under an identity whose state may have been lost.
    fn check_gate(&self) -> Result<(), Status> {
        if self.gate.is_open() {
            return Ok(());
        }
        Err(Status::unavailable(format!(
            "node {} has an empty data directory and is finding out whether a cluster exists; it takes no part in Raft \
             until then",
            display_id(self.id)
        )))
    }

    fn describe_self(&self) -> pb::DescribeResponse {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let pristine = incarnation(self.id) == 0
            && m.vote.leader_id().get_term() == 0
            && m.last_log_index.is_none()
            && m.snapshot.is_none()
            && m.purged.is_none();
        let stored = self.formats.read().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the formats stored in the data directory");
            StoredFormats::default()
        });
        let cluster_version = self.machine.read().unwrap_or_else(|p| p.into_inner()).state.cluster_version();
        pb::DescribeResponse {
            binary_version: env!("CARGO_PKG_VERSION").to_string(),
            format_min: ipam::FORMAT_MIN,
            format_max: ipam::FORMAT_MAX,
            cluster_version,
            newest_log_format: stored.newest_entry,
            snapshot_format: stored.snapshot,
            node_id: self.id,
            pristine: pristine || !self.gate.is_open(),
            deciding: !self.gate.is_open(),
            term: m.current_term,
            last_log_index: m.last_log_index,
            members: membership
                .nodes()
                .map(|(id, n)| pb::DescribeMember { id: *id, addr: n.addr.clone(), voter: voters.contains(id) })
                .collect(),
            // Applied writes, or entries past the bootstrap ones (index 0: the founding
            // membership, 1: the first leader's blank entry) not applied yet — one may be a write
            // the asker's lost state helped commit a moment ago: it must not reuse its id then.
            has_writes: self.machine.read().unwrap_or_else(|p| p.into_inner()).state.events_applied() > 0
                || m.last_log_index.is_some_and(|last| last >= 2 && Some(last) > m.last_applied.map(|l| l.index)),
            last_applied_index: m.last_applied.map(|l| l.index),
            leader_id: m.current_leader,
            leader_addr: m
                .current_leader
                .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone()))
                .unwrap_or_default(),
        }
    }

    /// Refuses messages from another cluster's nodes (misconfigured addresses must not merge
    /// two clusters' logs) and messages meant for another node (a stale address must not make
    /// this node answer for it). A message without a target (a sender of an older version) is
    /// taken.
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.tls {
            let identity = req.extensions().get::<PeerInfo>().and_then(|i| i.identity.clone());
            if !matches!(identity, Some(Identity::Peer(_))) {
                tracing::warn!(?identity, "refused a Raft message from a caller without a member certificate");
                return Err(Status::permission_denied("Raft messages need a member certificate (O=whereabouts:peer)"));
            }
        }
        let theirs = req.metadata().get(CLUSTER_KEY).and_then(|v| v.to_str().ok()).unwrap_or("");
        if theirs != self.cluster {
            tracing::warn!(ours = %self.cluster, theirs, "refused a Raft message from another cluster");
            return Err(Status::failed_precondition(format!(
                "this node belongs to cluster {:?}, the sender to {theirs:?}",
                self.cluster
            )));
        }
        match req.metadata().get(TARGET_KEY).map(|v| v.to_str().ok().and_then(|s| s.parse::<NodeId>().ok())) {
            None => Ok(()),
            Some(Some(target)) if target == self.id => Ok(()),
            Some(target) => {
                tracing::warn!(me = self.id, ?target, "refused a Raft message meant for another node");
                Err(Status::failed_precondition(format!(
                    "this is node {}, the message is for node {}: the sender's address for that node is stale",
                    display_id(self.id),
                    target.map_or_else(|| "?".to_string(), display_id)
                )))
            }
        }
    }
}

fn bad(e: conv::DecodeError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn stopped(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft is not running: {e}"))
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        self.check(&req)?;
        self.check_gate()?;
        let rpc = conv::append_from_pb(req.into_inner()).map_err(bad)?;
        let resp = self.raft.append_entries(rpc).await.map_err(stopped)?;
        Ok(Response::new(conv::append_resp_to_pb(resp)))
    }

    async fn vote(&self, req: Request<pb::VoteRequest>) -> Result<Response<pb::VoteResponse>, Status> {
        self.check(&req)?;
        self.check_gate()?;
        let rpc = conv::vote_req_from_pb(req.into_inner()).map_err(bad)?;
        let resp = self.raft.vote(rpc).await.map_err(stopped)?;
        Ok(Response::new(conv::vote_resp_to_pb(&resp)))
    }

    async fn install_snapshot(
        &self,
        req: Request<pb::InstallSnapshotRequest>,
    ) -> Result<Response<pb::InstallSnapshotResponse>, Status> {
        use pb::install_snapshot_response::Result as R;
        self.check(&req)?;
        self.check_gate()?;
        let rpc = conv::snapshot_from_pb(req.into_inner()).map_err(bad)?;
        let result = match self.raft.install_snapshot(rpc).await {
            Ok(resp) => R::Vote(conv::vote_to_pb(&resp.vote)),
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => R::Mismatch(pb::SnapshotMismatch {
                expected_id: m.expect.id,
                expected_offset: m.expect.offset,
                got_id: m.got.id,
                got_offset: m.got.offset,
            }),
            Err(e) => return Err(stopped(e)),
        };
        Ok(Response::new(pb::InstallSnapshotResponse { result: Some(result) }))
    }

    async fn describe(&self, req: Request<pb::DescribeRequest>) -> Result<Response<pb::DescribeResponse>, Status> {
        self.check(&req)?;
        Ok(Response::new(self.describe_self()))
    }

    async fn compact(&self, req: Request<pb::CompactRequest>) -> Result<Response<pb::CompactResponse>, Status> {
        self.check(&req)?;
        self.check_gate()?;
        let done = crate::compaction::compact(&self.raft, &self.formats, COMPACT_STEP_TIMEOUT)
            .await
            .map_err(Status::unavailable)?;
        tracing::info!(snapshot_index = ?done.snapshot_index, formats = ?done.formats, "compacted the log on request");
        Ok(Response::new(pb::CompactResponse {
            snapshot_index: done.snapshot_index,
            newest_log_format: done.formats.newest_entry,
            snapshot_format: done.formats.snapshot,
        }))
    }
}
