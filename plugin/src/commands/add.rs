//! ADD: one address from each range plus the requested static addresses, in one all-or-nothing
//! `Allocate` (idempotent per container+interface). The result lists the leases (prefix length of
//! their pool, the configured gateway of the same family), then the configuration's `addresses`
//! (echoed, not reserved, as whereabouts and the static plugin do), routes and DNS.

use std::net::IpAddr;

use ipnet::IpNet;
use proto::ipam::{AllocateRequest, Lease, RangeSpec};
use raft_store::config::resolve_requested_ip;

use super::{attachment, require_endpoints};
use crate::client::{request, Cluster};
use crate::cni::v1::{IpConfig, IpamResult};
use crate::error::PluginError;
use crate::request::Request;

/// Runs ADD and builds the newest result.
pub async fn add(req: &Request, cluster: &mut Cluster<'_>) -> Result<IpamResult, PluginError> {
    let cfg = &req.config;
    let statics = requested_ips(req)?;
    let mut result = IpamResult { routes: cfg.routes.clone(), dns: cfg.dns.clone(), ..IpamResult::new() };
    if !cfg.ranges.is_empty() || !statics.is_empty() {
        require_endpoints(req)?;
        let message = AllocateRequest {
            request_id: req.request_id.clone(),
            network_name: cfg.network_name.clone(),
            ranges: cfg.ranges.iter().map(|r| to_proto(r.to_spec())).collect(),
            static_ips: statics.iter().map(ToString::to_string).collect(),
            enable_overlapping_ranges: Some(cfg.overlapping),
            attachment: Some(attachment(req)),
        };
        let reply = cluster
            .call("Allocate", |mut client, deadline| {
                let message = message.clone();
                async move { client.allocate(request(message, deadline)).await }
            })
            .await?;
        for lease in &reply.leases {
            let address = lease_address(lease, &statics)?;
            let gateway = cfg.gateway.filter(|g| g.is_ipv4() == address.addr().is_ipv4());
            result.ips.push(IpConfig { address, gateway });
        }
        tracing::info!(leases = ?result.ips.iter().map(|i| i.address.to_string()).collect::<Vec<_>>(), "allocated");
    }
    result.ips.extend(cfg.addresses.iter().map(|a| IpConfig { address: a.address, gateway: a.gateway }));
    apply_gateways(&mut result.ips, &req.args.gateways);
    Ok(result)
}

/// `runtimeConfig.ips`, `args.cni.ips` and `CNI_ARGS` `IP=`, without duplicates.
fn requested_ips(req: &Request) -> Result<Vec<IpNet>, PluginError> {
    let mut out = req.config.requested_ips.clone();
    for (i, ip) in req.args.ips.iter().enumerate() {
        let net = resolve_requested_ip(ip, &format!("CNI_ARGS.IP[{i}]"), &req.config.ranges)?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// A lease as `ADDRESS/PREFIX`: the pool's prefix, or the requested one for a static address
/// outside every range when the node sent no pool.
fn lease_address(lease: &Lease, statics: &[IpNet]) -> Result<IpNet, PluginError> {
    let ip: IpAddr = lease.ip.parse().map_err(|_| PluginError::BadReply(format!("lease ip {:?}", lease.ip)))?;
    let prefix = match lease.pool.parse::<IpNet>() {
        Ok(pool) => pool.prefix_len(),
        Err(_) => statics
            .iter()
            .find(|s| s.addr() == ip)
            .map(IpNet::prefix_len)
            .ok_or_else(|| PluginError::BadReply(format!("lease pool {:?} of {ip}", lease.pool)))?,
    };
    IpNet::new(ip, prefix).map_err(|_| PluginError::BadReply(format!("lease {ip} with pool {:?}", lease.pool)))
}

/// `CNI_ARGS` `GATEWAY=`: set on each address whose subnet contains it (whereabouts' rule).
fn apply_gateways(ips: &mut [IpConfig], gateways: &[IpAddr]) {
    for gw in gateways {
        for ip in ips.iter_mut().filter(|ip| ip.address.contains(gw)) {
            ip.gateway = Some(*gw);
        }
    }
}

fn to_proto(spec: raft_store::domain::RangeSpec) -> RangeSpec {
    RangeSpec {
        range: spec.range,
        range_start: spec.range_start.unwrap_or_default(),
        range_end: spec.range_end.unwrap_or_default(),
        exclude: spec.exclude,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_addresses_take_the_pool_prefix() {
        let lease = Lease { ip: "10.0.0.7".into(), pool: "10.0.0.0/24".into() };
        assert_eq!(lease_address(&lease, &[]).unwrap(), "10.0.0.7/24".parse::<IpNet>().unwrap());
        let lease = Lease { ip: "192.168.9.9".into(), pool: String::new() };
        let statics = ["192.168.9.9/16".parse().unwrap()];
        assert_eq!(lease_address(&lease, &statics).unwrap(), statics[0]);
        assert!(matches!(lease_address(&lease, &[]), Err(PluginError::BadReply(_))));
        let bad = Lease { ip: "x".into(), pool: "10.0.0.0/24".into() };
        assert!(matches!(lease_address(&bad, &[]), Err(PluginError::BadReply(_))));
        let wrong_family = Lease { ip: "10.0.0.1".into(), pool: "fd00::/64".into() };
        assert!(matches!(lease_address(&wrong_family, &[]), Err(PluginError::BadReply(_))));
    }

    #[test]
    fn gateways_go_to_the_containing_subnet() {
        let mut ips = vec![
            IpConfig { address: "10.0.0.7/24".parse().unwrap(), gateway: None },
            IpConfig { address: "fd00::7/64".parse().unwrap(), gateway: None },
        ];
        apply_gateways(&mut ips, &["10.0.0.1".parse().unwrap()]);
        assert_eq!(ips[0].gateway, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ips[1].gateway, None);
    }
}
