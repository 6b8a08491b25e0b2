//! `Gc` (CNI GC): frees a node's attachments of a network that the runtime no longer lists.

use ipam::Command;
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::releasing::free;
use crate::convert::api as conv;

/// Serves `Gc`.
pub async fn handle(ctx: &Context, req: Request<pb::GcRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
    let call = Call::new(ctx, "gc", &req);
    if let Some(node) = call.node_scope()? {
        if req.get_ref().node != node {
            return Err(call.deny_other_node(&node, &req.get_ref().node));
        }
    }
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.gc(r).await }).await;
    }
    let msg = req.into_inner();
    let id = msg.request_id.clone();
    let cmd = conv::gc(msg);
    tracing::info!(network = %cmd.network, cni_network = %cmd.cni_network, node = %cmd.node, keep = cmd.keep.len(), "gc");
    free(ctx, &call, id, Command::Gc(cmd)).await
}
