//! CHECK: refused before 0.4.0 (code 1), passes when the cluster holds exactly `prevResult`'s
//! addresses, fails with 103 once an address was released behind the plugin's back.

use serde_json::{json, Value};

use crate::{conf, err, ok, run, server, VERSIONS};

fn with_prev(c: &str, prev: &Value) -> String {
    let mut v: Value = serde_json::from_str(c).unwrap();
    v["prevResult"] = prev.clone();
    v.to_string()
}

#[test]
fn old_versions_do_not_allow_check() {
    let (s, eps) = server();
    for v in ["0.3.0", "0.3.1"] {
        let e = err(&run("CHECK", &with_prev(&conf(v, &eps, json!({})), &json!({}))), 1, v);
        assert!(e["msg"].as_str().unwrap().contains("CHECK"), "{e}");
    }
    assert!(s.state().checks.is_empty());
}

#[test]
fn passes_after_add_in_every_version_that_has_check() {
    for v in VERSIONS.into_iter().filter(|v| *v >= "0.4.0") {
        let (s, eps) = server();
        let c = conf(v, &eps, json!({"addresses": [{"address": "192.168.50.5/24"}]}));
        let prev = ok(&run("ADD", &c));
        ok(&run("CHECK", &with_prev(&c, &prev)));
        assert_eq!(s.state().checks.len(), 1, "{v}");
    }
}

#[test]
fn fails_when_the_address_was_released_or_differs() {
    let (s, eps) = server();
    let c = conf("1.0.0", &eps, json!({}));
    let prev = ok(&run("ADD", &c));
    s.state().held.clear();
    let e = err(&run("CHECK", &with_prev(&c, &prev)), 103, "1.0.0");
    assert!(e["msg"].as_str().unwrap().contains("10.10.0.1"), "{e}");
    let other = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.10.0.99/16"}]});
    ok(&run("ADD", &c));
    err(&run("CHECK", &with_prev(&c, &other)), 103, "1.0.0");
}

#[test]
fn missing_or_bad_prev_result_is_a_config_error() {
    let (_s, eps) = server();
    let e = err(&run("CHECK", &conf("0.4.0", &eps, json!({}))), 7, "0.4.0");
    assert!(e["msg"].as_str().unwrap().contains("prevResult"), "{e}");
    let bad = json!({"ips": [{"address": "not-an-ip"}]});
    let e = err(&run("CHECK", &with_prev(&conf("0.4.0", &eps, json!({})), &bad)), 7, "0.4.0");
    assert!(e["msg"].as_str().unwrap().contains("prevResult.ips[0].address"), "{e}");
}
