//! `AddLearner`: a node joins as a learner: it receives the log (or a snapshot) without voting.

use ipam::{FieldError, FieldProblem};
use openraft::BasicNode;
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use super::membership_change::finish;
use std::time::Duration;

/// Serves `AddLearner`.
pub async fn handle(
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
    // A node that cannot read the log the leader writes would stop replicating at the first entry.
    let cluster_version = ctx.with_machine(|m| m.state.cluster_version());
    if cluster_version > ipam::FORMAT_MIN {
        let described =
            crate::raft_net::admin::describe(&ctx.transport, &ctx.cluster, &msg.addr, Duration::from_secs(2)).await;
        let reads = described.as_ref().map(|d| d.format_max());
        if !reads.as_ref().is_ok_and(|max| *max >= cluster_version) {
            let why = match reads {
                Ok(max) => format!("it reads log formats up to {max}"),
                Err(e) => format!("it did not say which log formats it reads ({e})"),
            };
            return Err(call.fail(ServeError::Precondition(format!(
                "cannot add {} at {}: the cluster version is {cluster_version} and {why}; run a release that reads it",
                msg.id, msg.addr
            ))));
        }
    }
    let what = format!("add learner {} at {}", msg.id, msg.addr);
    finish(ctx, &call, &what, ctx.raft.add_learner(msg.id, BasicNode::new(msg.addr), false)).await
}
