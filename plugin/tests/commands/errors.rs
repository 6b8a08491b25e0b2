//! Errors found before the cluster is asked: environment (4), stdin (6), version (1),
//! configuration (7, naming the field).

use plugin::testing::invoke;
use plugin::TcpFactory;
use serde_json::json;

use crate::{conf, err, ok, run, server, vars, VERSIONS};

#[test]
fn missing_or_invalid_environment_is_code_4_naming_the_variable() {
    let (_s, eps) = server();
    let c = conf("1.0.0", &eps, json!({}));
    for (drop, command) in
        [("CNI_CONTAINERID", "ADD"), ("CNI_NETNS", "ADD"), ("CNI_IFNAME", "DEL"), ("CNI_NETNS", "CHECK")]
    {
        let mut env = vars(command);
        env.retain(|(k, _)| *k != drop);
        let e = err(&invoke(&env, &c, &TcpFactory), 4, "1.1.0");
        assert!(e["msg"].as_str().unwrap().contains(drop), "{e}");
    }
    for (var, value) in
        [("CNI_COMMAND", "ATTACH"), ("CNI_CONTAINERID", "../x"), ("CNI_IFNAME", "e:0"), ("CNI_ARGS", "K8S")]
    {
        let mut env = vars("ADD");
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
        let e = err(&invoke(&env, &c, &TcpFactory), 4, "1.1.0");
        assert!(e["msg"].as_str().unwrap().contains(var) || var == "CNI_COMMAND", "{e}");
    }
}

#[test]
fn stdin_that_is_not_json_is_code_6() {
    err(&run("ADD", "{not json"), 6, "1.1.0");
}

#[test]
fn unsupported_versions_are_code_1() {
    for v in ["0.5.0", "2.0.0", "1.0"] {
        let e = err(&run("ADD", &conf(v, &[], json!({}))), 1, "1.1.0");
        assert!(e["details"].as_str().unwrap().contains("1.1.0"), "{e}");
    }
}

#[test]
fn cni_versions_list_is_honoured() {
    let (_s, eps) = server();
    let mut c: serde_json::Value = serde_json::from_str(&conf("0.3.1", &eps, json!({}))).unwrap();
    c["cniVersions"] = json!(["0.4.0", "1.0.0", "9.0.0"]);
    assert_eq!(ok(&run("ADD", &c.to_string()))["cniVersion"], "1.0.0");
}

#[test]
fn bad_configurations_are_code_7_naming_the_field() {
    let (_s, eps) = server();
    let cases = [
        (json!({"range": "10.0.0.0/33"}), "ipam.range"),
        (json!({"type": "host-local"}), "ipam.type"),
        (json!({"ipRanges": [{"range": "10.0.0.0/24"}, {"range": "nope"}]}), "ipam.ipRanges[1].range"),
        (json!({"exclude": ["10.10.0.0/40"]}), "ipam.exclude[0]"),
        (json!({"gateway": "10.0.0.x"}), "ipam.gateway"),
        (json!({"endpoints": ["no-port"]}), "ipam.endpoints[0]"),
        (json!({"timeout_seconds": 0}), "ipam.timeout_seconds"),
        (json!({"routes": [{"gw": "10.0.0.1"}]}), "ipam.routes[0].dst"),
        (json!({"enable_overlapping_ranges": "yes"}), "ipam.enable_overlapping_ranges"),
    ];
    for v in VERSIONS {
        for (ipam, field) in &cases {
            let e = err(&run("ADD", &conf(v, &eps, ipam.clone())), 7, v);
            assert!(e["msg"].as_str().unwrap().contains(field), "{field}: {e}");
        }
    }
    let no_name = json!({"cniVersion": "1.0.0", "ipam": {"type": "whereabouts", "range": "10.0.0.0/24"}});
    let e = err(&run("ADD", &no_name.to_string()), 7, "1.0.0");
    assert!(e["msg"].as_str().unwrap().starts_with("name"), "{e}");
    let no_ipam = json!({"cniVersion": "1.0.0", "name": "n"});
    let e = err(&run("ADD", &no_ipam.to_string()), 7, "1.0.0");
    assert!(e["msg"].as_str().unwrap().contains("ipam"), "{e}");
}

#[test]
fn a_requested_ip_that_does_not_parse_is_code_7() {
    let (_s, eps) = server();
    let mut env = vars("ADD");
    env.push(("CNI_ARGS", "IP=10.0.0.300"));
    env.retain(|(k, v)| *k != "CNI_ARGS" || v.starts_with("IP="));
    let e = err(&invoke(&env, &conf("1.0.0", &eps, json!({})), &TcpFactory), 7, "1.0.0");
    assert!(e["msg"].as_str().unwrap().contains("CNI_ARGS.IP[0]"), "{e}");
}
