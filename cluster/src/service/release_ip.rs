//! `ReleaseIp`: frees one address, guarded by the owner the operator expects (admins only).

use ipam::Command;
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::releasing::free;
use crate::convert::api as conv;

/// Serves `ReleaseIp`.
pub async fn handle(
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
