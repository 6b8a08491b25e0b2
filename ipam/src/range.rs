//! One address range, as whereabouts reads it: a CIDR (or `START-END/PREFIX`), an optional
//! `range_start`/`range_end` (inclusive), and an `exclude` list. Validated once into [`Range`];
//! everything downstream trusts it.
//!
//! Rules (whereabouts' `GetIPRange` and `IterateForAssignment`):
//! - usable addresses are those between the network address and the last address of the CIDR;
//! - `range_start`/`range_end` outside that span (or an end below the start), not an address, or
//!   of the other family, are ignored, with a warning naming the field, so that configurations
//!   whereabouts accepts keep working;
//! - an `exclude` entry is a CIDR (host bits ignored, the whole block excluded) or a bare IP; one
//!   of the other family is ignored with a warning.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::{FieldError, FieldProblem, Warning};
use super::ip::{self, Family};

/// A range exactly as written in a CNI configuration (`range`, `range_start`, `range_end`, `exclude`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSpec {
    /// `CIDR` or `START-END/PREFIX`.
    pub range: String,
    /// First address to hand out (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<String>,
    /// Last address to hand out (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    /// CIDRs or IPs never handed out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// A validated range. Addresses are `u128` offsets from the network address.
///
/// Invariants: `network` has at least one usable address; `1 <= first <= last <= size - 2`;
/// `excludes` are sorted, disjoint, non-adjacent offset intervals inside the network.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RangeWire", into = "RangeWire")]
pub struct Range {
    network: IpNet,
    first: u128,
    last: u128,
    excludes: Vec<(u128, u128)>,
    exclude_nets: Vec<IpNet>,
}

/// The serialized form of a [`Range`]: effective bounds, re-validated when decoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RangeWire {
    cidr: IpNet,
    start: IpAddr,
    end: IpAddr,
    #[serde(default)]
    exclude: Vec<IpNet>,
}

impl From<Range> for RangeWire {
    fn from(r: Range) -> RangeWire {
        RangeWire { cidr: r.network, start: r.ip_at(r.first), end: r.ip_at(r.last), exclude: r.exclude_nets }
    }
}

impl TryFrom<RangeWire> for Range {
    type Error = FieldError;
    fn try_from(w: RangeWire) -> Result<Range, FieldError> {
        let spec = RangeSpec {
            range: w.cidr.to_string(),
            range_start: Some(w.start.to_string()),
            range_end: Some(w.end.to_string()),
            exclude: w.exclude.iter().map(ToString::to_string).collect(),
        };
        let (range, warnings) = Range::parse(&spec, "range")?;
        if range.ip_at(range.first) != w.start || range.ip_at(range.last) != w.end || !warnings.is_empty() {
            return Err(FieldError::new(
                "range",
                format!("{} {}-{}", w.cidr, w.start, w.end),
                FieldProblem::Invalid("start and end must be usable addresses of the network, start <= end".into()),
            ));
        }
        Ok(range)
    }
}

