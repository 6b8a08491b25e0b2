//! How whereabouts names and encodes things in Kubernetes, so the objects the exporter writes and
//! the importer reads are the ones whereabouts itself uses:
//!
//! - an `IPPool` is named `<network_name>-<range>` (just `<range>` for the unnamed network), the
//!   range being the pool's CIDR with `:` and `/` replaced by `-` (and a trailing `:` completed
//!   with `0` first);
//! - an `OverlappingRangeIPReservation` is named `<network_name>-<ip>` (just `<ip>`), `:` → `-`;
//! - `spec.allocations` is keyed by the decimal offset of the address from the range's network
//!   address; `podref` is `namespace/name`.

use std::net::IpAddr;

use ipnet::IpNet;

fn dashed(s: &str) -> String {
    let mut s = s.to_string();
    if s.ends_with(':') {
        s.push('0');
    }
    s.replace([':', '/'], "-")
}

fn prefixed(network: &str, rest: String) -> String {
    if network.is_empty() {
        rest
    } else {
        format!("{network}-{rest}")
    }
}

/// The `IPPool` name of pool (`network`, `cidr`).
pub fn ippool_name(network: &str, cidr: &IpNet) -> String {
    prefixed(network, dashed(&cidr.trunc().to_string()))
}

/// The `OverlappingRangeIPReservation` name of `ip` in `network`.
pub fn reservation_name(network: &str, ip: &IpAddr) -> String {
    prefixed(network, dashed(&ip.to_string()))
}

/// The offset of `ip` from the network address of `cidr` (None when outside it).
pub fn offset_of(cidr: &IpNet, ip: &IpAddr) -> Option<u128> {
    if !cidr.contains(ip) {
        return None;
    }
    Some(as_u128(ip) - as_u128(&cidr.network()))
}

/// The address at `offset` from the network address of `cidr` (None when outside it).
pub fn ip_at(cidr: &IpNet, offset: u128) -> Option<IpAddr> {
    let base = as_u128(&cidr.network());
    let ip = match cidr {
        IpNet::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(u32::try_from(base.checked_add(offset)?).ok()?)),
        IpNet::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(base.checked_add(offset)?)),
    };
    cidr.contains(&ip).then_some(ip)
}

fn as_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// `namespace/name`, whereabouts' `podref`.
pub fn podref(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Splits a `podref` into namespace and name (None when it is not `namespace/name`).
pub fn parse_podref(podref: &str) -> Option<(&str, &str)> {
    let (ns, name) = podref.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then_some((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn pool_names_follow_whereabouts() {
        assert_eq!(ippool_name("", &net("10.10.0.0/16")), "10.10.0.0-16");
        assert_eq!(ippool_name("tenant-a", &net("192.168.2.224/28")), "tenant-a-192.168.2.224-28");
        assert_eq!(ippool_name("", &net("fd00:10::/64")), "fd00-10---64");
        assert_eq!(ippool_name("n", &net("2001:db8::/120")), "n-2001-db8---120");
    }

    #[test]
    fn reservation_names_follow_whereabouts() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(reservation_name("", &ip("10.0.0.5")), "10.0.0.5");
        assert_eq!(reservation_name("net1", &ip("10.0.0.5")), "net1-10.0.0.5");
        assert_eq!(reservation_name("", &ip("fd00::")), "fd00--0");
        assert_eq!(reservation_name("", &ip("fd00::5")), "fd00--5");
    }

    #[test]
    fn offsets_round_trip() {
        let n = net("10.0.1.0/23");
        let ip: IpAddr = "10.0.1.7".parse().unwrap();
        assert_eq!(offset_of(&n, &ip), Some(263));
        assert_eq!(ip_at(&n, 263), Some(ip));
        assert_eq!(ip_at(&n, 512), None);
        assert_eq!(offset_of(&n, &"10.0.2.0".parse().unwrap()), None);
        let v6 = net("fd00::/120");
        assert_eq!(ip_at(&v6, 255), Some("fd00::ff".parse().unwrap()));
    }

    #[test]
    fn podrefs_split() {
        assert_eq!(parse_podref("default/web-0"), Some(("default", "web-0")));
        assert_eq!(parse_podref("web-0"), None);
        assert_eq!(parse_podref("/x"), None);
        assert_eq!(podref("a", "b"), "a/b");
    }
}
