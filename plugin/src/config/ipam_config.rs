//! The `ipam` section, validated: ranges, network name, overlap flag, the static-IPAM keys
//! (`gateway`, `routes`, `dns`, `addresses`), the keys of whereabouts-rs, and the per-request
//! addresses a runtime may ask for (`runtimeConfig.ips`, `args.cni.ips`). Keys arrive in exact
//! field names ([`super::go_fields`]) and with the flat file merged in.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::cluster_keys::ClusterKeys;
use super::json::Obj;
use super::static_keys::{cidr_with_host, ip, parse_addresses, parse_dns, parse_gateway, parse_routes};
use super::static_keys::{Dns, Route, StaticAddress};
use ipam::{Family, FieldError, FieldProblem, Range, RangeSpec, Warning};

/// Most ranges a configuration may list (`range` + `ipRanges`).
pub const MAX_RANGES: usize = ipam::event::MAX_RANGES;

/// The validated IPAM configuration of one network attachment.
#[derive(Clone, Debug, PartialEq)]
pub struct IpamConfig {
    /// `cniVersion` as given (the plugin checks it against the versions it supports).
    pub cni_version: String,
    /// The CNI network `name`.
    pub cni_network: String,
    /// whereabouts' `network_name` ("" when unset): with each range's CIDR it names a pool.
    pub network_name: String,
    /// `range` (if set) followed by `ipRanges`. The `gateway` is excluded from each range that
    /// contains it: it is never handed to a pod.
    pub ranges: Vec<Range>,
    /// `enable_overlapping_ranges` (default true).
    pub overlapping: bool,
    /// `gateway` (or whereabouts' untagged `Gateway` key).
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
    /// Where the cluster is and how to talk to it.
    pub cluster: ClusterKeys,
    /// `log_file`.
    pub log_file: Option<String>,
    /// `log_level`.
    pub log_level: Option<String>,
    /// `prevResult`, for CHECK (parsed by the plugin per CNI version).
    pub prev_result: Option<Value>,
}

impl IpamConfig {
    /// A configuration that names only the network and the cluster: what DEL works with when the
    /// configuration would not pass ADD's validation (it releases by owner, needing nothing else).
    pub fn for_release(cni_version: String, cni_network: String, network_name: String, cluster: ClusterKeys) -> Self {
        IpamConfig {
            cni_version,
            cni_network,
            network_name,
            ranges: Vec::new(),
            overlapping: true,
            gateway: None,
            routes: Vec::new(),
            dns: Dns::default(),
            addresses: Vec::new(),
            requested_ips: Vec::new(),
            cluster,
            log_file: None,
            log_level: None,
            prev_result: None,
        }
    }
}

pub(super) fn parse(
    ipam: &Obj,
    cni_version: String,
    cni_network: String,
    netconf: &Obj,
    warnings: &mut Vec<Warning>,
) -> Result<IpamConfig, FieldError> {
    if ipam.string("node_slice_size")?.is_some_and(|s| !s.is_empty()) {
        let message = "ignored: node slices split a range per node so that whereabouts' nodes contend less for \
                       its single Kubernetes lease; the cluster allocates from the whole range without a lease";
        warnings.push(Warning { field: ipam.field("node_slice_size"), message: message.into() });
    }
    let gateway = parse_gateway(ipam, warnings)?;
    let ranges = parse_ranges(ipam, gateway, warnings)?;
    let requested_ips = parse_requested_ips(netconf, &ranges)?;
    Ok(IpamConfig {
        cni_version,
        cni_network,
        network_name: ipam.string("network_name")?.unwrap_or_default(),
        overlapping: ipam.bool("enable_overlapping_ranges")?.unwrap_or(true),
        gateway,
        routes: parse_routes(ipam)?,
        dns: parse_dns(ipam)?,
        addresses: parse_addresses(ipam)?,
        requested_ips,
        cluster: ClusterKeys::parse(ipam)?,
        log_file: ipam.string("log_file")?.filter(|s| !s.is_empty()),
        log_level: ipam.string("log_level")?.filter(|s| !s.is_empty()),
        prev_result: netconf.get("prevResult").cloned(),
        ranges,
    })
}

/// `range` (with the top-level `range_start`, `range_end`, `exclude`) then `ipRanges`. As in
/// whereabouts, the top-level bounds and excludes belong to `range` only: without it they are
/// ignored (with a warning here).
fn parse_ranges(ipam: &Obj, gateway: Option<IpAddr>, warnings: &mut Vec<Warning>) -> Result<Vec<Range>, FieldError> {
    let mut specs: Vec<(RangeSpec, String)> = Vec::new();
    let top = RangeSpec {
        range: ipam.string("range")?.unwrap_or_default(),
        range_start: ipam.string("range_start")?,
        range_end: ipam.string("range_end")?,
        exclude: ipam.strings("exclude")?,
    };
    if !top.range.is_empty() {
        specs.push((top, ipam.path.clone()));
    } else {
        for key in ["range_start", "range_end", "exclude"] {
            if ipam.get(key).is_some() {
                let message = "ignored: it applies to the top-level range, which is not set".to_string();
                warnings.push(Warning { field: ipam.field(key), message });
            }
        }
    }
    let ip_ranges = ipam.array("ipRanges")?;
    if specs.len() + ip_ranges.len() > MAX_RANGES {
        let n = (specs.len() + ip_ranges.len()).to_string();
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
        specs.push((spec, entry.path.clone()));
    }
    specs.into_iter().map(|(spec, path)| parse_range(spec, &path, gateway, warnings)).collect()
}

/// Validates one range; the gateway, when the range could hand it out, is excluded (a deliberate
/// difference: whereabouts hands it to the first pod).
fn parse_range(
    mut spec: RangeSpec,
    path: &str,
    gateway: Option<IpAddr>,
    warnings: &mut Vec<Warning>,
) -> Result<Range, FieldError> {
    let (range, w) = Range::parse(&spec, path)?;
    let Some(gw) = gateway.filter(|g| range.offset_of(g).is_some_and(|o| range.allows(o))) else {
        warnings.extend(w);
        return Ok(range);
    };
    spec.exclude.push(gw.to_string());
    let (range, w) = Range::parse(&spec, path)?;
    warnings.extend(w);
    Ok(range)
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