impl Range {
    /// Validates `spec`. `field` is the path used in errors and warnings (e.g. `ipam.ipRanges[0]`).
    pub fn parse(spec: &RangeSpec, field: &str) -> Result<(Range, Vec<Warning>), FieldError> {
        let mut warnings = Vec::new();
        let range_field = format!("{field}.range");
        let (network, syntax_bounds) = parse_network(&spec.range, &range_field)?;
        let family = Family::of(&network.addr());
        let host_bits = ip::host_bits(&network);
        if host_bits < 2 {
            return Err(FieldError::new(range_field, &spec.range, FieldProblem::NoUsableAddress));
        }
        let base = ip::ip_to_u128(&network.addr());
        let usable_last = ip::last_offset(host_bits) - 1;

        let (start, end) = match syntax_bounds {
            Some((start, end)) => {
                for (name, given) in [("range_start", &spec.range_start), ("range_end", &spec.range_end)] {
                    if given.is_some() {
                        warnings.push(Warning {
                            field: format!("{field}.{name}"),
                            message: format!("ignored: the range {:?} sets the bounds itself", spec.range),
                        });
                    }
                }
                (Some((start, range_field.clone())), Some((end, range_field.clone())))
            }
            None => {
                let (given, prefix) = ip::parse_cidr_sloppy(&spec.range).expect("parsed above");
                let given_offset = ip::ip_to_u128(&given) - base;
                if given_offset > 1 && spec.range_start.is_none() {
                    warnings.push(Warning {
                        field: range_field.clone(),
                        message: format!(
                            "host bits of {given}/{prefix} are ignored: allocation starts at the first usable \
                             address of {network} (use range_start or START-END/PREFIX to start later)"
                        ),
                    });
                }
                let start =
                    parse_bound(spec.range_start.as_deref(), family, &format!("{field}.range_start"), &mut warnings);
                let end = parse_bound(spec.range_end.as_deref(), family, &format!("{field}.range_end"), &mut warnings);
                (start, end)
            }
        };

        let mut first = 1u128;
        if let Some((start, start_field)) = start {
            let offset = offset_in(&network, base, &start);
            match offset {
                Some(o) if (1..=usable_last).contains(&o) => first = o,
                Some(0) if start_field == range_field => {}
                _ => warnings.push(Warning {
                    field: start_field,
                    message: format!(
                        "{start} is not a usable address of {network}: ignored, starting at {}",
                        ip_at(family, base, 1)
                    ),
                }),
            }
        }
        let mut last = usable_last;
        if let Some((end, end_field)) = end {
            match offset_in(&network, base, &end) {
                Some(o) if (first..=usable_last).contains(&o) => last = o,
                Some(o) if o == usable_last + 1 && end_field == range_field => {}
                _ => warnings.push(Warning {
                    field: end_field,
                    message: format!(
                        "{end} is not a usable address of {network} at or after the start {}: ignored, ending at {}",
                        ip_at(family, base, first),
                        ip_at(family, base, usable_last)
                    ),
                }),
            }
        }

        let mut excludes = Vec::new();
        let mut exclude_nets = Vec::new();
        for (i, entry) in spec.exclude.iter().enumerate() {
            let entry_field = format!("{field}.exclude[{i}]");
            let net = parse_exclude(entry, &entry_field)?;
            if Family::of(&net.addr()) != family {
                // whereabouts compares it with the range's addresses, which it never matches.
                let message = format!("{entry:?} is not an {} network: ignored", family.name());
                warnings.push(Warning { field: entry_field, message });
                continue;
            }
            let lo = ip::ip_to_u128(&net.network());
            let hi = ip::ip_to_u128(&net.broadcast());
            let net_last = base + ip::last_offset(host_bits);
            if hi < base || lo > net_last {
                warnings.push(Warning { field: entry_field, message: format!("{net} is outside {network}: ignored") });
                continue;
            }
            excludes.push((lo.max(base) - base, hi.min(net_last) - base));
            exclude_nets.push(net);
        }
        Ok((Range { network, first, last, excludes: merge_intervals(excludes), exclude_nets }, warnings))
    }

    /// The network (CIDR with host bits cleared): with the network name, it identifies the pool.
    pub fn network(&self) -> IpNet {
        self.network
    }

    /// IPv4 or IPv6.
    pub fn family(&self) -> Family {
        Family::of(&self.network.addr())
    }

    /// First offset that may be handed out (inclusive).
    pub fn first(&self) -> u128 {
        self.first
    }

    /// Last offset that may be handed out (inclusive).
    pub fn last(&self) -> u128 {
        self.last
    }

    /// The excluded offset intervals, sorted and merged.
    pub fn excludes(&self) -> &[(u128, u128)] {
        &self.excludes
    }

    /// The address at `offset` from the network address.
    pub fn ip_at(&self, offset: u128) -> IpAddr {
        ip_at(self.family(), ip::ip_to_u128(&self.network.addr()), offset)
    }

    /// The offset of `ip` if it is inside the network.
    pub fn offset_of(&self, ip: &IpAddr) -> Option<u128> {
        offset_in(&self.network, ip::ip_to_u128(&self.network.addr()), ip)
    }

    /// The excluded interval containing `offset`, if any.
    pub fn exclude_containing(&self, offset: u128) -> Option<(u128, u128)> {
        let idx = self.excludes.partition_point(|&(_, hi)| hi < offset);
        self.excludes.get(idx).copied().filter(|&(lo, _)| lo <= offset)
    }

