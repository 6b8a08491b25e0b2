//! ADD: golden results per version, what is sent to the cluster, static addresses, and the
//! cluster's refusals mapped to CNI codes.

use plugin::testing::{invoke, Reply};
use plugin::TcpFactory;
use serde_json::{json, Value};
use tonic::Code;

use crate::{conf, err, ok, run, server, vars, CONTAINER, VERSIONS};

/// The configuration of the golden files in `tests/data/add-*.json`.
pub fn golden_conf(version: &str, endpoints: &[String]) -> String {
    conf(
        version,
        endpoints,
        json!({
            "range_start": "10.10.1.1",
            "ipRanges": [{"range": "fd00:10::/64"}],
            "gateway": "10.10.0.1",
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.0.254"}],
            "dns": {"nameservers": ["10.10.0.53"], "domain": "example.com", "search": ["example.com"]},
            "addresses": [{"address": "192.168.50.5/24", "gateway": "192.168.50.1"}]
        }),
    )
}

fn golden(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

#[test]
fn results_match_the_golden_file_of_each_version() {
    let (_s, eps) = server();
    for v in VERSIONS {
        let got = ok(&run("ADD", &golden_conf(v, &eps)));
        assert_eq!(got, golden(&format!("add-{v}.json")), "version {v}: {got:#}");
        let has_version = got["ips"].as_array().unwrap().iter().all(|ip| ip.get("version").is_some());
        assert_eq!(has_version, v.starts_with("0."), "{v}");
        assert!(got.get("interfaces").is_none());
    }
}

#[test]
fn the_request_carries_ranges_attachment_and_a_request_id() {
    let (s, eps) = server();
    ok(&run("ADD", &golden_conf("1.0.0", &eps)));
    let st = s.state();
    let req = &st.allocates[0];
    assert_eq!(req.request_id.len(), 32);
    assert!(req.request_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(req.network_name, "");
    assert_eq!(req.enable_overlapping_ranges, Some(true));
    assert_eq!(req.ranges.len(), 2);
    assert_eq!(req.ranges[0].range, "10.10.0.0/16");
    assert_eq!(req.ranges[0].range_start, "10.10.1.1");
    assert_eq!(req.ranges[0].range_end, "10.10.255.254");
    assert!(req.static_ips.is_empty(), "echoed addresses are not reserved");
    let a = req.attachment.as_ref().unwrap();
    assert_eq!(
        (a.container_id.as_str(), a.ifname.as_str(), a.pod_namespace.as_str(), a.pod_name.as_str()),
        (CONTAINER, "eth0", "ns-a", "pod-a")
    );
    assert_eq!((a.pod_uid.as_str(), a.node.as_str(), a.cni_network.as_str()), ("uid-a", "node-a", "net-a"));
}

#[test]
fn network_name_and_overlap_flag_are_sent() {
    let (s, eps) = server();
    let c = conf("0.3.1", &eps, json!({"network_name": "tenant-b", "enable_overlapping_ranges": false}));
    ok(&run("ADD", &c));
    let st = s.state();
    assert_eq!(st.allocates[0].network_name, "tenant-b");
    assert_eq!(st.allocates[0].enable_overlapping_ranges, Some(false));
}

#[test]
fn static_requests_from_every_source_are_reserved() {
    let (s, eps) = server();
    let mut c: Value = serde_json::from_str(&conf("1.1.0", &eps, json!({}))).unwrap();
    c["runtimeConfig"] = json!({"ips": ["10.10.5.5/16"]});
    c["args"] = json!({"cni": {"ips": ["192.168.7.7"]}});
    let mut env = vars("ADD");
    env.retain(|(k, _)| *k != "CNI_ARGS");
    env.push(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p;IP=172.16.0.9/12;GATEWAY=172.16.0.1"));
    let got = ok(&invoke(&env, &c.to_string(), &TcpFactory));
    let st = s.state();
    assert_eq!(st.allocates[0].static_ips, vec!["10.10.5.5/16", "192.168.7.7/32", "172.16.0.9/12"]);
    let ips: Vec<&str> = got["ips"].as_array().unwrap().iter().map(|i| i["address"].as_str().unwrap()).collect();
    assert_eq!(ips, vec!["10.10.5.5/16", "192.168.7.7/32", "172.16.0.9/12"]);
    assert_eq!(got["ips"][2]["gateway"], "172.16.0.1");
}

#[test]
fn an_addresses_only_config_needs_no_cluster() {
    let c = json!({"cniVersion": "0.4.0", "name": "static-net", "ipam": {
        "type": "whereabouts", "addresses": [{"address": "10.1.1.5/24", "gateway": "10.1.1.1"}]}});
    let got = ok(&run("ADD", &c.to_string()));
    assert_eq!(got["ips"], json!([{"version": "4", "address": "10.1.1.5/24", "gateway": "10.1.1.1"}]));
}

#[test]
fn the_gateway_only_goes_to_addresses_of_its_family() {
    let (_s, eps) = server();
    let got =
        ok(&run("ADD", &conf("1.0.0", &eps, json!({"ipRanges": [{"range": "fd00::/64"}], "gateway": "10.10.0.1"}))));
    assert_eq!(got["ips"][0]["gateway"], "10.10.0.1");
    assert!(got["ips"][1].get("gateway").is_none());
}

#[test]
fn the_node_name_falls_back_to_the_host_name() {
    let (s, eps) = server();
    let mut env = vars("ADD");
    env.retain(|(k, _)| *k != "NODE_NAME");
    ok(&invoke(&env, &conf("1.0.0", &eps, json!({})), &TcpFactory));
    assert_eq!(s.state().allocates[0].attachment.as_ref().unwrap().node, "test-host");
}

#[test]
fn refusals_map_to_their_codes_in_every_version() {
    let cases = [
        (Code::ResourceExhausted, "exhausted", 100),
        (Code::AlreadyExists, "address_taken", 101),
        (Code::FailedPrecondition, "owner_conflict", 102),
        (Code::FailedPrecondition, "owner_mismatch", 102),
        (Code::InvalidArgument, "invalid", 7),
        (Code::Internal, "internal", 999),
    ];
    for v in VERSIONS {
        for (code, reason, cni) in cases {
            let (s, eps) = server();
            s.state().script("Allocate", [Reply::fail(code, reason)]);
            let e = err(&run("ADD", &conf(v, &eps, json!({}))), cni, v);
            assert_eq!(s.state().allocates.len(), 1, "{reason} must not be retried");
            if cni == 100 {
                assert_eq!(e, golden(&format!("error-exhausted-{v}.json")));
            }
        }
    }
}

#[test]
fn no_endpoints_is_a_config_error_naming_the_field() {
    let e = err(&run("ADD", &conf("0.4.0", &[], json!({"endpoints": null}))), 7, "0.4.0");
    assert!(e["msg"].as_str().unwrap().contains("ipam.endpoints"), "{e}");
}

#[test]
fn logs_go_to_log_file_and_never_to_stdout() {
    let (_s, eps) = server();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("wb.log");
    let c = conf("1.0.0", &eps, json!({"log_file": log.to_str().unwrap(), "log_level": "debug", "bogus_key": 1}));
    let out = run("ADD", &c);
    ok(&out);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("allocated") && text.contains("ipam.bogus_key"), "{text}");
    let without_file = run("ADD", &conf("1.0.0", &eps, json!({"bogus_key": 1})));
    assert!(without_file.stderr.contains("ipam.bogus_key"), "{}", without_file.stderr);
}
