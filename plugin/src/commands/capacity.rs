//! How many addresses a range can hand out: its bounds, minus exclusions, minus IPv4 addresses
//! ending in `.0` (the allocator's rules, `Range::allows`), counted without iterating.

use ipam::{Family, Range};

/// Addresses of `range` the allocator may give (saturating at `u128::MAX`).
pub fn allocatable(range: &Range) -> u128 {
    let base = match range.ip_at(0) {
        std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    };
    let v4 = range.family() == Family::V4;
    let mut total = 0u128;
    let mut lo = range.first();
    for &(ex_lo, ex_hi) in range.excludes() {
        if ex_hi < lo {
            continue;
        }
        if ex_lo > range.last() {
            break;
        }
        if ex_lo > lo {
            total = total.saturating_add(count(base, lo, ex_lo - 1, v4));
        }
        lo = ex_hi.saturating_add(1);
        if ex_hi >= range.last() {
            return total;
        }
    }
    if lo <= range.last() {
        total = total.saturating_add(count(base, lo, range.last(), v4));
    }
    total
}

/// Offsets `lo..=hi`, less IPv4 `.0` addresses.
fn count(base: u128, lo: u128, hi: u128, v4: bool) -> u128 {
    let n = (hi - lo).saturating_add(1);
    if !v4 {
        return n;
    }
    let (a, b) = (base + lo, base + hi);
    let zeros = b / 256 - a / 256 + u128::from(a % 256 == 0);
    n - zeros
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipam::RangeSpec;

    fn range(r: &str, start: Option<&str>, end: Option<&str>, exclude: &[&str]) -> Range {
        let spec = RangeSpec {
            range: r.into(),
            range_start: start.map(Into::into),
            range_end: end.map(Into::into),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        };
        Range::parse(&spec, "ipam").unwrap().0
    }

    /// The naive count: every offset `Range::allows`.
    fn naive(r: &Range) -> u128 {
        (r.first()..=r.last()).filter(|o| r.allows(*o)).count() as u128
    }

    #[test]
    fn matches_the_allocator_rules() {
        let cases = [
            range("10.0.0.0/24", None, None, &[]),
            range("10.0.0.0/23", None, None, &[]),
            range("10.0.0.0/22", Some("10.0.0.200"), Some("10.0.2.10"), &["10.0.1.0/25", "10.0.2.5"]),
            range("192.168.2.225/28", None, None, &["192.168.2.229/30", "192.168.2.236/32"]),
            range("10.0.0.0/24", None, None, &["10.0.0.0/24"]),
            range("10.0.0.0/29", None, None, &["10.0.0.0/30"]),
            range("fd00::/120", None, None, &["fd00::10/124"]),
        ];
        for r in &cases {
            assert_eq!(allocatable(r), naive(r), "{}", r.describe());
        }
        assert_eq!(allocatable(&cases[0]), 254);
        assert_eq!(allocatable(&cases[4]), 0);
    }

    #[test]
    fn huge_ipv6_ranges_do_not_overflow() {
        assert_eq!(allocatable(&range("fd00::/64", None, None, &[])), (1u128 << 64) - 2);
        assert_eq!(allocatable(&range("::/0", None, None, &[])), u128::MAX - 1);
    }
}
