//! CHECK (0.4.0+): the cluster must hold, for this container+interface, exactly the addresses of
//! `prevResult` that this plugin reserved (the configuration's echoed `addresses` are left out).
//! The read is linearizable on the node side, so a release that happened is always seen.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipam::{FieldError, FieldProblem};
use ipnet::IpNet;
use proto::ipam::CheckRequest;

use super::require_endpoints;
use crate::client::{request, Cluster};
use crate::cni::prev_result;
use crate::error::PluginError;
use crate::request::Request;

/// Runs CHECK.
pub async fn check(req: &Request, cluster: &mut Cluster<'_>) -> Result<(), PluginError> {
    let prev =
        req.config.prev_result.as_ref().ok_or_else(|| FieldError::new("prevResult", "", FieldProblem::Missing))?;
    let echoed: BTreeSet<IpAddr> = req.config.addresses.iter().map(|a| a.address.addr()).collect();
    let expected: Vec<IpNet> =
        prev_result::addresses(prev)?.into_iter().filter(|a| !echoed.contains(&a.addr())).collect();
    if expected.is_empty() && req.config.ranges.is_empty() {
        return Ok(());
    }
    require_endpoints(req)?;
    let message = CheckRequest {
        network_name: req.config.network_name.clone(),
        container_id: req.invocation.container_id.clone(),
        ifname: req.invocation.ifname.clone(),
    };
    let reply = cluster
        .call("Check", |mut client, deadline| {
            let message = message.clone();
            async move { client.check(request(message, deadline)).await }
        })
        .await?;
    let mut held = Vec::with_capacity(reply.allocations.len());
    for a in &reply.allocations {
        let ip: IpAddr = a.ip.parse().map_err(|_| PluginError::BadReply(format!("allocation ip {:?}", a.ip)))?;
        let prefix = a.pool.parse::<IpNet>().map(|p| p.prefix_len()).unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        held.push(IpNet::new(ip, prefix).map_err(|_| PluginError::BadReply(format!("allocation pool {:?}", a.pool)))?);
    }
    compare(&expected, &held)
}

/// Equal as sets of addresses (prefix lengths are not part of a reservation).
fn compare(expected: &[IpNet], held: &[IpNet]) -> Result<(), PluginError> {
    let want: BTreeSet<IpAddr> = expected.iter().map(IpNet::addr).collect();
    let have: BTreeSet<IpAddr> = held.iter().map(IpNet::addr).collect();
    if want == have {
        tracing::info!(addresses = ?want, "check passed");
        return Ok(());
    }
    Err(PluginError::CheckMismatch {
        missing: expected.iter().filter(|a| !have.contains(&a.addr())).copied().collect(),
        unexpected: held.iter().filter(|a| !want.contains(&a.addr())).copied().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn sets_must_match_exactly() {
        assert!(compare(&nets(&["10.0.0.2/24", "fd00::2/64"]), &nets(&["fd00::2/64", "10.0.0.2/24"])).is_ok());
        match compare(&nets(&["10.0.0.2/24"]), &nets(&["10.0.0.3/24"])) {
            Err(PluginError::CheckMismatch { missing, unexpected }) => {
                assert_eq!(missing, nets(&["10.0.0.2/24"]));
                assert_eq!(unexpected, nets(&["10.0.0.3/24"]));
            }
            other => panic!("{other:?}"),
        }
        assert!(compare(&nets(&["10.0.0.2/24"]), &[]).is_err());
    }
}
