//! The `ipam` section, validated: ranges, network name, overlap flag, the static-IPAM keys
//! (`gateway`, `routes`, `dns`, `addresses`), our `endpoints`, and the per-request addresses a
//! runtime may ask for (`runtimeConfig.ips`, `args.cni.ips`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::Obj;
use crate::domain::ip::{network_of, parse_cidr_sloppy, parse_ip_sloppy};
use crate::domain::{Family, FieldError, FieldProblem, Range, RangeSpec, Warning};

/// Keys whereabouts accepts that we read without using (or that are ours), never warned about.
const ACCEPTED_KEYS: &[&str] = &[
    "type",
    "name",
    "range",
    "range_start",
    "range_end",
    "exclude",
    "ipRanges",
    "network_name",
    "enable_overlapping_ranges",
    "gateway",
    "routes",
    "dns",
    "addresses",
    "configuration_path",
    "log_file",
    "log_level",
    "endpoints",
    "timeout_seconds",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "kubernetes",
    "datastore",
    "node_slice_size",
    "sleep_for_race",
    "reconciler_cron_expression",
];
/// Key prefixes whereabouts accepts (`leader_lease_duration`, `etcd_host`, ...).
const ACCEPTED_PREFIXES: &[&str] = &["leader_", "etcd_"];
/// Most ranges a configuration may list (`range` + `ipRanges`).
pub const MAX_RANGES: usize = crate::domain::event::MAX_RANGES;

/// A route, as the static IPAM plugin reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination network.
    pub dst: IpNet,
    /// Next hop; the runtime's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
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

/// The validated IPAM configuration of one network attachment.
#[derive(Clone, Debug, PartialEq)]
pub struct IpamConfig {
    /// `cniVersion` as given (the plugin checks it against the versions it supports).
    pub cni_version: String,
    /// The CNI network `name`.
    pub cni_network: String,
    /// whereabouts' `network_name` ("" when unset): with each range's CIDR it names a pool.
    pub network_name: String,
    /// `range` (if set) followed by `ipRanges`.
    pub ranges: Vec<Range>,
    /// `enable_overlapping_ranges` (default true).
    pub overlapping: bool,
    /// `gateway`.
    pub gateway: Option<IpAddr>,
    /// `routes`.
    pub routes: Vec<Route>,
    /// `dns`.
    pub dns: Dns,
    /// `addresses`.
    pub addresses: Vec<StaticAddress>,
    /// Addresses this attachment asks for (`runtimeConfig.ips`, `args.cni.ips`), reserved
    /// cluster-wide. A bare IP takes the prefix length of the range containing it.
    pub requested_ips: Vec<IpNet>,
    /// `endpoints`: `host:port` of cluster nodes.
    pub endpoints: Vec<String>,
    /// `timeout_seconds`: the plugin's total time budget.
    pub timeout_seconds: Option<f64>,
    /// `tls_ca`, `tls_cert`, `tls_key`: PEM files for mutual TLS with the cluster (all three, or
    /// none for a cluster running plain TCP).
    pub tls: Option<TlsPaths>,
    /// `log_file`.
    pub log_file: Option<String>,
    /// `log_level`.
    pub log_level: Option<String>,
    /// `prevResult`, for CHECK (parsed by the plugin per CNI version).
    pub prev_result: Option<Value>,
}

