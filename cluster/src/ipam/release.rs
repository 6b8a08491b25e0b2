//! `Release` (CNI DEL), `ReleaseIp` (guarded, by address) and `Gc` (CNI GC): the calls that free
//! addresses.

use proto::ipam as pb;
use raft_store::domain::{Command, Event, Outcome};
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use crate::convert::ipam as conv;

async fn free(
    ctx: &Context,
    call: &Call<'_>,
    request_id: String,
    command: Command,
) -> Result<Response<pb::ReleaseResponse>, Status> {
    let event = Event { request_id: conv::request_id(request_id), time_ms: 0, command };
    match call.write(event).await? {
        Outcome::Released(leases) => {
            ctx.metrics.releases.inc_by(leases.len() as u64);
            call.ok(pb::ReleaseResponse { released: leases.iter().map(conv::lease).collect() })
        }
        Outcome::Allocated(_) => Err(call.fail(ServeError::Internal("release produced an allocation".into()))),
    }
}

/// Serves `Release`.
pub async fn release(ctx: &Context, req: Request<pb::ReleaseRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
    let call = Call::new(ctx, "release", &req);
    let scope = call.node_scope()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.release(r).await }).await;
    }
    let msg = req.into_inner();
    tracing::info!(network = %msg.network_name, container_id = %msg.container_id, ifname = %msg.ifname, request_id = %msg.request_id, "release");
    let id = msg.request_id.clone();
    let mut cmd = conv::release(msg);
    // A node's plugin frees only what is recorded for its own node.
    cmd.only_node = scope;
    free(ctx, &call, id, Command::Release(cmd)).await
}

/// Serves `ReleaseIp`.
pub async fn release_ip(
    ctx: &Context,
    req: Request<pb::ReleaseIpRequest>,
) -> Result<Response<pb::ReleaseResponse>, Status> {
    let call = Call::new(ctx, "release_ip", &req);
    call.require_admin()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.release_ip(r).await }).await;
    }
    let msg = req.into_inner();
    let id = msg.request_id.clone();
    let cmd = conv::release_ip(msg).map_err(|e| call.fail(e))?;
    tracing::info!(network = %cmd.network, ip = %cmd.ip, expected = %cmd.expected, "release by address");
    free(ctx, &call, id, Command::ReleaseIp(cmd)).await
}

/// Serves `Gc`.
pub async fn gc(ctx: &Context, req: Request<pb::GcRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
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
