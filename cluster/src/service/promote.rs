//! `Promote`: a caught-up learner becomes a voter — and, for a node that came back as a new
//! incarnation, its earlier incarnations leave the membership in the same change.

use std::collections::BTreeSet;

use ipam::{FieldError, FieldProblem};
use openraft::ChangeMembers;
use proto::ipam as pb;
use raft_store::types::{display_id, NodeId};
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::membership_change::finish;

/// Serves `Promote`.
pub async fn handle(
    ctx: &Context,
    req: Request<pb::PromoteRequest>,
) -> Result<Response<pb::MembershipResponse>, Status> {
    let call = Call::new(ctx, "promote", &req);
    call.require_admin()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.promote(r).await }).await;
    }
    let msg = req.into_inner();
    let id = msg.id;
    if msg.replaces.is_empty() {
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        return finish(ctx, &call, &format!("promote {}", display_id(id)), ctx.raft.change_membership(change, false))
            .await;
    }
    if msg.replaces.contains(&id) {
        let problem = FieldProblem::Invalid("a node cannot replace itself".into());
        return Err(call.fail(FieldError::new("replaces", display_id(id), problem)));
    }
    let replaces: BTreeSet<NodeId> = msg.replaces.into_iter().collect();
    let membership = ctx.raft.metrics().borrow().membership_config.membership().clone();
    let mut voters: BTreeSet<NodeId> = membership.voter_ids().filter(|v| !replaces.contains(v)).collect();
    voters.insert(id);
    let what = format!(
        "promote {} replacing {:?}",
        display_id(id),
        replaces.iter().map(|r| display_id(*r)).collect::<Vec<_>>()
    );
    // One joint change: the new voter in, the old incarnations out (not kept as learners).
    let response =
        finish(ctx, &call, &what, ctx.raft.change_membership(ChangeMembers::ReplaceAllVoters(voters), false)).await?;
    let learners: BTreeSet<NodeId> = ctx
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .learner_ids()
        .filter(|l| replaces.contains(l))
        .collect();
    if learners.is_empty() {
        return Ok(response);
    }
    finish(ctx, &call, &what, ctx.raft.change_membership(ChangeMembers::RemoveNodes(learners), false)).await
}
