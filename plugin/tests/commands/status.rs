//! STATUS: 1.1.0 only; succeeds when the cluster has a leader and no configured range is full;
//! 50 when unreachable (within the capped budget), leaderless, or a range is exhausted.

use std::time::{Duration, Instant};

use plugin::testing::{refused_endpoint, Reply};
use proto::ipam::PoolUsage;
use serde_json::json;
use tonic::Code;

use crate::{conf, err, ok, run, server, VERSIONS};

fn small(eps: &[String]) -> String {
    conf("1.1.0", eps, json!({"range": "10.20.0.0/29", "network_name": "n1"}))
}

#[test]
fn versions_before_1_1_0_do_not_allow_status() {
    let (s, eps) = server();
    for v in VERSIONS.into_iter().filter(|v| *v != "1.1.0") {
        err(&run("STATUS", &conf(v, &eps, json!({}))), 1, v);
    }
    assert_eq!(s.state().statuses, 0);
}

#[test]
fn succeeds_with_a_leader_and_free_addresses() {
    let (s, eps) = server();
    s.state().pools =
        vec![PoolUsage { network_name: "n1".into(), cidr: "10.20.0.0/29".into(), usable: "6".into(), used: 5 }];
    ok(&run("STATUS", &small(&eps)));
    assert_eq!(s.state().statuses, 1);
    assert!(s.state().lists.is_empty(), "below capacity: no listing");
}

#[test]
fn an_unreachable_cluster_is_not_available_within_the_budget() {
    let eps = vec![refused_endpoint(), refused_endpoint()];
    let start = Instant::now();
    let e = err(&run("STATUS", &conf("1.1.0", &eps, json!({"timeout_seconds": 1}))), 50, "1.1.0");
    assert!(start.elapsed() < Duration::from_secs(1) + Duration::from_secs(3), "{:?}", start.elapsed());
    assert!(e["details"].as_str().unwrap().contains("Unreachable"), "{e}");
}

#[test]
fn unavailable_everywhere_is_not_available() {
    let (s, eps) = server();
    s.state().script("Status", std::iter::repeat_n(Reply::fail(Code::Unavailable, "no_leader"), 1000));
    err(&run("STATUS", &conf("1.1.0", &eps, json!({"timeout_seconds": 0.5}))), 50, "1.1.0");
}

#[test]
fn no_leader_is_not_available() {
    let (s, eps) = server();
    s.state().no_leader = true;
    let e = err(&run("STATUS", &small(&eps)), 50, "1.1.0");
    assert!(e["msg"].as_str().unwrap().contains("no leader"), "{e}");
}

#[test]
fn a_full_range_is_not_available() {
    let (s, eps) = server();
    s.state().pools =
        vec![PoolUsage { network_name: "n1".into(), cidr: "10.20.0.0/29".into(), usable: "6".into(), used: 6 }];
    {
        let mut st = s.state();
        for i in 1..=6 {
            let lease = proto::ipam::Lease { ip: format!("10.20.0.{i}"), pool: "10.20.0.0/29".into() };
            st.held.insert(("n1".into(), format!("c{i}"), "eth0".into()), vec![lease]);
        }
    }
    let e = err(&run("STATUS", &small(&eps)), 50, "1.1.0");
    assert!(e["msg"].as_str().unwrap().contains("6 of 6"), "{e}");
    assert_eq!(s.state().lists[0].network_name.as_deref(), Some("n1"));
}

#[test]
fn a_pool_full_elsewhere_but_free_in_this_range_is_available() {
    // The pool counter says 6 used, but they are outside this range's start/end.
    let (s, eps) = server();
    s.state().pools =
        vec![PoolUsage { network_name: "n1".into(), cidr: "10.20.0.0/29".into(), usable: "6".into(), used: 6 }];
    {
        let mut st = s.state();
        for i in 1..=6 {
            let lease = proto::ipam::Lease { ip: format!("10.20.0.{i}"), pool: "10.20.0.0/29".into() };
            st.held.insert(("n1".into(), format!("c{i}"), "eth0".into()), vec![lease]);
        }
        st.held.remove(&("n1".into(), "c6".into(), "eth0".into()));
    }
    ok(&run("STATUS", &small(&eps)));
    assert_eq!(s.state().lists.len(), 1);
}
