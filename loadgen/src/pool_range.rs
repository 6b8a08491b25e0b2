//! The pools of a run: aligned ranges of a power-of-two size laid out one after the other,
//! IPv4 from 10.0.0.0 up and IPv6 from fd00:be::/64 up, so both systems get the same CIDRs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The first IPv4 pool starts here.
const IPV4_BASE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 0);
/// Addresses the IPv4 pools may span (10.0.0.0/8).
const IPV4_SPAN: u128 = 1 << 24;
/// The first IPv6 pool starts here.
const IPV6_BASE: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xbe, 0, 0, 0, 0, 0, 0);
/// Addresses the IPv6 pools may span (fd00:be::/64).
const IPV6_SPAN: u128 = 1 << 64;

/// An aligned range of `size` addresses (a power of two, at least 4): pool `index` of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRange {
    network: u128,
    size: u128,
    ipv6: bool,
}

/// A pool that cannot be laid out (the messages are what the load generators print).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The size is not a power of two of at least 4.
    #[error("pool size {size} must be a power of two ≥ 4")]
    Size {
        /// The size asked for.
        size: u128,
    },
    /// The pool would end past the span of the family's pools.
    #[error("pool {index} of size {size} does not fit")]
    DoesNotFit {
        /// Which pool.
        index: u32,
        /// The size asked for.
        size: u128,
    },
}

impl PoolRange {
    /// Pool `index` of `size` addresses: IPv4 from 10.0.0.0 up, IPv6 from fd00:be::/64 up.
    pub fn new(index: u32, size: u128, ipv6: bool) -> Result<PoolRange, RangeError> {
        if !size.is_power_of_two() || size < 4 {
            return Err(RangeError::Size { size });
        }
        let (base, span) =
            if ipv6 { (u128::from(IPV6_BASE), IPV6_SPAN) } else { (u128::from(u32::from(IPV4_BASE)), IPV4_SPAN) };
        let offset = size.checked_mul(u128::from(index)).filter(|o| o + size <= span);
        let offset = offset.ok_or(RangeError::DoesNotFit { index, size })?;
        Ok(PoolRange { network: base + offset, size, ipv6 })
    }

    /// Pools `0..count` of `size` addresses each.
    pub fn layout(count: u32, size: u128, ipv6: bool) -> Result<Vec<PoolRange>, RangeError> {
        (0..count).map(|i| PoolRange::new(i, size, ipv6)).collect()
    }

    /// Addresses in the range, network and last address included.
    pub fn size(&self) -> u128 {
        self.size
    }

    /// Whether it is an IPv6 range.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// First usable offset (the network address is never given).
    pub fn first_offset(&self) -> u128 {
        1
    }

    /// Last usable offset (the last address of the CIDR is never given).
    pub fn last_offset(&self) -> u128 {
        self.size - 2
    }

    /// Offsets `first_offset..=last_offset`: the addresses a whereabouts-style allocator may hand out.
    pub fn usable(&self) -> u128 {
        self.size - 2
    }

    /// IPv4 addresses ending in `.0` inside the usable offsets (none in IPv6, none in a range
    /// smaller than 256); allocators that never hand them out have this many fewer addresses.
    pub fn inner_dot_zero(&self) -> u128 {
        if self.ipv6 {
            0
        } else {
            (self.size / 256).saturating_sub(1)
        }
    }

    /// The address at `offset`.
    pub fn ip(&self, offset: u128) -> IpAddr {
        let v = self.network + offset;
        if self.ipv6 {
            IpAddr::V6(Ipv6Addr::from(v))
        } else {
            IpAddr::V4(Ipv4Addr::from(v as u32))
        }
    }

    /// The range in CIDR notation.
    pub fn cidr(&self) -> String {
        let bits = if self.ipv6 { 128 } else { 32 };
        format!("{}/{}", self.ip(0), bits - self.size.trailing_zeros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_aligned_and_exclude_network_and_last() {
        let r = PoolRange::new(1, 4096, false).unwrap();
        assert_eq!(r.cidr(), "10.0.16.0/20");
        assert_eq!(r.ip(r.first_offset()).to_string(), "10.0.16.1");
        assert_eq!(r.ip(r.last_offset()).to_string(), "10.0.31.254");
        assert_eq!(r.usable(), 4094);
        assert_eq!((r.size(), r.is_ipv6()), (4096, false));
        assert_eq!(PoolRange::new(2, 4096, true).unwrap().cidr(), "fd00:be::2000/116");
        assert_eq!(PoolRange::new(0, 1 << 64, true).unwrap().cidr(), "fd00:be::/64");
        assert_eq!(PoolRange::new(0, 4, false).unwrap().cidr(), "10.0.0.0/30");
    }

    #[test]
    fn bad_sizes_and_pools_past_the_span_are_refused() {
        assert_eq!(PoolRange::new(0, 100, false), Err(RangeError::Size { size: 100 }));
        assert_eq!(PoolRange::new(0, 2, false), Err(RangeError::Size { size: 2 }));
        assert_eq!(PoolRange::new(0, 0, true), Err(RangeError::Size { size: 0 }));
        assert_eq!(PoolRange::new(5000, 4096, false), Err(RangeError::DoesNotFit { index: 5000, size: 4096 }));
        // The last /20 of 10.0.0.0/8 fits, the one after it does not.
        assert_eq!(PoolRange::new(4095, 4096, false).unwrap().cidr(), "10.255.240.0/20");
        assert!(PoolRange::new(4096, 4096, false).is_err());
        assert!(PoolRange::new(1, 1 << 64, true).is_err());
        assert!(PoolRange::new(u32::MAX, 1 << 120, true).is_err(), "overflowing offsets are refused");
        assert_eq!(PoolRange::new(0, 100, false).unwrap_err().to_string(), "pool size 100 must be a power of two ≥ 4");
    }

    #[test]
    fn layout_is_consecutive_pools() {
        let pools = PoolRange::layout(3, 65536, false).unwrap();
        let cidrs: Vec<String> = pools.iter().map(PoolRange::cidr).collect();
        assert_eq!(cidrs, ["10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"]);
        assert!(PoolRange::layout(257, 65536, false).is_err());
        assert!(PoolRange::layout(0, 65536, false).unwrap().is_empty());
    }

    #[test]
    fn inner_dot_zero_addresses() {
        assert_eq!(PoolRange::new(1, 4096, false).unwrap().inner_dot_zero(), 15);
        assert_eq!(PoolRange::new(0, 256, false).unwrap().inner_dot_zero(), 0);
        assert_eq!(PoolRange::new(0, 64, false).unwrap().inner_dot_zero(), 0);
        assert_eq!(PoolRange::new(0, 4096, true).unwrap().inner_dot_zero(), 0);
    }
}
