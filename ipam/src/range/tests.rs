use super::*;

fn spec(range: &str) -> RangeSpec {
    RangeSpec { range: range.into(), ..Default::default() }
}

fn ok(s: &RangeSpec) -> (Range, Vec<Warning>) {
    Range::parse(s, "ipam").unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn bounds(r: &Range) -> (String, String) {
    (r.ip_at(r.first()).to_string(), r.ip_at(r.last()).to_string())
}

#[test]
fn plain_cidr_uses_all_usable_addresses() {
    let (r, w) = ok(&spec("192.168.2.0/24"));
    assert_eq!(r.network().to_string(), "192.168.2.0/24");
    assert_eq!(bounds(&r), ("192.168.2.1".into(), "192.168.2.254".into()));
    assert!(w.is_empty());
    let (r, _) = ok(&spec("2001::0/116"));
    assert_eq!(bounds(&r), ("2001::1".into(), "2001::ffe".into()));
}

#[test]
fn host_bits_are_ignored_like_whereabouts() {
    // whereabouts' README example: 192.168.2.225/28 is the /28 at .224.
    let (r, w) = ok(&spec("192.168.2.225/28"));
    assert_eq!(r.network().to_string(), "192.168.2.224/28");
    assert_eq!(bounds(&r), ("192.168.2.225".into(), "192.168.2.238".into()));
    assert!(w.is_empty(), "first usable address, nothing lost: {w:?}");
    let (_, w) = ok(&spec("10.0.0.50/24"));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].field, "ipam.range");
}

#[test]
fn range_end_syntax_sets_both_bounds() {
    let (r, w) = ok(&spec("192.168.2.225-192.168.2.230/28"));
    assert_eq!(r.network().to_string(), "192.168.2.224/28");
    assert_eq!(bounds(&r), ("192.168.2.225".into(), "192.168.2.230".into()));
    assert!(w.is_empty());
    let (r, _) = ok(&spec("00192.00168.1.5-000000192.168.1.25/24"));
    assert_eq!(bounds(&r), ("192.168.1.5".into(), "192.168.1.25".into()));
    let mut s = spec("192.168.1.5-192.168.1.25/24");
    s.range_start = Some("192.168.1.100".into());
    let (r, w) = ok(&s);
    assert_eq!(bounds(&r), ("192.168.1.5".into(), "192.168.1.25".into()));
    assert_eq!(w[0].field, "ipam.range_start");
}

#[test]
fn range_start_outside_the_end_network_is_an_error() {
    let e = Range::parse(&spec("192.168.1.5-192.168.2.25/28"), "ipam").unwrap_err();
    assert_eq!(e.field, "ipam.range");
    assert!(matches!(e.problem, FieldProblem::StartOutsideNetwork { .. }), "{e}");
    assert!(e.to_string().contains("192.168.2.16/28"), "{e}");
}

#[test]
fn start_and_end_keys_are_honoured_when_usable() {
    let mut s = spec("192.168.2.230/24");
    s.range_start = Some("192.168.2.223".into());
    s.range_end = Some("00192.00168.02.229".into());
    let (r, w) = ok(&s);
    assert_eq!(bounds(&r), ("192.168.2.223".into(), "192.168.2.229".into()));
    assert!(w.is_empty(), "range_start given: host bits do not matter: {w:?}");
}

#[test]
fn unusable_start_and_end_are_ignored_with_a_warning() {
    let mut s = spec("10.0.0.0/24");
    s.range_start = Some("10.0.1.5".into());
    s.range_end = Some("10.0.0.255".into());
    let (r, w) = ok(&s);
    assert_eq!(bounds(&r), ("10.0.0.1".into(), "10.0.0.254".into()));
    let fields: Vec<_> = w.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["ipam.range_start", "ipam.range_end"]);

    // An end below the start is ignored too (whereabouts' GetIPRange).
    let mut s = spec("10.0.0.0/24");
    s.range_start = Some("10.0.0.100".into());
    s.range_end = Some("10.0.0.50".into());
    let (r, w) = ok(&s);
    assert_eq!(bounds(&r), ("10.0.0.100".into(), "10.0.0.254".into()));
    assert_eq!(w[0].field, "ipam.range_end");
}

#[test]
fn tiny_networks_have_no_usable_address() {
    for cidr in ["10.0.0.0/31", "10.0.0.1/32", "2001::/127", "2001::1/128"] {
        let e = Range::parse(&spec(cidr), "ipam").unwrap_err();
        assert_eq!(e.problem, FieldProblem::NoUsableAddress, "{cidr}");
    }
    let (r, _) = ok(&spec("10.0.0.0/30"));
    assert_eq!(bounds(&r), ("10.0.0.1".into(), "10.0.0.2".into()));
}

