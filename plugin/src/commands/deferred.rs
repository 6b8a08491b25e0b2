//! Delivering the DELs this node could not deliver when they ran ([`crate::pending`]), after an
//! invocation that reached the cluster. Each goes as the `Release` it was, with its request id
//! and how long it waited (`deferred_ms`, which the node counts). Bounded: at most
//! [`BATCH`] per invocation, within [`BUDGET`]; a store locked by another invocation is left to it.

use std::time::Duration;

use proto::ipam::ReleaseRequest;

use super::cluster_for;
use crate::client::{request, Budget, ClientFactory, ClusterError};
use crate::last_leader::LastLeader;
use crate::pending::{now_ms, PendingStore};
use crate::request::Request;

/// Most DELs delivered by one invocation.
pub const BATCH: usize = 32;
/// Longest one invocation spends delivering.
pub const BUDGET: Duration = Duration::from_secs(3);

/// Delivers what waits in `req`'s state directory through `req`'s cluster.
pub async fn deliver(req: &Request, factory: &dyn ClientFactory) {
    let store = PendingStore::new(&req.state_dir);
    let lock = match store.lock(Duration::ZERO) {
        Ok(Some(lock)) => lock,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(error = %e, "pending DELs not delivered now (another invocation delivers them)");
            return;
        }
    };
    let entries = match store.entries(&lock, BATCH) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, dir = %store.dir().display(), "cannot read the pending DELs");
            return;
        }
    };
    for dropped in &entries.dropped {
        tracing::warn!(attachment = %dropped, "a pending DEL was too old or unreadable: dropped");
    }
    let endpoints = &req.config.cluster.endpoints;
    let leader = LastLeader::new(&req.state_dir).read();
    let mut cluster = cluster_for(req, factory, Budget::new(req.budget.remaining().min(BUDGET)), leader.as_deref());
    for (path, entry) in entries.found.iter().filter(|(_, e)| e.deliverable_through(endpoints)) {
        let message = ReleaseRequest {
            request_id: entry.request_id.clone(),
            network_name: entry.network_name.clone(),
            container_id: entry.container_id.clone(),
            ifname: entry.ifname.clone(),
            deferred_ms: now_ms().saturating_sub(entry.since_ms).max(1),
        };
        let outcome = cluster
            .call("Release", |mut client, deadline| {
                let message = message.clone();
                async move { client.release(request(message, deadline)).await }
            })
            .await;
        let delivered = match outcome {
            Ok(reply) => {
                let released: Vec<&str> = reply.released.iter().map(|l| l.ip.as_str()).collect();
                tracing::info!(
                    container_id = %entry.container_id,
                    ifname = %entry.ifname,
                    network = %entry.cni_network,
                    waited_ms = message.deferred_ms,
                    ?released,
                    "delivered a DEL that could not reach the cluster when it ran"
                );
                true
            }
            Err(e @ (ClusterError::Invalid(_) | ClusterError::PermissionDenied(_))) => {
                tracing::error!(container_id = %entry.container_id, error = %e, "a pending DEL is refused: dropped");
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "pending DELs stay for a later invocation");
                break;
            }
        };
        if delivered {
            if let Err(e) = store.remove(&lock, path) {
                tracing::warn!(error = %e, file = %path.display(), "cannot remove a delivered DEL");
            }
        }
    }
}
