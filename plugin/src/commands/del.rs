//! DEL: `Release` everything this container+interface holds in the network. Idempotent (an
//! unknown owner is success), independent of the network namespace (which may be gone) and of
//! the rest of the configuration (see [`crate::request`]).
//!
//! When the cluster cannot be reached within the budget, DEL succeeds as whereabouts' does, and
//! the release waits on this node until an invocation that reaches the cluster delivers it
//! ([`crate::pending`]); `strict_del: true` answers code 11 instead. The trade-off: succeeding
//! lets the runtime finish tearing down (podman never retries a DEL; containerd keeps the sandbox
//! until DEL succeeds) at the price of the address staying held until delivery; failing keeps the
//! runtime retrying, which frees the address as soon as the cluster answers.

use proto::ipam::ReleaseRequest;

use super::require_endpoints;
use crate::client::{request, Cluster, ClusterError};
use crate::error::PluginError;
use crate::pending::{now_ms, PendingRelease, PendingStore};
use crate::request::Request;

/// Runs DEL.
pub async fn del(req: &Request, cluster: &mut Cluster<'_>) -> Result<(), PluginError> {
    let cfg = &req.config;
    let nothing_reserved = req.config_problem.is_none()
        && cfg.ranges.is_empty()
        && cfg.requested_ips.is_empty()
        && req.args.ips.is_empty();
    if nothing_reserved {
        // Only echoed `addresses`: ADD reserved nothing.
        return Ok(());
    }
    if cfg.cluster.endpoints.is_empty() {
        if cfg.cluster.strict_del {
            return require_endpoints(req);
        }
        return defer(req, "no endpoints are configured");
    }
    let message = ReleaseRequest {
        request_id: req.request_id.clone(),
        network_name: cfg.network_name.clone(),
        container_id: req.invocation.container_id.clone(),
        ifname: req.invocation.ifname.clone(),
        deferred_ms: 0,
    };
    let outcome = cluster
        .call("Release", |mut client, deadline| {
            let message = message.clone();
            async move { client.release(request(message, deadline)).await }
        })
        .await;
    match outcome {
        Ok(reply) => {
            tracing::info!(released = ?reply.released.iter().map(|l| l.ip.as_str()).collect::<Vec<_>>(), "released");
            Ok(())
        }
        Err(e) if cfg.cluster.strict_del => Err(e.into()),
        Err(
            e @ (ClusterError::Transient { .. } | ClusterError::BudgetSpent { .. } | ClusterError::Internal { .. }),
        ) => defer(req, &e.to_string()),
        Err(e) => {
            // A final refusal: delivering it later would be refused again.
            tracing::error!(error = %e, "the cluster refused the release; DEL succeeds as whereabouts' does");
            Ok(())
        }
    }
}

/// Records the release for later delivery and succeeds; a release that cannot even be recorded
/// is logged (GC or the reconciler frees the address).
fn defer(req: &Request, why: &str) -> Result<(), PluginError> {
    let entry = PendingRelease {
        network_name: req.config.network_name.clone(),
        cni_network: req.config.cni_network.clone(),
        container_id: req.invocation.container_id.clone(),
        ifname: req.invocation.ifname.clone(),
        endpoints: req.config.cluster.endpoints.clone(),
        request_id: req.request_id.clone(),
        since_ms: now_ms(),
    };
    match PendingStore::new(&req.state_dir).record(&entry) {
        Ok(path) => tracing::warn!(
            reason = why,
            pending = %path.display(),
            "the release could not reach the cluster: DEL succeeds and the release is delivered by a later call \
             on this node (set strict_del to fail instead)"
        ),
        Err(e) => tracing::error!(
            reason = why,
            error = %e,
            "the release could not reach the cluster nor be recorded: DEL succeeds; the address stays held until \
             GC or the reconciler frees it"
        ),
    }
    Ok(())
}
