//! DEL: releases by container id + ifname in every version, is idempotent, works without a
//! netns and with a configuration ADD would refuse; when the cluster is unreachable it succeeds
//! and a later invocation delivers the release (or, with `strict_del`, asks to retry).

use plugin::testing::{invoke, refused_endpoint, Reply};
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
fn strict_del_asks_to_retry_when_the_cluster_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let eps = vec![refused_endpoint()];
    let ipam = json!({"timeout_seconds": 0.5, "strict_del": true, "state_dir": dir.path()});
    err(&run("DEL", &conf("0.3.1", &eps, ipam)), 11, "0.3.1");
    assert!(!dir.path().join("pending-releases").exists(), "nothing recorded");
}

/// Regression (issue 17): DEL used to fail with 11 when the cluster was down, so containerd kept
/// the sandbox and podman leaked; now it succeeds and the next call that reaches the cluster
/// delivers the release, marked as deferred.
#[test]
fn an_unreachable_cluster_defers_the_release_to_a_later_call() {
    let dir = tempfile::tempdir().unwrap();
    let (s, eps) = server();
    // The node never answers this DEL within its budget.
    s.state().script("Release", [Reply::Hang]);
    let ipam = json!({"timeout_seconds": 0.5, "state_dir": dir.path(), "network_name": "n1"});
    let out = run("DEL", &conf("1.0.0", &eps, ipam.clone()));
    assert_eq!(ok(&out), serde_json::Value::Null);
    assert!(out.stderr.contains("could not reach the cluster"), "{}", out.stderr);
    assert_eq!(pending_files(dir.path()), 1, "the release waits on the node");

    // Another attachment's ADD reaches the cluster: the waiting DEL goes with it.
    let mut vars = crate::vars("ADD");
    vars.retain(|(k, _)| *k != "CNI_CONTAINERID");
    vars.push(("CNI_CONTAINERID", "another"));
    ok(&invoke(&vars, &conf("1.0.0", &eps, ipam), &TcpFactory));
    let st = s.state();
    let delivered: Vec<_> = st.releases.iter().filter(|r| r.deferred_ms > 0).collect();
    assert_eq!(delivered.len(), 1, "{:?}", st.releases);
    assert_eq!((delivered[0].network_name.as_str(), delivered[0].container_id.as_str()), ("n1", CONTAINER));
    assert_eq!(delivered[0].request_id, st.releases[0].request_id, "the DEL's own request id");
    drop(st);
    assert_eq!(pending_files(dir.path()), 0, "delivered entries are removed");
}

fn pending_files(state_dir: &std::path::Path) -> usize {
    std::fs::read_dir(state_dir.join("pending-releases"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

/// An ADD of the attachment whose DEL waits takes the DEL back: the address is in use again.
#[test]
fn an_add_of_the_same_attachment_takes_its_waiting_del_back() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = json!({"timeout_seconds": 0.5, "state_dir": dir.path()});
    ok(&run("DEL", &conf("1.0.0", &[refused_endpoint()], ipam.clone())));
    let (s, eps) = server();
    ok(&run("ADD", &conf("1.0.0", &eps, ipam)));
    assert!(s.state().releases.is_empty(), "the DEL was not delivered after the ADD");
}

/// Regression (issue 17): a DEL whose configuration ADD refuses (here a range with no usable
/// address and an exclude of the other family) still releases by owner.
#[test]
fn a_configuration_add_refuses_still_releases_by_owner() {
    let (s, eps) = server();
    let bad = json!({"range": "10.0.0.0/31", "exclude": ["fd00::/64", "junk"], "network_name": "n1"});
    err(&run("ADD", &conf("1.0.0", &eps, bad.clone())), 7, "1.0.0");
    let out = run("DEL", &conf("1.0.0", &eps, bad));
    ok(&out);
    assert!(out.stderr.contains("releases by owner anyway"), "{}", out.stderr);
    let st = s.state();
    assert_eq!(st.releases.len(), 1);
    assert_eq!((st.releases[0].network_name.as_str(), st.releases[0].container_id.as_str()), ("n1", CONTAINER));
}
