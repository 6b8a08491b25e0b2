//! `ClusterVersion`: what each member runs and stores, and the replicated cluster version — the
//! newest log format the leader writes (see `ipam::format`). Raising it is refused unless every
//! member answers and reads the format asked for: a member that cannot read an entry stops
//! replicating. With `compact`, every member snapshots and purges its log, the step that makes a
//! downgrade possible once the version was lowered. Reading needs any identity; changing and
//! compacting need an administrator.
//!
//! Describing and compacting are served by whichever node gets the call (from the membership it
//! knows); only a change goes to the leader, as a write.

use std::time::Duration;

use ipam::{Command, FieldError, FieldProblem, Outcome, SetClusterVersion, FORMAT_MAX, FORMAT_MIN};
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use crate::raft_net::admin::{self, Described};
use raft_store::types::{display_id, NodeId};

/// How long a member may take to describe itself.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a member may take to snapshot and purge its log.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(25);

/// Serves `ClusterVersion`.
pub async fn handle(
    ctx: &Context,
    req: Request<pb::ClusterVersionRequest>,
) -> Result<Response<pb::ClusterVersionResponse>, Status> {
    let call = Call::new(ctx, "cluster_version", &req);
    let msg = req.into_inner();
    if msg.set.is_some() || msg.compact {
        call.require_admin()?;
    } else {
        call.require_authenticated()?;
    }
    if let Some(target) = msg.set {
        if let Some(leader) = call.route()? {
            // The leader changes it; compaction (slow) is asked of this node afterwards.
            let change = pb::ClusterVersionRequest { set: Some(target), compact: false };
            call.forward(&leader, change, |mut c, r| async move { c.cluster_version(r).await }).await?;
        } else {
            set(ctx, &call, target).await?;
        }
    }
    let members = members(ctx);
    let mut errors = vec![String::new(); members.len()];
    if msg.compact {
        let compacted = futures::future::join_all(
            members.iter().map(|(_, addr, _)| admin::compact(&ctx.transport, &ctx.cluster, addr, COMPACT_TIMEOUT)),
        )
        .await;
        for (i, result) in compacted.into_iter().enumerate() {
            if let Err(e) = result {
                tracing::warn!(member = %display_id(members[i].0), error = %e, "a member did not compact its log");
                errors[i] = format!("compaction failed: {e}");
            }
        }
    }
    let described = describe_all(ctx, &members).await;
    let cluster_version = ctx.with_machine(|m| m.state.cluster_version());
    let mut reported = Vec::with_capacity(members.len());
    for (((id, addr, voter), answer), error) in members.into_iter().zip(described).zip(errors) {
        reported.push(member_version(id, addr, voter, answer, error));
    }
    let highest_possible = reported
        .iter()
        .map(|m| if m.reachable { m.format_max } else { FORMAT_MIN })
        .min()
        .unwrap_or(FORMAT_MIN)
        .min(FORMAT_MAX);
    let downgrade_ready = reported.iter().all(|m| {
        m.reachable
            && m.error.is_empty()
            && m.newest_log_format.unwrap_or(FORMAT_MIN) <= cluster_version
            && m.snapshot_format.unwrap_or(FORMAT_MIN) <= cluster_version
    });
    call.ok(pb::ClusterVersionResponse { cluster_version, members: reported, highest_possible, downgrade_ready })
}

/// On the leader: checks that every member reads what `target` needs, then writes the change.
async fn set(ctx: &Context, call: &Call<'_>, target: u32) -> Result<(), Status> {
    if !ipam::format::is_supported(target) {
        let problem =
            FieldProblem::Invalid(format!("this release writes cluster versions {FORMAT_MIN} to {FORMAT_MAX}"));
        return Err(call.fail(FieldError::new("cluster_version", target.to_string(), problem)));
    }
    check_members(ctx, target).await.map_err(|why| call.fail(ServeError::Precondition(why)))?;
    let current = ctx.with_machine(|m| m.state.cluster_version());
    if current == target {
        return Ok(());
    }
    tracing::info!(from = current, to = target, "changing the cluster version");
    let event = ipam::Event::new(Command::SetClusterVersion(SetClusterVersion { version: target }), 0);
    match call.write(event).await? {
        Outcome::ClusterVersion { .. } => Ok(()),
        other => Err(call.fail(ServeError::Internal(format!("cluster version change produced {other:?}")))),
    }
}

/// Confirms that every member answers and reads log format `target` (and the format-2 entry that
/// changes the version): a member that cannot read an entry stops replicating. `Err`: why not.
async fn check_members(ctx: &Context, target: u32) -> Result<(), String> {
    let needs = target.max(Command::SetClusterVersion(SetClusterVersion { version: target }).min_format());
    let members = members(ctx);
    for ((id, addr, _), answer) in members.iter().zip(describe_all(ctx, &members).await) {
        let who = format!("member {} at {addr}", display_id(*id));
        let d = answer.map_err(|e| {
            format!(
                "{who} did not answer ({e}): every member must confirm it reads log format {needs} before the \
                 cluster version changes"
            )
        })?;
        let max = d.format_max();
        if max < needs {
            return Err(format!(
                "{who} runs release {}, which reads log formats up to {max}: upgrade it before setting the cluster \
                 version to {target}",
                release_of(&d)
            ));
        }
    }
    Ok(())
}

