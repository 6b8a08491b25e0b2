//! What `AddLearner`, `Promote` and `RemoveNode` share: a membership change executed by the leader
//! through Raft's joint consensus, bounded by the node's request timeout, answered with the new
//! member list.

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;
use proto::ipam as pb;
use raft_store::types::NodeId;
use tokio::time::timeout;
use tonic::{Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use super::status::members;

type WriteResult = Result<
    openraft::raft::ClientWriteResponse<raft_store::types::TypeConfig>,
    RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
>;

/// Waits for the membership change `fut` and answers with the members.
pub async fn finish(
    ctx: &Context,
    call: &Call<'_>,
    what: &str,
    fut: impl std::future::Future<Output = WriteResult>,
) -> Result<Response<pb::MembershipResponse>, Status> {
    let result = match timeout(ctx.request_timeout, fut).await {
        Err(_) => Err(ServeError::Timeout("the membership change")),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(ServeError::NotLeader { leader: f.leader_node.map(|n| n.addr) })
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
            Err(ServeError::Membership(e.to_string()))
        }
        Ok(Err(e)) => Err(ServeError::Internal(e.to_string())),
    };
    result.map_err(|e| call.fail(e))?;
    tracing::info!(change = what, "membership changed");
    call.ok(pb::MembershipResponse { members: members(&ctx.raft.metrics().borrow()) })
}
