//! The IPAM result of CNI 0.1.0 and 0.2.0 (libcni `types/020`), which a configuration without
//! `cniVersion` also gets: one `ip4` and one `ip6` entry (`ip`, `gateway`, `routes`), and `dns`
//! (always present). Converted from the newest result as libcni converts it: the first address of
//! each family is kept and the others dropped; each route goes to the entry of its destination's
//! family (dropped when that family has no address) with only `dst` and `gw`.

use std::net::IpAddr;

use crate::config::Dns;
use ipnet::IpNet;
use serde::Serialize;

use super::{v1, CniVersion};

/// A route of a 0.1.0/0.2.0 result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Next hop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

/// The `ip4` or `ip6` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpConfig {
    /// Address with prefix length.
    pub ip: IpNet,
    /// Gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Routes of this family.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

/// A 0.1.0/0.2.0 IPAM result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpamResult {
    /// The version the result is printed in.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// The first IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip4: Option<IpConfig>,
    /// The first IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip6: Option<IpConfig>,
    /// DNS settings.
    pub dns: Dns,
}

/// A result with no address cannot be written in this shape (libcni: "cannot convert: no valid
/// IP addresses").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert the result to CNI {0}: no valid IP addresses")]
pub struct NoAddress(pub CniVersion);

impl IpamResult {
    /// Converts the newest result to the 0.1.0/0.2.0 shape, labelled `version`.
    pub fn from_v1(result: &v1::IpamResult, version: CniVersion) -> Result<IpamResult, NoAddress> {
        let first = |v4: bool| {
            result.ips.iter().find(|ip| ip.address.addr().is_ipv4() == v4).map(|ip| IpConfig {
                ip: ip.address,
                gateway: ip.gateway,
                routes: Vec::new(),
            })
        };
        let (mut ip4, mut ip6) = (first(true), first(false));
        if ip4.is_none() && ip6.is_none() {
            return Err(NoAddress(version));
        }
        for r in &result.routes {
            let entry = if r.dst.addr().is_ipv4() { ip4.as_mut() } else { ip6.as_mut() };
            if let Some(entry) = entry {
                entry.routes.push(Route { dst: r.dst, gw: r.gw });
            }
        }
        Ok(IpamResult { cni_version: version.as_str().to_string(), ip4, ip6, dns: result.dns.clone() })
    }
}

/// The number of addresses of each family (IPv4, IPv6) beyond the first that a 0.1.0/0.2.0 result
/// would drop: whereabouts refuses more than one *static* address per family for these versions.
pub fn extra_per_family(addresses: &[IpNet]) -> (usize, usize) {
    let v4 = addresses.iter().filter(|a| a.addr().is_ipv4()).count();
    let v6 = addresses.len() - v4;
    (v4.saturating_sub(1), v6.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Route as FullRoute;
    use serde_json::json;

    /// whereabouts' harness case h-result-0.2.0 (three ranges, three routes with every field).
    #[test]
    fn first_address_per_family_and_routes_by_destination_family() {
        let newest = v1::IpamResult {
            ips: vec![
                v1::IpConfig { address: "10.0.0.1/24".parse().unwrap(), gateway: Some("10.0.0.254".parse().unwrap()) },
                v1::IpConfig { address: "10.1.0.1/24".parse().unwrap(), gateway: None },
                v1::IpConfig { address: "fd00::1/64".parse().unwrap(), gateway: None },
            ],
            routes: vec![
                FullRoute {
                    mtu: 1400,
                    advmss: 1300,
                    priority: 5,
                    table: Some(100),
                    scope: Some(0),
                    ..FullRoute::to("0.0.0.0/0".parse().unwrap(), Some("10.0.0.254".parse().unwrap()))
                },
                FullRoute::to("10.9.8.7/8".parse().unwrap(), None),
                FullRoute::to("fd00:1::/64".parse().unwrap(), Some("fd00::1".parse().unwrap())),
            ],
            dns: Dns { nameservers: vec!["1.1.1.1".into()], ..Dns::default() },
            ..v1::IpamResult::new()
        };
        let old = IpamResult::from_v1(&newest, CniVersion::V0_2_0).unwrap();
        assert_eq!(
            serde_json::to_value(&old).unwrap(),
            json!({"cniVersion": "0.2.0",
                   "ip4": {"ip": "10.0.0.1/24", "gateway": "10.0.0.254",
                           "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.254"}, {"dst": "10.9.8.7/8"}]},
                   "ip6": {"ip": "fd00::1/64", "routes": [{"dst": "fd00:1::/64", "gw": "fd00::1"}]},
                   "dns": {"nameservers": ["1.1.1.1"]}})
        );
    }

    #[test]
    fn no_address_cannot_be_converted_and_dns_is_always_printed() {
        assert_eq!(IpamResult::from_v1(&v1::IpamResult::new(), CniVersion::V0_1_0), Err(NoAddress(CniVersion::V0_1_0)));
        let one = v1::IpamResult {
            ips: vec![v1::IpConfig { address: "fd00::2/64".parse().unwrap(), gateway: None }],
            routes: vec![FullRoute::to("0.0.0.0/0".parse().unwrap(), None)],
            ..v1::IpamResult::new()
        };
        let v = serde_json::to_value(IpamResult::from_v1(&one, CniVersion::V0_1_0).unwrap()).unwrap();
        assert_eq!(v, json!({"cniVersion": "0.1.0", "ip6": {"ip": "fd00::2/64"}, "dns": {}}), "v4 route dropped");
    }

    #[test]
    fn extra_addresses_are_counted_per_family() {
        let nets: Vec<IpNet> =
            ["10.0.0.1/24", "10.0.0.2/24", "fd00::1/64"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(extra_per_family(&nets), (1, 0));
        assert_eq!(extra_per_family(&[]), (0, 0));
    }
}
