//! `WhoHas`: who holds an address and its recent history. Linearizable: served by the leader after it confirmed its leadership with a quorum, never
//! from a follower's possibly stale state.

use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use crate::convert::api as conv;

/// Serves `WhoHas`.
pub async fn handle(ctx: &Context, req: Request<pb::WhoHasRequest>) -> Result<Response<pb::WhoHasResponse>, Status> {
    let call = Call::new(ctx, "who_has", &req);
    call.require_authenticated()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.who_has(r).await }).await;
    }
    let msg = req.into_inner();
    let ip = conv::ip(&msg.ip, "ip").map_err(|e| call.fail(e))?;
    let (holders, history) = call.read(|m| (m.state.who_has(&ip), m.state.history_of(&ip))).await?;
    call.ok(pb::WhoHasResponse {
        holders: holders.into_iter().map(conv::allocation).collect(),
        history: history.into_iter().map(conv::history).collect(),
    })
}
