//! IP address helpers: addresses as `u128` numbers, family checks, and the lenient ("sloppy") parser
//! whereabouts uses, which accepts IPv4 octets with leading zeros (`00192.168.1.5`) as decimal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// The address family of a range or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// IPv4 (32-bit addresses).
    V4,
    /// IPv6 (128-bit addresses).
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Number of bits in an address of this family.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// "IPv4" or "IPv6", for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// An address as an unsigned number (IPv4 in the low 32 bits).
pub fn ip_to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// The address of `family` whose number is `n` (IPv4 takes the low 32 bits).
pub fn u128_to_ip(family: Family, n: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// Parses an IP address like Kubernetes' `ParseIPSloppy`: standard syntax, plus IPv4 octets with
/// leading zeros read as decimal (never octal). Returns `None` when `s` is not an address.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    parse_v4_leading_zeros(s).map(IpAddr::V4)
}

fn parse_v4_leading_zeros(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 12 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// Parses `ADDRESS/PREFIX` leniently (see [`parse_ip_sloppy`]). Returns the address as written
/// (host bits kept) and the prefix length; `None` when either part is invalid.
pub fn parse_cidr_sloppy(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = s.trim().split_once('/')?;
    let ip = parse_ip_sloppy(addr)?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    if prefix > Family::of(&ip).bits() {
        return None;
    }
    Some((ip, prefix))
}

/// Builds the network (host bits cleared) of `ip/prefix`. `prefix` must be valid for the family.
pub fn network_of(ip: IpAddr, prefix: u8) -> IpNet {
    match ip {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::new(v4, prefix).expect("prefix checked").trunc()),
        IpAddr::V6(v6) => IpNet::V6(Ipv6Net::new(v6, prefix).expect("prefix checked").trunc()),
    }
}

/// Number of host bits of a network (`32 - prefix` or `128 - prefix`).
pub fn host_bits(net: &IpNet) -> u8 {
    net.max_prefix_len() - net.prefix_len()
}

/// Last offset of a network with `host_bits` host bits (its size minus one), without overflow.
pub fn last_offset(host_bits: u8) -> u128 {
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_parser_reads_leading_zeros_as_decimal() {
        assert_eq!(parse_ip_sloppy("00192.00168.01.010"), Some("192.168.1.10".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("000000192.168.1.25"), Some("192.168.1.25".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("2001:db8::1"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_ip_sloppy("256.1.1.1"), None);
        assert_eq!(parse_ip_sloppy("1.2.3"), None);
        assert_eq!(parse_ip_sloppy("1.2.3.4.5"), None);
        assert_eq!(parse_ip_sloppy("1.2.3.-4"), None);
        assert_eq!(parse_ip_sloppy(""), None);
    }

    #[test]
    fn cidr_parser_keeps_host_bits_and_checks_prefix() {
        assert_eq!(parse_cidr_sloppy("192.168.2.225/28"), Some(("192.168.2.225".parse().unwrap(), 28)));
        assert_eq!(parse_cidr_sloppy("2001::0/116"), Some(("2001::".parse().unwrap(), 116)));
        assert_eq!(parse_cidr_sloppy("10.0.0.0/33"), None);
        assert_eq!(parse_cidr_sloppy("10.0.0.0/"), None);
        assert_eq!(parse_cidr_sloppy("10.0.0.0"), None);
        assert_eq!(parse_cidr_sloppy("10.0.0.0/+8"), None);
    }

    #[test]
    fn numbers_round_trip() {
        for s in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "2001:db8::ff", "ffff::1"] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(u128_to_ip(Family::of(&ip), ip_to_u128(&ip)), ip);
        }
        assert_eq!(network_of("192.168.2.225".parse().unwrap(), 28).to_string(), "192.168.2.224/28");
        assert_eq!(last_offset(128), u128::MAX);
        assert_eq!(last_offset(8), 255);
    }
}
