//! `RemoveNode`: a voter or learner leaves the membership.

use std::collections::BTreeSet;

use openraft::ChangeMembers;
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::membership_change::finish;

/// Serves `RemoveNode`.
pub async fn handle(
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
