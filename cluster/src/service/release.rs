//! `Release` (CNI DEL): frees what a container's interface holds in a network (a node identity
//! frees only what is recorded for its own node).

use ipam::Command;
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::releasing::free;
use crate::convert::api as conv;

/// Serves `Release`.
pub async fn handle(ctx: &Context, req: Request<pb::ReleaseRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
    let call = Call::new(ctx, "release", &req);
    let scope = call.node_scope()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.release(r).await }).await;
    }
    let msg = req.into_inner();
    tracing::info!(network = %msg.network_name, container_id = %msg.container_id, ifname = %msg.ifname, request_id = %msg.request_id, "release");
    if msg.deferred_ms > 0 {
        // The plugin answered this DEL with success while the cluster was unreachable; the
        // address stayed held until now.
        ctx.metrics.deferred_releases.inc();
        tracing::warn!(
            container_id = %msg.container_id,
            ifname = %msg.ifname,
            deferred_ms = msg.deferred_ms,
            "a DEL that could not reach the cluster when it ran is delivered now"
        );
    }
    let id = msg.request_id.clone();
    let mut cmd = conv::release(msg);
    // A node's plugin frees only what is recorded for its own node.
    cmd.only_node = scope;
    free(ctx, &call, id, Command::Release(cmd)).await
}
