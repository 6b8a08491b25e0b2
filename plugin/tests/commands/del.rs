//! DEL: releases by container id + ifname in every version, is idempotent, works without a
//! netns, and asks to retry when the cluster is unreachable.

use plugin::testing::{invoke, refused_endpoint};
use plugin::TcpFactory;
use serde_json::json;

use crate::{conf, err, ok, run, server, CONTAINER, VERSIONS};

#[test]
fn releases_the_owner_in_every_version() {
    for v in VERSIONS {
        let (s, eps) = server();
        ok(&run("ADD", &conf(v, &eps, json!({"network_name": "n1"}))));
        let out = run("DEL", &conf(v, &eps, json!({"network_name": "n1"})));
        assert_eq!(ok(&out), serde_json::Value::Null, "DEL prints nothing");
        let st = s.state();
        let r = &st.releases[0];
        assert_eq!((r.network_name.as_str(), r.container_id.as_str(), r.ifname.as_str()), ("n1", CONTAINER, "eth0"));
        assert_eq!(r.request_id.len(), 32);
        assert!(st.held.is_empty());
    }
}

#[test]
fn a_second_del_and_an_unknown_owner_succeed() {
    let (s, eps) = server();
    ok(&run("DEL", &conf("1.0.0", &eps, json!({}))));
    ok(&run("DEL", &conf("1.0.0", &eps, json!({}))));
    assert_eq!(s.state().releases.len(), 2);
}

#[test]
fn works_when_the_netns_is_gone() {
    let (_s, eps) = server();
    let vars = [("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", CONTAINER), ("CNI_IFNAME", "eth0")];
    ok(&invoke(&vars, &conf("0.4.0", &eps, json!({})), &TcpFactory));
}

#[test]
fn an_unreachable_cluster_means_try_again_later() {
    let eps = vec![refused_endpoint()];
    err(&run("DEL", &conf("0.3.1", &eps, json!({"timeout_seconds": 0.5}))), 11, "0.3.1");
}