    /// True when `offset` may be handed out by the allocator from this range (bounds, exclusions,
    /// IPv4 `.0` rule).
    pub fn allows(&self, offset: u128) -> bool {
        (self.first..=self.last).contains(&offset)
            && self.exclude_containing(offset).is_none()
            && !(self.family() == Family::V4 && matches!(self.ip_at(offset), IpAddr::V4(v4) if v4.octets()[3] == 0))
    }

    /// The effective range as a spec (CIDR, start, end, excludes): what a client sends on the
    /// wire, validated again by the server.
    pub fn to_spec(&self) -> RangeSpec {
        RangeSpec {
            range: self.network.to_string(),
            range_start: Some(self.ip_at(self.first).to_string()),
            range_end: Some(self.ip_at(self.last).to_string()),
            exclude: self.exclude_nets.iter().map(ToString::to_string).collect(),
        }
    }

    /// Short human form, `CIDR` or `CIDR[start-end]`, used in errors.
    pub fn describe(&self) -> String {
        let usable_last = ip::last_offset(ip::host_bits(&self.network)) - 1;
        if self.first == 1 && self.last == usable_last {
            self.network.to_string()
        } else {
            format!("{}[{}-{}]", self.network, self.ip_at(self.first), self.ip_at(self.last))
        }
    }
}

/// Parses `CIDR` or `START-END/PREFIX`; returns the network and, for the latter, the bounds.
fn parse_network(s: &str, field: &str) -> Result<(IpNet, Option<(IpAddr, IpAddr)>), FieldError> {
    if s.trim().is_empty() {
        return Err(FieldError::new(field, s, FieldProblem::Missing));
    }
    if let Some((start, end_cidr)) = s.split_once('-') {
        let start = ip::parse_ip_sloppy(start).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidIp))?;
        let (end, prefix) =
            ip::parse_cidr_sloppy(end_cidr).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidCidr))?;
        let network = ip::network_of(end, prefix);
        if Family::of(&start) != Family::of(&end) {
            let expected = Family::of(&end).name().into();
            return Err(FieldError::new(field, s, FieldProblem::FamilyMismatch { expected }));
        }
        if !network.contains(&start) {
            return Err(FieldError::new(field, s, FieldProblem::StartOutsideNetwork { network }));
        }
        return Ok((network, Some((start, end))));
    }
    let (addr, prefix) =
        ip::parse_cidr_sloppy(s).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidCidr))?;
    Ok((ip::network_of(addr, prefix), None))
}

/// A `range_start`/`range_end`. One that is not an address, or of the other family, is ignored with
/// a warning: whereabouts ignores both (its decoder turns an unparsable bound into nothing, and a
/// bound outside the range is never used).
fn parse_bound(
    value: Option<&str>,
    family: Family,
    field: &str,
    warnings: &mut Vec<Warning>,
) -> Option<(IpAddr, String)> {
    let value = value.filter(|v| !v.trim().is_empty())?;
    let message = match ip::parse_ip_sloppy(value) {
        Some(ip) if Family::of(&ip) == family => return Some((ip, field.to_string())),
        Some(_) => format!("{value:?} is not an {} address: ignored", family.name()),
        None => format!("{value:?} is not an address: ignored"),
    };
    warnings.push(Warning { field: field.to_string(), message });
    None
}

fn parse_exclude(entry: &str, field: &str) -> Result<IpNet, FieldError> {
    if let Some((addr, prefix)) = ip::parse_cidr_sloppy(entry) {
        return Ok(ip::network_of(addr, prefix));
    }
    let ip = ip::parse_ip_sloppy(entry).ok_or_else(|| FieldError::new(field, entry, FieldProblem::InvalidCidrOrIp))?;
    Ok(ip::network_of(ip, Family::of(&ip).bits()))
}

fn offset_in(network: &IpNet, base: u128, ip: &IpAddr) -> Option<u128> {
    network.contains(ip).then(|| ip::ip_to_u128(ip) - base)
}

fn ip_at(family: Family, base: u128, offset: u128) -> IpAddr {
    ip::u128_to_ip(family, base + offset)
}

fn merge_intervals(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(prev) if lo <= prev.1.saturating_add(1) => prev.1 = prev.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests;
