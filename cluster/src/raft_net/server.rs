//! The Raft gRPC service: decodes a peer's RPC, hands it to openraft, encodes the answer.

use openraft::error::{InstallSnapshotError, RaftError};
use proto::raft as pb;
use tonic::{Request, Response, Status};

use super::CLUSTER_KEY;
use crate::convert::raft as conv;
use crate::tls::{Identity, PeerInfo};
use raft_store::types::typ;

/// Serves `raft.proto` for one node.
pub struct RaftService {
    raft: typ::Raft,
    cluster: String,
    tls: bool,
}

impl RaftService {
    /// The service for `raft`, a node of cluster `cluster`; with `tls`, only members' certificates
    /// (`whereabouts:peer`) may speak Raft.
    pub fn new(raft: typ::Raft, cluster: &str, tls: bool) -> RaftService {
        RaftService { raft, cluster: cluster.to_string(), tls }
    }

    /// Refuses messages from another cluster's nodes (misconfigured addresses must not merge
    /// two clusters' logs).
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.tls {
            let identity = req.extensions().get::<PeerInfo>().and_then(|i| i.identity.clone());
            if !matches!(identity, Some(Identity::Peer(_))) {
                tracing::warn!(?identity, "refused a Raft message from a caller without a member certificate");
                return Err(Status::permission_denied("Raft messages need a member certificate (O=whereabouts:peer)"));
            }
        }
        let theirs = req.metadata().get(CLUSTER_KEY).and_then(|v| v.to_str().ok()).unwrap_or("");
        if theirs == self.cluster {
            return Ok(());
        }
        tracing::warn!(ours = %self.cluster, theirs, "refused a Raft message from another cluster");
        Err(Status::failed_precondition(format!(
            "this node belongs to cluster {:?}, the sender to {theirs:?}",
            self.cluster
        )))
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
        let rpc = conv::append_from_pb(req.into_inner()).map_err(bad)?;
        let resp = self.raft.append_entries(rpc).await.map_err(stopped)?;
        Ok(Response::new(conv::append_resp_to_pb(resp)))
    }

    async fn vote(&self, req: Request<pb::VoteRequest>) -> Result<Response<pb::VoteResponse>, Status> {
        self.check(&req)?;
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
}
