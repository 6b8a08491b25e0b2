//! `Check` (CNI CHECK): the addresses an attachment holds. Linearizable: served by the leader after it confirmed its leadership with a quorum, never
//! from a follower's possibly stale state.

use ipam::Owner;
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use crate::convert::api as conv;

/// Serves `Check`.
pub async fn handle(ctx: &Context, req: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
    let call = Call::new(ctx, "check", &req);
    let scope = call.node_scope()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.check(r).await }).await;
    }
    let msg = req.into_inner();
    let owner = Owner { container_id: msg.container_id, ifname: msg.ifname };
    let mut held = call.read(|m| m.state.owner_addresses(&msg.network_name, &owner)).await?;
    if let Some(node) = scope {
        held.retain(|v| v.attachment.node.as_deref() == Some(node.as_str()));
    }
    call.ok(pb::CheckResponse { allocations: held.into_iter().map(conv::allocation).collect() })
}