pub(super) fn parse(
    ipam: &Obj,
    cni_version: String,
    cni_network: String,
    netconf: &Obj,
    warnings: &mut Vec<Warning>,
) -> Result<IpamConfig, FieldError> {
    for key in ipam.map.keys() {
        let known = ACCEPTED_KEYS.contains(&key.as_str()) || ACCEPTED_PREFIXES.iter().any(|p| key.starts_with(p));
        if !known {
            warnings.push(Warning { field: ipam.field(key), message: "unknown key, ignored".into() });
        }
    }
    let mut ranges = Vec::new();
    if let Some(range) = ipam.string("range")?.filter(|r| !r.is_empty()) {
        let spec = RangeSpec {
            range,
            range_start: ipam.string("range_start")?,
            range_end: ipam.string("range_end")?,
            exclude: ipam.strings("exclude")?,
        };
        ranges.push(parse_range(&spec, &ipam.path, warnings)?);
    }
    let ip_ranges = ipam.array("ipRanges")?;
    if ranges.len() + ip_ranges.len() > MAX_RANGES {
        let n = (ranges.len() + ip_ranges.len()).to_string();
        return Err(FieldError::new(ipam.field("ipRanges"), n, FieldProblem::TooLarge { limit: MAX_RANGES as u64 }));
    }
    for (i, item) in ip_ranges.iter().enumerate() {
        let entry = Obj::new(item, &format!("{}[{i}]", ipam.field("ipRanges")))?;
        let spec = RangeSpec {
            range: entry.string("range")?.unwrap_or_default(),
            range_start: entry.string("range_start")?,
            range_end: entry.string("range_end")?,
            exclude: entry.strings("exclude")?,
        };
        ranges.push(parse_range(&spec, &entry.path, warnings)?);
    }
    let addresses = parse_addresses(ipam)?;
    if ranges.is_empty() && addresses.is_empty() {
        return Err(FieldError::new(ipam.field("range"), "", FieldProblem::Missing));
    }
    let requested_ips = parse_requested_ips(netconf, &ranges)?;
    Ok(IpamConfig {
        cni_version,
        cni_network,
        network_name: ipam.string("network_name")?.unwrap_or_default(),
        overlapping: ipam.bool("enable_overlapping_ranges")?.unwrap_or(true),
        gateway: ipam
            .string("gateway")?
            .filter(|g| !g.is_empty())
            .map(|g| ip(&g, &ipam.field("gateway")))
            .transpose()?,
        routes: parse_routes(ipam)?,
        dns: parse_dns(ipam)?,
        addresses,
        requested_ips,
        endpoints: parse_endpoints(ipam)?,
        timeout_seconds: parse_timeout(ipam)?,
        tls: parse_tls(ipam)?,
        log_file: ipam.string("log_file")?.filter(|s| !s.is_empty()),
        log_level: ipam.string("log_level")?.filter(|s| !s.is_empty()),
        prev_result: netconf.get("prevResult").cloned(),
        ranges,
    })
}

fn parse_range(spec: &RangeSpec, path: &str, warnings: &mut Vec<Warning>) -> Result<Range, FieldError> {
    let (range, w) = Range::parse(spec, path)?;
    warnings.extend(w);
    Ok(range)
}

fn ip(s: &str, field: &str) -> Result<IpAddr, FieldError> {
    parse_ip_sloppy(s).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidIp))
}

fn cidr_with_host(s: &str, field: &str) -> Result<IpNet, FieldError> {
    let (addr, prefix) = parse_cidr_sloppy(s).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidCidr))?;
    Ok(IpNet::new(addr, prefix).expect("prefix checked"))
}

fn parse_routes(ipam: &Obj) -> Result<Vec<Route>, FieldError> {
    let mut routes = Vec::new();
    for (i, item) in ipam.array("routes")?.iter().enumerate() {
        let r = Obj::new(item, &format!("{}[{i}]", ipam.field("routes")))?;
        let dst = r.string("dst")?.ok_or_else(|| FieldError::new(r.field("dst"), "", FieldProblem::Missing))?;
        let (addr, prefix) =
            parse_cidr_sloppy(&dst).ok_or_else(|| FieldError::new(r.field("dst"), &dst, FieldProblem::InvalidCidr))?;
        let gw = r.string("gw")?.filter(|g| !g.is_empty()).map(|g| ip(&g, &r.field("gw"))).transpose()?;
        routes.push(Route { dst: network_of(addr, prefix), gw });
    }
    Ok(routes)
}

fn parse_dns(ipam: &Obj) -> Result<Dns, FieldError> {
    let Some(dns) = ipam.object("dns")? else {
        return Ok(Dns::default());
    };
    Ok(Dns {
        nameservers: dns.strings("nameservers")?,
        domain: dns.string("domain")?,
        search: dns.strings("search")?,
        options: dns.strings("options")?,
    })
}

