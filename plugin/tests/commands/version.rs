//! VERSION and the "no command" banner.

use plugin::testing::invoke;
use plugin::TcpFactory;
use serde_json::json;

use crate::ok;

/// Every version libcni knows, 0.1.0 and 0.2.0 included (whereabouts supports them too).
const ALL: [&str; 7] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

#[test]
fn lists_the_supported_versions_and_echoes_the_input() {
    for v in ALL {
        let got = ok(&invoke(&[("CNI_COMMAND", "VERSION")], &json!({"cniVersion": v}).to_string(), &TcpFactory));
        assert_eq!(got, json!({"cniVersion": v, "supportedVersions": ALL}));
    }
    let golden: serde_json::Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/version.json"))).unwrap();
    assert_eq!(ok(&invoke(&[("CNI_COMMAND", "VERSION")], "", &TcpFactory)), golden);
    assert_eq!(ok(&invoke(&[("CNI_COMMAND", "VERSION")], "garbage", &TcpFactory)), golden);
}

#[test]
fn no_command_prints_the_banner_on_stderr() {
    let out = invoke(&[], "", &TcpFactory);
    assert_eq!(out.code, 0);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("whereabouts") && out.stderr.contains("1.1.0"), "{}", out.stderr);
}
