//! DEL: `Release` everything this container+interface holds in the network. Idempotent (an
//! unknown owner is success) and independent of the network namespace, which may be gone.

use proto::ipam::ReleaseRequest;

use super::require_endpoints;
use crate::client::{request, Cluster};
use crate::error::PluginError;
use crate::request::Request;

/// Runs DEL.
pub async fn del(req: &Request, cluster: &mut Cluster<'_>) -> Result<(), PluginError> {
    if req.config.ranges.is_empty() && req.config.requested_ips.is_empty() && req.args.ips.is_empty() {
        // Only echoed `addresses`: nothing was reserved.
        return Ok(());
    }
    require_endpoints(req)?;
    let message = ReleaseRequest {
        request_id: req.request_id.clone(),
        network_name: req.config.network_name.clone(),
        container_id: req.invocation.container_id.clone(),
        ifname: req.invocation.ifname.clone(),
    };
    let reply = cluster
        .call("Release", |mut client, deadline| {
            let message = message.clone();
            async move { client.release(request(message, deadline)).await }
        })
        .await?;
    tracing::info!(released = ?reply.released.iter().map(|l| l.ip.as_str()).collect::<Vec<_>>(), "released");
    Ok(())
}