/// How often a founder retries raising a new cluster's version.
const RAISE_RETRY: Duration = Duration::from_millis(500);

/// On a founder of a new cluster: raises the cluster version from 1 to [`FORMAT_MAX`] as soon as
/// this node leads and every member confirms it reads it, so that a cluster founded by this
/// release runs with this release's semantics (overlapping ranges off, pods without namespace)
/// without an operator's step. A cluster upgraded from an older release stays where it is until
/// the operator raises it. Ends once the version is at least [`FORMAT_MAX`] (or was changed by
/// anyone), or at `stop`.
pub async fn raise_when_founded(ctx: &Context, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last_why = String::new();
    loop {
        if ctx.with_machine(|m| m.state.cluster_version()) != FORMAT_MIN {
            return;
        }
        let leads = ctx.raft.metrics().borrow().current_leader == Some(ctx.id);
        if leads {
            match check_members(ctx, FORMAT_MAX).await {
                Ok(()) => {
                    let event =
                        ipam::Event::new(Command::SetClusterVersion(SetClusterVersion { version: FORMAT_MAX }), 0);
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    match ctx.proposer.write(event, deadline).await {
                        Ok(Ok(_)) => {
                            tracing::info!(version = FORMAT_MAX, "new cluster: cluster version raised");
                            return;
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "new cluster: raising the cluster version failed"),
                        Err(e) => tracing::debug!(error = %e, "new cluster: raising the cluster version, retrying"),
                    }
                }
                Err(why) if why != last_why => {
                    tracing::info!(%why, "new cluster: the cluster version stays at 1 for now");
                    last_why = why;
                }
                Err(_) => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RAISE_RETRY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Every member (voters and learners) as this node knows them: id, address, voter.
fn members(ctx: &Context) -> Vec<(NodeId, String, bool)> {
    let m = ctx.raft.metrics().borrow().membership_config.clone();
    let membership = m.membership();
    let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
    membership.nodes().map(|(id, n)| (*id, n.addr.clone(), voters.contains(id))).collect()
}

async fn describe_all(ctx: &Context, members: &[(NodeId, String, bool)]) -> Vec<Result<Described, String>> {
    futures::future::join_all(
        members.iter().map(|(_, addr, _)| admin::describe(&ctx.transport, &ctx.cluster, addr, DESCRIBE_TIMEOUT)),
    )
    .await
}

/// The release a member reports (release 0.1.0 reports none, or has no `Describe` at all).
fn release_of(d: &Described) -> &str {
    match d {
        Described::Node(d) => release_name(&d.binary_version),
        Described::Release010 => "0.1.0",
    }
}

/// A reported binary version, empty meaning release 0.1.0 (which does not say).
fn release_name(binary_version: &str) -> &str {
    if binary_version.is_empty() {
        "0.1.0"
    } else {
        binary_version
    }
}

fn member_version(
    id: NodeId,
    addr: String,
    voter: bool,
    answer: Result<Described, String>,
    error: String,
) -> pb::MemberVersion {
    match answer {
        // Release 0.1.0 (no `Describe`): everything it reads, writes and holds is format 1.
        Ok(Described::Release010) => pb::MemberVersion {
            id,
            addr,
            voter,
            reachable: true,
            error,
            binary_version: "0.1.0".to_string(),
            format_min: FORMAT_MIN,
            format_max: FORMAT_MIN,
            newest_log_format: Some(FORMAT_MIN),
            snapshot_format: Some(FORMAT_MIN),
        },
        Ok(Described::Node(d)) if d.node_id != id => pb::MemberVersion {
            id,
            addr,
            voter,
            error: format!("the node at this address is {}, not this member", display_id(d.node_id)),
            ..Default::default()
        },
        Ok(Described::Node(d)) => pb::MemberVersion {
            id,
            addr,
            voter,
            reachable: true,
            error,
            binary_version: release_name(&d.binary_version).to_string(),
            format_min: d.format_min.max(FORMAT_MIN),
            format_max: d.format_max.max(FORMAT_MIN),
            // Release 0.1.0 does not say: everything it holds is format 1.
            newest_log_format: if d.format_max == 0 { Some(FORMAT_MIN) } else { d.newest_log_format },
            snapshot_format: if d.format_max == 0 { Some(FORMAT_MIN) } else { d.snapshot_format },
        },
        Err(e) => pb::MemberVersion { id, addr, voter, error: e, ..Default::default() },
    }
}
