use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

/// Files by path, for flat-file tests.
struct MapFiles(HashMap<PathBuf, Vec<u8>>);

impl MapFiles {
    fn with(files: &[(&str, &str)]) -> MapFiles {
        MapFiles(files.iter().map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec())).collect())
    }
}

impl FileSource for MapFiles {
    fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.0.get(path).cloned())
    }
}

fn load_ok(json: &str) -> Loaded {
    load(json.as_bytes(), &NoFiles).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn load_err(json: &str) -> ConfigError {
    load(json.as_bytes(), &NoFiles).expect_err(json)
}

fn field_of(e: ConfigError) -> (String, String) {
    match e {
        ConfigError::Field(f) => (f.field, f.value),
        other => panic!("not a field error: {other}"),
    }
}

fn ranges(l: &Loaded) -> Vec<String> {
    l.config.ranges.iter().map(|r| format!("{} {}-{}", r.network(), r.ip_at(r.first()), r.ip_at(r.last()))).collect()
}

#[test]
fn whereabouts_readme_macvlan_example() {
    let l = load_ok(
        r#"{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"eth0","mode":"bridge",
            "ipam":{"type":"whereabouts","range":"192.168.2.225/28","exclude":["192.168.2.229/30","192.168.2.236/32"]}}"#,
    );
    assert_eq!(l.config.cni_version, "0.3.0");
    assert_eq!(l.config.cni_network, "whereaboutsexample");
    assert_eq!(l.config.network_name, "");
    assert!(l.config.overlapping, "enabled by default");
    assert_eq!(ranges(&l), ["192.168.2.224/28 192.168.2.225-192.168.2.238"]);
    assert_eq!(l.config.ranges[0].excludes(), &[(4, 7), (12, 12)]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn whereabouts_readme_ipv6_and_dual_stack_examples() {
    let l = load_ok(
        r#"{"cniVersion":"0.3.0","name":"n","type":"macvlan","ipam":{"type":"whereabouts","range":"2001::0/116","gateway":"2001::f:1"}}"#,
    );
    assert_eq!(ranges(&l), ["2001::/116 2001::1-2001::ffe"]);
    assert_eq!(l.config.gateway, Some("2001::f:1".parse().unwrap()));

    let l = load_ok(
        r#"{"cniVersion":"0.3.0","name":"n","type":"macvlan","ipam":{"type":"whereabouts",
            "ipRanges":[{"range":"192.168.10.1/24"},{"range":"176.168.10.1/16"}],"range":"abcd::1/64"}}"#,
    );
    assert_eq!(
        ranges(&l),
        [
            "abcd::/64 abcd::1-abcd::ffff:ffff:ffff:fffe",
            "192.168.10.0/24 192.168.10.1-192.168.10.254",
            "176.168.0.0/16 176.168.0.1-176.168.255.254",
        ],
        "range first, then ipRanges (whereabouts' order)"
    );
    assert_eq!(l.warnings.len(), 1, "host bits of 176.168.10.1/16 are ignored: {:?}", l.warnings);
    assert_eq!(l.warnings[0].field, "ipam.ipRanges[1].range");
}

#[test]
fn range_end_syntax_and_leading_zeros_as_in_whereabouts_tests() {
    let l = load_ok(r#"{"name":"n","ipam":{"type":"whereabouts","range":"00192.00168.1.5-000000192.168.1.25/24"}}"#);
    assert_eq!(ranges(&l), ["192.168.1.0/24 192.168.1.5-192.168.1.25"]);
    let e = load_err(r#"{"name":"n","ipam":{"type":"whereabouts","range":"192.168.1.5-192.168.2.25/28"}}"#);
    assert_eq!(
        e.to_string(),
        "ipam.range: range start is outside the network 192.168.2.16/28 (got \"192.168.1.5-192.168.2.25/28\")"
    );
}

#[test]
fn keys_whereabouts_accepts_are_ignored_silently_unknown_ones_warned() {
    let l = load_ok(
        r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","kubernetes":{"kubeconfig":"/x"},
            "log_file":"/tmp/w.log","log_level":"debug","leader_lease_duration":1500,"leader_renew_deadline":1000,
            "leader_retry_period":500,"node_slice_size":"/28","datastore":"kubernetes","etcd_host":"h",
            "etcd_username":"u","sleep_for_race":0,"reconciler_cron_expression":"30 4 * * *","rnage":"typo"}}"#,
    );
    let fields: Vec<&str> = l.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["ipam.rnage", "ipam.node_slice_size"], "node slices are not needed: said once");
    assert_eq!(l.config.log_file.as_deref(), Some("/tmp/w.log"));
}

#[test]
fn static_plugin_keys_are_parsed() {
    let l = load_ok(
        r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","gateway":"10.0.0.254",
            "routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.5/16","gw":"10.0.0.1"}],
            "dns":{"nameservers":["10.0.0.53"],"domain":"example.com","search":["svc"],"options":["ndots:2"]},
            "addresses":[{"address":"10.10.0.1/24","gateway":"10.10.0.254"}]}}"#,
    );
    let c = &l.config;
    assert_eq!(c.routes[1].dst.to_string(), "192.168.0.5/16", "dst keeps its host bits, as CNI's parser does");
    assert_eq!(c.routes[1].gw, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(c.dns.nameservers, ["10.0.0.53"]);
    assert_eq!(c.addresses[0].address.to_string(), "10.10.0.1/24");
}

