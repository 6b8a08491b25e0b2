//! A canonical allocation range: which addresses may be handed out, lowest first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::history::RangeSpec;

/// Why a [`RangeSpec`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// `range` is neither a CIDR nor `first-last/prefix`.
    #[error("range {range:?}: {reason}")]
    BadRange {
        /// The text as written.
        range: String,
        /// What is wrong.
        reason: String,
    },
    /// An `exclude` entry is neither a CIDR nor an IP.
    #[error("exclude {exclude:?}: not a CIDR or an IP address")]
    BadExclude {
        /// The text as written.
        exclude: String,
    },
}

/// A parsed range. Usable addresses are network+1 … last-1 of the CIDR, narrowed by
/// `range_start`/`range_end` when those lie inside that span, minus excluded blocks and,
/// for IPv4, minus addresses whose last octet is 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Range {
    cidr: IpNet,
    first: u128,
    last: u128,
    excludes: Vec<(u128, u128)>,
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn bad_range(spec: &RangeSpec, reason: impl Into<String>) -> RangeError {
    RangeError::BadRange { range: spec.range.clone(), reason: reason.into() }
}

impl Range {
    /// Canonicalises a request range; host bits of the CIDR are ignored.
    pub fn parse(spec: &RangeSpec) -> Result<Self, RangeError> {
        let (cidr_text, dash_start, dash_end) = match spec.range.split_once('-') {
            Some((first, rest)) => {
                let start: IpAddr = first.trim().parse().map_err(|_| bad_range(spec, "bad first address"))?;
                let end_text = rest.split('/').next().unwrap_or_default();
                let end: IpAddr = end_text.trim().parse().map_err(|_| bad_range(spec, "bad last address"))?;
                (rest.trim(), Some(start), Some(end))
            }
            None => (spec.range.trim(), None, None),
        };
        let cidr: IpNet = cidr_text.parse().map_err(|e: ipnet::AddrParseError| bad_range(spec, e.to_string()))?;
        let cidr = cidr.trunc();
        let net = num(cidr.network());
        let bcast = num(cidr.broadcast());
        let (lo, hi) = if bcast >= net + 2 { (net + 1, bcast - 1) } else { (1, 0) };
        let inside = |ip: IpAddr| same_family(ip, cidr.addr()) && (lo..=hi).contains(&num(ip));
        let mut first = lo;
        if let Some(s) = spec.range_start.or(dash_start).filter(|s| inside(*s)) {
            first = num(s);
        }
        let mut last = hi;
        if let Some(e) = spec.range_end.or(dash_end).filter(|e| inside(*e)) {
            if num(e) >= first {
                last = num(e);
            }
        }
        let mut excludes = Vec::new();
        for text in &spec.exclude {
            let block = parse_block(text).ok_or_else(|| RangeError::BadExclude { exclude: text.clone() })?;
            if same_family(block.addr(), cidr.addr()) {
                excludes.push((num(block.network()), num(block.broadcast())));
            }
        }
        excludes.sort_unstable();
        Ok(Range { cidr, first, last, excludes })
    }

    /// The pool CIDR (host bits cleared); with the network name it names the pool.
    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    /// Whether `ip` lies in the CIDR at all (usable or not).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(&ip)
    }

    /// Whether `ip` may ever be handed out from this range.
    pub fn is_usable(&self, ip: IpAddr) -> bool {
        let n = num(ip);
        same_family(ip, self.cidr.addr())
            && (self.first..=self.last).contains(&n)
            && self.excluded_until(n).is_none()
            && !(ip.is_ipv4() && n & 0xff == 0)
    }

    /// The lowest usable address for which `taken` is false, or `None` when exhausted.
    /// Cost grows with the number of taken addresses below the answer, not with the range size.
    pub fn lowest_free(&self, taken: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
        let mut c = self.first;
        while c <= self.last {
            if let Some(end) = self.excluded_until(c) {
                c = end.checked_add(1)?;
                continue;
            }
            let ip = self.addr(c);
            if (ip.is_ipv4() && c & 0xff == 0) || taken(ip) {
                c += 1;
                continue;
            }
            return Some(ip);
        }
        None
    }

    fn excluded_until(&self, n: u128) -> Option<u128> {
        self.excludes.iter().filter(|(lo, hi)| (*lo..=*hi).contains(&n)).map(|(_, hi)| *hi).max()
    }

    fn addr(&self, n: u128) -> IpAddr {
        match self.cidr {
            // n lies inside an IPv4 CIDR, so it fits in 32 bits.
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }
}

