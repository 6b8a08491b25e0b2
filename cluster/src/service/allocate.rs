//! `Allocate`: CNI ADD.

use ipam::{Command, Event, Outcome};
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use crate::convert::api as conv;

/// Serves `Allocate`.
pub async fn handle(
    ctx: &Context,
    req: Request<pb::AllocateRequest>,
) -> Result<Response<pb::AllocateResponse>, Status> {
    let call = Call::new(ctx, "allocate", &req);
    let scope = call.node_scope()?;
    let mut msg = req.into_inner();
    if let Some(node) = &scope {
        // A node's plugin allocates for its own node only; the node is recorded with the address.
        let att = msg.attachment.get_or_insert_with(Default::default);
        if att.node.is_empty() {
            att.node = node.clone();
        } else if att.node != *node {
            return Err(call.deny_other_node(node, &att.node));
        }
    }
    if let Some(leader) = call.route()? {
        return call.forward(&leader, msg, |mut c, r| async move { c.allocate(r).await }).await;
    }
    let request_id = conv::request_id(msg.request_id.clone());
    let (cmd, warnings) = conv::allocate(msg).map_err(|e| call.fail(e))?;
    let span = tracing::info_span!(
        "allocate",
        network = %cmd.network,
        container_id = %cmd.attachment.owner.container_id,
        ifname = %cmd.attachment.owner.ifname,
        request_id = request_id.as_deref().unwrap_or(""),
    );
    let _enter = span.enter();
    for w in &warnings {
        tracing::warn!(field = %w.field, "{}", w.message);
    }
    let event = Event { request_id, time_ms: 0, command: Command::Allocate(cmd) };
    drop(_enter);
    match call.write(event).await? {
        Outcome::Allocated(leases) => {
            ctx.metrics.allocations.inc_by(leases.len() as u64);
            call.ok(pb::AllocateResponse { leases: leases.iter().map(conv::lease).collect() })
        }
        other => Err(call.fail(super::errors::ServeError::Internal(format!("allocate produced {other:?}")))),
    }
}
