//! ADD: one address from each range plus the requested static addresses, in one all-or-nothing
//! `Allocate` (idempotent per container+interface). The result lists the leases (prefix length of
//! their pool, the configured gateway of the same family), then the configuration's `addresses`
//! (echoed, not reserved, as whereabouts and the static plugin do), routes and DNS. A
//! configuration with neither ranges nor static addresses allocates nothing, as in whereabouts.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::resolve_requested_ip;
use ipam::{FieldError, FieldProblem};
use ipnet::IpNet;
use proto::ipam::{AllocateRequest, Lease, RangeSpec};

use super::{attachment, require_endpoints};
use crate::client::{request, Cluster};
use crate::cni::v02::extra_per_family;
use crate::cni::v1::{IpConfig, IpamResult};
use crate::cni::{print_result, Shape};
use crate::error::PluginError;
use crate::pending::PendingStore;
use crate::request::Request;

/// Longest an ADD waits for the pending-release store's lock.
const LOCK_WAIT_CAP: Duration = Duration::from_secs(10);

/// Runs ADD and prints the result in the configuration's version.
pub async fn add(req: &Request, cluster: &mut Cluster<'_>) -> Result<String, PluginError> {
    let statics = requested_ips(req)?;
    check_legacy_version(req, &statics)?;
    let result = allocate(req, cluster, &statics).await?;
    Ok(print_result(&result, req.version)?)
}

/// CNI 0.1.0/0.2.0 results hold one address per family: whereabouts refuses more than one static
/// address of a family for them, and a result with no address at all cannot be written.
fn check_legacy_version(req: &Request, statics: &[IpNet]) -> Result<(), PluginError> {
    if req.version.shape() != Shape::V02 {
        return Ok(());
    }
    let cfg = &req.config;
    let fixed: Vec<IpNet> = cfg.addresses.iter().map(|a| a.address).chain(statics.iter().copied()).collect();
    if extra_per_family(&fixed) != (0, 0) {
        let problem = FieldProblem::Invalid(format!("CNI version {} allows one address per family", req.version));
        let value = fixed.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        return Err(FieldError::new("ipam.addresses", value, problem).into());
    }
    if cfg.ranges.is_empty() && fixed.is_empty() {
        return Err(crate::cni::v02::NoAddress(req.version).into());
    }
    Ok(())
}

/// Takes back a DEL of this attachment that is still waiting to be delivered: the address it
/// would free is this ADD's again.
fn take_back_pending_del(req: &Request) -> Result<(), PluginError> {
    let store = PendingStore::new(&req.state_dir);
    let (network, cid, ifname) = (&req.config.network_name, &req.invocation.container_id, &req.invocation.ifname);
    if !store.may_hold(network, cid, ifname) {
        return Ok(());
    }
    let fail = |e: std::io::Error| PluginError::PendingStore(format!("{}: {e}", store.dir().display()));
    let Some(lock) = store.lock(req.budget.remaining().min(LOCK_WAIT_CAP)).map_err(fail)? else {
        return Ok(());
    };
    if store.cancel(&lock, network, cid, ifname).map_err(fail)? {
        tracing::info!("a DEL of this attachment was still waiting to be delivered: taken back");
    }
    Ok(())
}

async fn allocate(req: &Request, cluster: &mut Cluster<'_>, statics: &[IpNet]) -> Result<IpamResult, PluginError> {
    let cfg = &req.config;
    let mut result = IpamResult { routes: cfg.routes.clone(), dns: cfg.dns.clone(), ..IpamResult::new() };
    if !cfg.ranges.is_empty() || !statics.is_empty() {
        require_endpoints(req)?;
        take_back_pending_del(req)?;
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
            let address = lease_address(lease, statics)?;
            let gateway = cfg.gateway.filter(|g| g.is_ipv4() == address.addr().is_ipv4());
            let mut ip = IpConfig { address, gateway };
            if statics.iter().any(|s| s.addr() == address.addr()) {
                apply_gateways(std::slice::from_mut(&mut ip), &req.args.gateways);
            }
            result.ips.push(ip);
        }
        tracing::info!(leases = ?result.ips.iter().map(|i| i.address.to_string()).collect::<Vec<_>>(), "allocated");
    }
    let mut fixed: Vec<IpConfig> =
        cfg.addresses.iter().map(|a| IpConfig { address: a.address, gateway: a.gateway }).collect();
    apply_gateways(&mut fixed, &req.args.gateways);
    result.ips.extend(fixed);
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

/// `CNI_ARGS` `GATEWAY=`: set on each static address whose subnet contains it (whereabouts' rule:
/// never on an address allocated from a range).
fn apply_gateways(ips: &mut [IpConfig], gateways: &[IpAddr]) {
    for gw in gateways {
        for ip in ips.iter_mut().filter(|ip| ip.address.contains(gw)) {
            ip.gateway = Some(*gw);
        }
    }
}

fn to_proto(spec: ipam::RangeSpec) -> RangeSpec {
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