fn parse_block(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if text.contains('/') {
        text.parse::<IpNet>().ok().map(|n| n.trunc())
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(r: &str) -> Range {
        Range::parse(&RangeSpec::new(r)).unwrap()
    }

    fn all(r: &Range) -> Vec<IpAddr> {
        let mut out = Vec::new();
        while let Some(next) = r.lowest_free(|a| out.contains(&a)) {
            out.push(next);
        }
        out
    }

    #[test]
    fn skips_network_and_last_address() {
        let r = range("10.1.0.5/29");
        assert_eq!(r.cidr().to_string(), "10.1.0.0/29");
        let got: Vec<String> = all(&r).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]);
    }

    #[test]
    fn ipv4_dot_zero_is_never_given() {
        let r = Range::parse(&RangeSpec {
            range: "10.1.0.0/23".into(),
            range_start: Some(ip("10.1.0.254")),
            range_end: None,
            exclude: vec![],
        })
        .unwrap();
        let got = all(&r);
        assert_eq!(got[..3], [ip("10.1.0.254"), ip("10.1.0.255"), ip("10.1.1.1")]);
        assert!(!r.is_usable(ip("10.1.1.0")));
        assert_eq!(*got.last().unwrap(), ip("10.1.1.254"));
    }

    #[test]
    fn start_end_outside_span_are_ignored_and_end_below_start_too() {
        let spec = |s: &str, e: &str| RangeSpec {
            range: "10.1.0.0/28".into(),
            range_start: Some(ip(s)),
            range_end: Some(ip(e)),
            exclude: vec![],
        };
        let r = Range::parse(&spec("10.1.0.0", "10.1.0.15")).unwrap();
        assert_eq!(all(&r).len(), 14);
        let r = Range::parse(&spec("10.1.0.9", "10.1.0.3")).unwrap();
        assert_eq!(all(&r), (9..=14).map(|i| ip(&format!("10.1.0.{i}"))).collect::<Vec<_>>());
        let r = Range::parse(&spec("10.1.0.3", "10.1.0.4")).unwrap();
        assert_eq!(all(&r), [ip("10.1.0.3"), ip("10.1.0.4")]);
    }

    #[test]
    fn excludes_remove_whole_blocks() {
        let r = Range::parse(&RangeSpec {
            range: "10.1.0.0/28".into(),
            range_start: None,
            range_end: None,
            exclude: vec!["10.1.0.0/30".into(), "10.1.0.5".into(), "fd00::/64".into()],
        })
        .unwrap();
        assert_eq!(r.lowest_free(|_| false), Some(ip("10.1.0.4")));
        assert_eq!(r.lowest_free(|a| a == ip("10.1.0.4")), Some(ip("10.1.0.6")));
    }

    #[test]
    fn range_end_syntax_and_ipv6() {
        let r = range("192.168.2.225-192.168.2.230/28");
        assert_eq!(r.cidr().to_string(), "192.168.2.224/28");
        assert_eq!(all(&r).len(), 6);
        let r = range("fd00::/126");
        assert_eq!(all(&r), [ip("fd00::1"), ip("fd00::2")]);
        assert_eq!(all(&range("10.0.0.1/31")), Vec::<IpAddr>::new());
        assert_eq!(all(&range("10.0.0.1/32")), Vec::<IpAddr>::new());
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(matches!(Range::parse(&RangeSpec::new("10.0.0.0/33")), Err(RangeError::BadRange { .. })));
        let mut spec = RangeSpec::new("10.0.0.0/24");
        spec.exclude.push("nope".into());
        assert!(matches!(Range::parse(&spec), Err(RangeError::BadExclude { .. })));
    }
}