fn parse_addresses(ipam: &Obj) -> Result<Vec<StaticAddress>, FieldError> {
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

/// `runtimeConfig.ips` and `args.cni.ips`: `ADDRESS/PREFIX` or a bare address.
fn parse_requested_ips(netconf: &Obj, ranges: &[Range]) -> Result<Vec<IpNet>, FieldError> {
    let mut raw = Vec::new();
    if let Some(rc) = netconf.object("runtimeConfig")? {
        raw.extend(rc.strings("ips")?.into_iter().enumerate().map(|(i, s)| (format!("{}[{i}]", rc.field("ips")), s)));
    }
    if let Some(cni) = netconf.object("args")?.map(|a| a.object("cni")).transpose()?.flatten() {
        raw.extend(cni.strings("ips")?.into_iter().enumerate().map(|(i, s)| (format!("{}[{i}]", cni.field("ips")), s)));
    }
    if raw.len() > MAX_RANGES {
        return Err(FieldError::new(
            "runtimeConfig.ips",
            raw.len().to_string(),
            FieldProblem::TooLarge { limit: MAX_RANGES as u64 },
        ));
    }
    let mut out: Vec<IpNet> = Vec::new();
    for (field, s) in raw {
        let net = resolve_requested_ip(&s, &field, ranges)?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Parses a requested address; a bare IP takes the prefix of the first range containing it, or
/// /32 (/128) outside every range.
pub fn resolve_requested_ip(s: &str, field: &str, ranges: &[Range]) -> Result<IpNet, FieldError> {
    if s.contains('/') {
        return cidr_with_host(s, field);
    }
    let addr = ip(s, field)?;
    let prefix = ranges
        .iter()
        .find(|r| r.network().contains(&addr))
        .map(|r| r.network().prefix_len())
        .unwrap_or_else(|| Family::of(&addr).bits());
    Ok(IpNet::new(addr, prefix).expect("valid prefix"))
}

fn parse_endpoints(ipam: &Obj) -> Result<Vec<String>, FieldError> {
    let endpoints = ipam.strings("endpoints")?;
    for (i, e) in endpoints.iter().enumerate() {
        let field = format!("{}[{i}]", ipam.field("endpoints"));
        let valid = e.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) && !host.contains('/')
        });
        if !valid {
            return Err(FieldError::new(field, e, FieldProblem::Invalid("expected host:port".into())));
        }
    }
    Ok(endpoints)
}

/// PEM files of the plugin's TLS identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPaths {
    /// CA bundle that signs the cluster's certificates.
    pub ca: String,
    /// The plugin's certificate (O=whereabouts:node, CN=the Kubernetes node name).
    pub cert: String,
    /// Its key.
    pub key: String,
}

fn parse_tls(ipam: &Obj) -> Result<Option<TlsPaths>, FieldError> {
    let get = |k: &str| ipam.string(k).map(|v| v.filter(|s| !s.is_empty()));
    match (get("tls_ca")?, get("tls_cert")?, get("tls_key")?) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsPaths { ca, cert, key })),
        (ca, cert, _) => {
            let missing = if ca.is_none() {
                "tls_ca"
            } else if cert.is_none() {
                "tls_cert"
            } else {
                "tls_key"
            };
            let problem = FieldProblem::Invalid("tls_ca, tls_cert and tls_key go together".into());
            Err(FieldError::new(ipam.field(missing), "", problem))
        }
    }
}

fn parse_timeout(ipam: &Obj) -> Result<Option<f64>, FieldError> {
    let Some(t) = ipam.number("timeout_seconds")? else {
        return Ok(None);
    };
    if !(t > 0.0 && t <= 600.0) {
        let problem = FieldProblem::Invalid("must be more than 0 and at most 600 seconds".into());
        return Err(FieldError::new(ipam.field("timeout_seconds"), t.to_string(), problem));
    }
    Ok(Some(t))
}