/// whereabouts ignores a bound or an exclude of the other family (it never matches an address of
/// the range): so do we, with a warning naming the field.
#[test]
fn bounds_and_excludes_of_the_other_family_are_ignored_with_a_warning() {
    let mut s = spec("10.0.0.0/24");
    s.range_start = Some("2001::1".into());
    s.range_end = Some("fd00::9".into());
    s.exclude = vec!["2001::/64".into(), "10.0.0.1".into()];
    let (r, w) = ok(&s);
    assert_eq!(bounds(&r), ("10.0.0.1".into(), "10.0.0.254".into()));
    assert_eq!(r.excludes(), &[(1, 1)]);
    let fields: Vec<&str> = w.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["ipam.range_start", "ipam.range_end", "ipam.exclude[0]"]);
    // The range-end syntax cannot mix families: there is no network to take the start from.
    let e = Range::parse(&spec("2001::1-10.0.0.5/24"), "ipam").unwrap_err();
    assert!(matches!(e.problem, FieldProblem::FamilyMismatch { .. }));
}

/// whereabouts' decoder turns an unparsable `range_start`/`range_end` into nothing.
#[test]
fn unparsable_bounds_are_ignored_with_a_warning() {
    let mut s = spec("10.0.0.0/24");
    s.range_start = Some("junk".into());
    s.range_end = Some("10.0.0.300".into());
    let (r, w) = ok(&s);
    assert_eq!(bounds(&r), ("10.0.0.1".into(), "10.0.0.254".into()));
    assert_eq!(w.len(), 2);
    assert!(w[0].message.contains("not an address"), "{w:?}");
}

#[test]
fn garbage_is_reported_with_field_and_value() {
    for (range, problem) in [
        ("", FieldProblem::Missing),
        ("10.0.0/24", FieldProblem::InvalidCidr),
        ("10.0.0.0/33", FieldProblem::InvalidCidr),
        ("10.0.0.0", FieldProblem::InvalidCidr),
        ("x-10.0.0.5/24", FieldProblem::InvalidIp),
        ("10.0.0.1-10.0.0.5", FieldProblem::InvalidCidr),
    ] {
        let e = Range::parse(&spec(range), "ipam.ipRanges[2]").unwrap_err();
        assert_eq!((e.field.as_str(), &e.problem), ("ipam.ipRanges[2].range", &problem), "{range}");
        assert_eq!(e.value, range);
    }
    let mut s = spec("10.0.0.0/24");
    s.exclude = vec!["10.0.0.0/24".into(), "bogus".into()];
    let e = Range::parse(&s, "ipam").unwrap_err();
    assert_eq!((e.field.as_str(), e.problem), ("ipam.exclude[1]", FieldProblem::InvalidCidrOrIp));
}

#[test]
fn excludes_are_whole_blocks_merged_and_clipped() {
    let mut s = spec("192.168.2.0/24");
    s.exclude = vec![
        "192.168.2.229/30".into(),
        "192.168.2.0/28".into(),
        "192.168.2.16".into(),
        "192.168.0.0/16".into(),
        "10.0.0.0/8".into(),
    ];
    let (r, w) = ok(&s);
    // The /16 covers the whole /24; the /8 is outside and ignored with a warning.
    assert_eq!(r.excludes(), &[(0, 255)]);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].field, "ipam.exclude[4]");

    let mut s = spec("192.168.2.0/24");
    s.exclude = vec!["192.168.2.229/30".into(), "192.168.2.0/28".into(), "192.168.2.16".into()];
    let (r, _) = ok(&s);
    assert_eq!(r.excludes(), &[(0, 16), (228, 231)]);
    assert_eq!(r.exclude_containing(229), Some((228, 231)));
    assert_eq!(r.exclude_containing(17), None);
    assert!(!r.allows(16) && r.allows(17) && !r.allows(230));
}

#[test]
fn dot_zero_addresses_are_not_allowed_in_ipv4() {
    let (r, _) = ok(&spec("10.0.0.0/16"));
    assert!(!r.allows(256), "10.0.1.0");
    assert!(r.allows(255), "10.0.0.255 is a valid host in a /16");
    let (r, _) = ok(&spec("2001::/64"));
    assert!(r.allows(256));
}

#[test]
fn serialized_form_is_revalidated() {
    let mut s = spec("192.168.1.5-192.168.1.25/24");
    s.exclude = vec!["192.168.1.8/30".into()];
    let (r, _) = ok(&s);
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"cidr":"192.168.1.0/24","start":"192.168.1.5","end":"192.168.1.25","exclude":["192.168.1.8/30"]}"#
    );
    assert_eq!(serde_json::from_str::<Range>(&json).unwrap(), r);
    assert_eq!(Range::parse(&r.to_spec(), "ipam").unwrap(), (r.clone(), vec![]), "the spec round-trips");
    for bad in [
        r#"{"cidr":"192.168.1.0/24","start":"192.168.1.0","end":"192.168.1.25"}"#,
        r#"{"cidr":"192.168.1.0/24","start":"192.168.1.30","end":"192.168.1.25"}"#,
        r#"{"cidr":"192.168.1.0/32","start":"192.168.1.0","end":"192.168.1.0"}"#,
        r#"{"cidr":"192.168.1.0/24","start":"2001::1","end":"192.168.1.25"}"#,
    ] {
        assert!(serde_json::from_str::<Range>(bad).is_err(), "{bad}");
    }
}
