//! Configurations whereabouts accepts that an exact-key, strict loader refused (issue 17): key
//! casing, leniency, static-only sections, the flat file's deep merge, the gateway, and what DEL
//! can still use from a configuration ADD refuses.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn load_ok(json: &str) -> Loaded {
    load(json.as_bytes(), &NoFiles).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn ranges(l: &Loaded) -> Vec<String> {
    l.config.ranges.iter().map(|r| r.describe()).collect()
}

fn warned(l: &Loaded) -> Vec<&str> {
    l.warnings.iter().map(|w| w.field.as_str()).collect()
}

#[test]
fn keys_are_matched_case_insensitively_as_go_does() {
    let l = load_ok(
        r#"{"CNIVERSION":"0.3.1","Name":"n","IPAM":{"Type":"whereabouts","RANGE":"10.0.0.0/24","Range_Start":"10.0.0.5",
            "Exclude":["10.0.0.7"],"IPRanges":[{"Range":"fd00::/120","RANGE_END":"fd00::9"}],"Network_Name":"t",
            "Enable_Overlapping_Ranges":false,"DNS":{"NameServers":["1.1.1.1"]}}}"#,
    );
    assert_eq!(l.config.cni_version, "0.3.1");
    assert_eq!(l.config.cni_network, "n");
    assert_eq!(ranges(&l), ["10.0.0.0/24[10.0.0.5-10.0.0.254]", "fd00::/120[fd00::1-fd00::9]"]);
    assert_eq!(l.config.ranges[0].excludes(), &[(7, 7)]);
    assert_eq!((l.config.network_name.as_str(), l.config.overlapping), ("t", false));
    assert_eq!(l.config.dns.nameservers, ["1.1.1.1"]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn camel_case_is_not_snake_case_the_key_is_ignored_with_a_warning() {
    let l = load_ok(r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","rangeStart":"10.0.0.50"}}"#);
    assert_eq!(ranges(&l), ["10.0.0.0/24"]);
    assert_eq!(warned(&l), ["ipam.rangeStart"]);
}

#[test]
fn what_whereabouts_ignores_is_accepted_with_a_warning() {
    let l = load_ok(
        r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","range_start":"junk","range_end":"fd00::5",
            "exclude":["fd00::/64","10.0.0.3"],"node_slice_size":"/28"}}"#,
    );
    assert_eq!(ranges(&l), ["10.0.0.0/24"]);
    assert_eq!(warned(&l), ["ipam.node_slice_size", "ipam.range_start", "ipam.range_end", "ipam.exclude[0]"]);
    let l = load_ok(
        r#"{"name":"n","ipam":{"type":"whereabouts","ipRanges":[{"range":"10.0.0.0/24"}],"range_start":"10.0.0.9","exclude":["10.0.0.1"]}}"#,
    );
    assert_eq!(ranges(&l), ["10.0.0.0/24"], "top-level bounds belong to the top-level range only");
    assert_eq!(warned(&l), ["ipam.range_start", "ipam.exclude"]);
}

#[test]
fn a_section_without_ranges_is_valid() {
    let l = load_ok(r#"{"name":"n","ipam":{"type":"whereabouts"}}"#);
    assert!(l.config.ranges.is_empty() && l.config.addresses.is_empty());
    let l = load_ok(r#"{"name":"n","runtimeConfig":{"ips":["10.9.0.5/24"]},"ipam":{"type":"whereabouts"}}"#);
    assert_eq!(l.config.requested_ips[0].to_string(), "10.9.0.5/24");
}

#[test]
fn the_gateway_is_never_in_a_range() {
    let l = load_ok(r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","gateway":"10.0.0.1"}}"#);
    let r = &l.config.ranges[0];
    assert!(!r.allows(1), "the gateway is excluded");
    assert!(r.allows(2));
    assert!(l.warnings.is_empty());
    // Outside the range, or at the range's edges: nothing to exclude.
    let l = load_ok(r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","gateway":"192.168.0.1"}}"#);
    assert!(l.config.ranges[0].excludes().is_empty());
    // The untagged `Gateway` key of whereabouts' decoder.
    let l = load_ok(r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","Gateway":"10.0.0.9"}}"#);
    assert_eq!(l.config.gateway, Some("10.0.0.9".parse().unwrap()));
    assert!(!l.config.ranges[0].allows(9));
}

fn flat(contents: &str) -> MapFiles {
    let path = PathBuf::from("/etc/cni/net.d/whereabouts.d/whereabouts.conf");
    MapFiles(HashMap::from([(path, contents.as_bytes().to_vec())]))
}

#[test]
fn the_flat_file_is_merged_deeply_and_case_insensitively() {
    let files = flat(
        r#"{"DNS":{"nameservers":["9.9.9.9"],"Domain":"flat.example"},"Endpoints":["10.0.0.1:7000"],
            "ipRanges":[{"range":"10.7.0.0/24"}],"Enable_Overlapping_Ranges":false,"rnage":"x"}"#,
    );
    let inline =
        br#"{"name":"n","ipam":{"type":"whereabouts","range":"10.1.0.0/24","dns":{"nameservers":["1.1.1.1"]}}}"#;
    let l = load(inline, &files).unwrap();
    assert_eq!(l.config.dns.nameservers, ["1.1.1.1"], "inline wins field by field");
    assert_eq!(l.config.dns.domain.as_deref(), Some("flat.example"), "the flat file fills the rest");
    assert_eq!(l.config.cluster.endpoints, ["10.0.0.1:7000"]);
    assert_eq!(ranges(&l), ["10.1.0.0/24", "10.7.0.0/24"], "inline range, then the flat file's ipRanges");
    assert!(l.config.overlapping, "never from the flat file");
    assert_eq!(warned(&l), ["/etc/cni/net.d/whereabouts.d/whereabouts.conf.rnage"]);
}

#[test]
fn del_keeps_the_names_and_cluster_keys_of_a_configuration_add_refuses() {
    let json = br#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/31",
                    "network_name":"tenant","endpoints":["a:1","bad"],"strict_del":true,"exclude":["junk"]}}"#;
    let netconf = read_netconf(json).unwrap();
    assert!(load_netconf(&netconf, &NoFiles).is_err(), "ADD refuses a /31");
    let l = load_for_release(&netconf, &NoFiles);
    let c = &l.config;
    assert_eq!((c.cni_network.as_str(), c.network_name.as_str(), c.cni_version.as_str()), ("n", "tenant", "1.0.0"));
    assert_eq!(c.cluster.endpoints, ["a:1"]);
    assert!(c.cluster.strict_del);
    assert!(c.ranges.is_empty());
    // Even a section of the wrong type leaves the name.
    let l = load_for_release(&read_netconf(br#"{"name":"n","ipam":7}"#).unwrap(), &NoFiles);
    assert_eq!(l.config.cni_network, "n");
}
