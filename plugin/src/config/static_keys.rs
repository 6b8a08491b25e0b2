//! The static IPAM plugin's vocabulary that whereabouts copies to every result: `routes` (every
//! field CNI results define), `dns`, `addresses` and the `gateway` (with the untagged `Gateway`
//! key quirk of whereabouts' decoder).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::json::Obj;
use ipam::ip::{parse_cidr_sloppy, parse_ip_sloppy};
use ipam::{FieldError, FieldProblem, Warning};

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A route (CNI `types.Route`): `dst` keeps its host bits as written, `mtu`, `advmss` and
/// `priority` are omitted when 0, `table` and `scope` printed whenever set (0 included), as libcni
/// prints them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination (host bits kept, as CNI's `types.ParseCIDR` keeps them).
    pub dst: IpNet,
    /// Next hop; the runtime's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// Route MTU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i64,
    /// Advertised MSS.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub advmss: i64,
    /// Route priority (metric).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i64,
    /// Routing table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<i64>,
    /// Route scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<i64>,
}

impl Route {
    /// A route to `dst` via `gw` with no other field set.
    pub fn to(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route { dst, gw, mtu: 0, advmss: 0, priority: 0, table: None, scope: None }
    }
}

/// DNS settings, passed through to the CNI result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// True when nothing is set (1.x results then leave `dns` out).
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// A fixed address from the `addresses` key: echoed in every result (as whereabouts and the static
/// plugin do), not reserved, since every pod of the network gets it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticAddress {
    /// Address with prefix length.
    pub address: IpNet,
    /// Gateway for this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

pub(super) fn ip(s: &str, field: &str) -> Result<IpAddr, FieldError> {
    parse_ip_sloppy(s).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidIp))
}

pub(super) fn cidr_with_host(s: &str, field: &str) -> Result<IpNet, FieldError> {
    let (addr, prefix) = parse_cidr_sloppy(s).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidCidr))?;
    Ok(IpNet::new(addr, prefix).expect("prefix checked"))
}

/// `gateway`, else whereabouts' untagged `Gateway` key (only that exact spelling reaches it;
/// an unparsable one is dropped with a warning, as whereabouts drops it silently).
pub(super) fn parse_gateway(ipam: &Obj, warnings: &mut Vec<Warning>) -> Result<Option<IpAddr>, FieldError> {
    if let Some(g) = ipam.string("gateway")?.filter(|g| !g.is_empty()) {
        return ip(&g, &ipam.field("gateway")).map(Some);
    }
    let Some(g) = ipam.string("Gateway")?.filter(|g| !g.is_empty()) else {
        return Ok(None);
    };
    match parse_ip_sloppy(&g) {
        Some(addr) => Ok(Some(addr)),
        None => {
            let message = format!("{g:?} is not an address: ignored, as whereabouts ignores it");
            warnings.push(Warning { field: ipam.field("Gateway"), message });
            Ok(None)
        }
    }
}

fn integer(r: &Obj, key: &str) -> Result<Option<i64>, FieldError> {
    match r.number(key)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(Some(n as i64)),
        Some(n) => {
            Err(FieldError::new(r.field(key), n.to_string(), FieldProblem::WrongType("expected an integer".into())))
        }
    }
}

pub(super) fn parse_routes(ipam: &Obj) -> Result<Vec<Route>, FieldError> {
    let mut routes = Vec::new();
    for (i, item) in ipam.array("routes")?.iter().enumerate() {
        let r = Obj::new(item, &format!("{}[{i}]", ipam.field("routes")))?;
        let dst = r.string("dst")?.ok_or_else(|| FieldError::new(r.field("dst"), "", FieldProblem::Missing))?;
        let dst = cidr_with_host(&dst, &r.field("dst"))?;
        let gw = r.string("gw")?.filter(|g| !g.is_empty()).map(|g| ip(&g, &r.field("gw"))).transpose()?;
        routes.push(Route {
            dst,
            gw,
            mtu: integer(&r, "mtu")?.unwrap_or(0),
            advmss: integer(&r, "advmss")?.unwrap_or(0),
            priority: integer(&r, "priority")?.unwrap_or(0),
            table: integer(&r, "table")?,
            scope: integer(&r, "scope")?,
        });
    }
    Ok(routes)
}

pub(super) fn parse_dns(ipam: &Obj) -> Result<Dns, FieldError> {
    let Some(dns) = ipam.object("dns")? else {
        return Ok(Dns::default());
    };
    Ok(Dns {
        nameservers: dns.strings("nameservers")?,
        domain: dns.string("domain")?.filter(|d| !d.is_empty()),
        search: dns.strings("search")?,
        options: dns.strings("options")?,
    })
}

pub(super) fn parse_addresses(ipam: &Obj) -> Result<Vec<StaticAddress>, FieldError> {
    let mut out = Vec::new();
    for (i, item) in ipam.array("addresses")?.iter().enumerate() {
        let a = Obj::new(item, &format!("{}[{i}]", ipam.field("addresses")))?;
        let address =
            a.string("address")?.ok_or_else(|| FieldError::new(a.field("address"), "", FieldProblem::Missing))?;
        let address = cidr_with_host(&address, &a.field("address"))?;
        let gateway =
            a.string("gateway")?.filter(|g| !g.is_empty()).map(|g| ip(&g, &a.field("gateway"))).transpose()?;
        out.push(StaticAddress { address, gateway });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: &serde_json::Value) -> Obj<'_> {
        Obj::new(v, "ipam").unwrap()
    }

    #[test]
    fn routes_keep_every_field_and_the_host_bits_of_dst() {
        let v = json!({"routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.254", "mtu": 1400, "advmss": 1300,
                                   "priority": 5, "table": 100, "scope": 0}, {"dst": "10.9.8.7/8"}]});
        let routes = parse_routes(&obj(&v)).unwrap();
        assert_eq!(routes[1], Route::to("10.9.8.7/8".parse().unwrap(), None));
        assert_eq!(
            serde_json::to_value(&routes).unwrap(),
            json!([{"dst": "0.0.0.0/0", "gw": "10.0.0.254", "mtu": 1400, "advmss": 1300, "priority": 5,
                    "table": 100, "scope": 0}, {"dst": "10.9.8.7/8"}])
        );
        let bad = json!({"routes": [{"dst": "0.0.0.0/0", "mtu": 1.5}]});
        assert_eq!(parse_routes(&obj(&bad)).unwrap_err().field, "ipam.routes[0].mtu");
    }

    #[test]
    fn the_untagged_gateway_key_is_used_only_without_gateway() {
        let mut w = Vec::new();
        let both = json!({"gateway": "10.0.0.1", "Gateway": "10.0.0.9"});
        assert_eq!(parse_gateway(&obj(&both), &mut w).unwrap(), Some("10.0.0.1".parse().unwrap()));
        let quirk = json!({"Gateway": "10.0.0.9"});
        assert_eq!(parse_gateway(&obj(&quirk), &mut w).unwrap(), Some("10.0.0.9".parse().unwrap()));
        let junk = json!({"Gateway": "junk"});
        assert_eq!(parse_gateway(&obj(&junk), &mut w).unwrap(), None);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].field, "ipam.Gateway");
        assert_eq!(parse_gateway(&obj(&json!({"gateway": "junk"})), &mut w).unwrap_err().field, "ipam.gateway");
    }
}