#[test]
fn plugin_lists_use_the_first_plugin_and_the_top_level_version() {
    let l = load_ok(
        r#"{"cniVersion":"1.0.0","name":"list","plugins":[{"type":"macvlan","ipam":{"type":"whereabouts","range":"10.1.0.0/24"}},{"type":"tuning"}]}"#,
    );
    assert_eq!(l.config.cni_version, "1.0.0");
    assert_eq!(l.config.cni_network, "list");
    let e = load_err(r#"{"cniVersion":"1.0.0","name":"list","plugins":[{"type":"macvlan"}]}"#);
    assert_eq!(field_of(e).0, "plugins[0].ipam");
}

#[test]
fn requested_addresses_take_the_range_prefix() {
    let l = load_ok(
        r#"{"name":"n","runtimeConfig":{"ips":["10.0.0.9"]},"args":{"cni":{"ips":["192.168.1.1/24","10.0.0.9"]}},
            "ipam":{"type":"whereabouts","range":"10.0.0.0/16"}}"#,
    );
    let got: Vec<String> = l.config.requested_ips.iter().map(ToString::to_string).collect();
    assert_eq!(got, ["10.0.0.9/16", "192.168.1.1/24"]);
}

#[test]
fn flat_file_fills_what_inline_leaves_unset() {
    let files = MapFiles::with(&[
        (
            "/etc/cni/net.d/whereabouts.d/whereabouts.conf",
            r#"{"endpoints":["10.0.0.1:7000"],"range":"10.9.0.0/24","enable_overlapping_ranges":false,"log_level":"debug"}"#,
        ),
        ("/host/etc/cni/net.d/whereabouts.d/whereabouts.conf", r#"{"endpoints":["never:1"]}"#),
    ]);
    let l =
        load(br#"{"name":"n","ipam":{"type":"whereabouts","range":"10.1.0.0/24","log_level":""}}"#, &files).unwrap();
    assert_eq!(l.flat_file.as_deref(), Some(Path::new("/etc/cni/net.d/whereabouts.d/whereabouts.conf")));
    assert_eq!(l.config.cluster.endpoints, ["10.0.0.1:7000"]);
    assert_eq!(ranges(&l), ["10.1.0.0/24 10.1.0.1-10.1.0.254"], "inline wins");
    assert!(l.config.overlapping, "whereabouts keeps the inline overlap flag");
    assert_eq!(l.config.log_level.as_deref(), Some("debug"), "empty inline value is unset");

    let files = MapFiles::with(&[
        ("/custom/w.conf", r#"{"endpoints":["a:1"]}"#),
        ("/etc/cni/net.d/whereabouts.d/whereabouts.conf", "{}"),
    ]);
    let l = load(
        br#"{"name":"n","ipam":{"type":"whereabouts","range":"10.1.0.0/24","configuration_path":"/custom/w.conf"}}"#,
        &files,
    )
    .unwrap();
    assert_eq!(l.config.cluster.endpoints, ["a:1"], "configuration_path is looked at first");

    let l = load(br#"{"name":"n","ipam":{"type":"whereabouts","range":"10.1.0.0/24"}}"#, &NoFiles).unwrap();
    assert_eq!(l.flat_file, None, "a missing flat file is not an error");

    let files = MapFiles::with(&[("/etc/cni/net.d/whereabouts.d/whereabouts.conf", "{not json")]);
    let e = load(br#"{"name":"n","ipam":{"type":"whereabouts","range":"10.1.0.0/24"}}"#, &files).unwrap_err();
    assert!(matches!(e, ConfigError::FlatFile { .. }), "{e}");
}

#[test]
fn what_cannot_work_names_the_field_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"name":"n"}"#, "ipam", ""),
        (r#"{"name":"n","ipam":{"type":"host-local","range":"10.0.0.0/24"}}"#, "ipam.type", "host-local"),
        (r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/33"}}"#, "ipam.range", "10.0.0.0/33"),
        (r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/31"}}"#, "ipam.range", "10.0.0.0/31"),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","exclude":["10.0.0.0/40"]}}"#,
            "ipam.exclude[0]",
            "10.0.0.0/40",
        ),
        (r#"{"name":"n","ipam":{"type":"whereabouts","range":42}}"#, "ipam.range", "42"),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","ipRanges":{"range":"10.0.0.0/24"}}}"#,
            "ipam.ipRanges",
            r#"{"range":"10.0.0.0/24"}"#,
        ),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","enable_overlapping_ranges":"yes"}}"#,
            "ipam.enable_overlapping_ranges",
            "\"yes\"",
        ),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","gateway":"nope"}}"#,
            "ipam.gateway",
            "nope",
        ),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","routes":[{"dst":"x"}]}}"#,
            "ipam.routes[0].dst",
            "x",
        ),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","endpoints":["10.0.0.1"]}}"#,
            "ipam.endpoints[0]",
            "10.0.0.1",
        ),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","timeout_seconds":0}}"#,
            "ipam.timeout_seconds",
            "0",
        ),
        (
            r#"{"name":"n","runtimeConfig":{"ips":["bad"]},"ipam":{"type":"whereabouts","range":"10.0.0.0/24"}}"#,
            "runtimeConfig.ips[0]",
            "bad",
        ),
        (
            r#"{"name":"n","ipam":{"type":"whereabouts","range":"10.0.0.0/24","addresses":[{"address":"10.0.0.1"}]}}"#,
            "ipam.addresses[0].address",
            "10.0.0.1",
        ),
    ];
    for (json, field, value) in cases {
        let (f, v) = field_of(load_err(json));
        assert_eq!((f.as_str(), v.as_str()), (*field, *value), "{json}");
    }
    assert!(matches!(load_err("{not json"), ConfigError::Json(_)));
    assert!(matches!(load_err("[]"), ConfigError::Json(_)), "not an object: no network configuration");
    let huge = format!(r#"{{"name":"{}","ipam":{{}}}}"#, "x".repeat(MAX_CONFIG_BYTES));
    assert!(matches!(load_err(&huge), ConfigError::Field(FieldError { problem: FieldProblem::TooLarge { .. }, .. })));
}
