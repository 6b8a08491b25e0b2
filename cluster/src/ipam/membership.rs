//! `AddLearner`, `Promote`, `RemoveNode`: membership changes, executed by the leader through
//! Raft's joint consensus. A learner receives the log (or a snapshot) without voting; once caught
//! up it can be promoted.

use std::collections::BTreeSet;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use proto::ipam as pb;
use raft_store::domain::{FieldError, FieldProblem};
use raft_store::types::NodeId;
use tokio::time::timeout;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use super::status::members;

type WriteResult = Result<
    openraft::raft::ClientWriteResponse<raft_store::types::TypeConfig>,
    RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
>;

async fn finish(
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

/// Serves `AddLearner`.
pub async fn add_learner(
    ctx: &Context,
    req: Request<pb::AddLearnerRequest>,
) -> Result<Response<pb::MembershipResponse>, Status> {
    let call = Call::new(ctx, "add_learner", &req);
    call.require_admin()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.add_learner(r).await }).await;
    }
    let msg = req.into_inner();
    // host:port with a non-empty host of printable, non-space ASCII (a name, an IPv4 address or a
    // bracketed IPv6 address) and a port in 1..=65535; the address goes into the membership.
    let valid = msg.addr.len() <= 261
        && msg.addr.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()) && p.parse::<u16>().is_ok_and(|p| p > 0)
        });
    if !valid {
        return Err(call.fail(FieldError::new("addr", &msg.addr, FieldProblem::Invalid("expected host:port".into()))));
    }
    let what = format!("add learner {} at {}", msg.id, msg.addr);
    finish(ctx, &call, &what, ctx.raft.add_learner(msg.id, BasicNode::new(msg.addr), false)).await
}

/// Serves `Promote`.
pub async fn promote(
    ctx: &Context,
    req: Request<pb::PromoteRequest>,
) -> Result<Response<pb::MembershipResponse>, Status> {
    let call = Call::new(ctx, "promote", &req);
    call.require_admin()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.promote(r).await }).await;
    }
    let id = req.into_inner().id;
    let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
    finish(ctx, &call, &format!("promote {id}"), ctx.raft.change_membership(change, false)).await
}

/// Serves `RemoveNode`.
pub async fn remove(
    ctx: &Context,
    req: Request<pb::RemoveNodeRequest>,
) -> Result<Response<pb::MembershipResponse>, Status> {
    let call = Call::new(ctx, "remove_node", &req);
    call.require_admin()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.remove_node(r).await }).await;
    }
    let id = req.into_inner().id;
    let is_voter = ctx.raft.metrics().borrow().membership_config.membership().voter_ids().any(|v| v == id);
    let change = if is_voter {
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    finish(ctx, &call, &format!("remove {id}"), ctx.raft.change_membership(change, false)).await
}
