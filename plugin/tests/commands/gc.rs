//! GC: 1.1.0 only (code 1 before), sends the valid attachments with this node and network, and
//! refuses a configuration without `cni.dev/valid-attachments`.

use serde_json::{json, Value};

use crate::{conf, err, ok, run, server, VERSIONS};

fn gc_conf(version: &str, eps: &[String], keep: Value) -> String {
    let mut v: Value = serde_json::from_str(&conf(version, eps, json!({"network_name": "n1"}))).unwrap();
    if !keep.is_null() {
        v["cni.dev/valid-attachments"] = keep;
    }
    v.to_string()
}

#[test]
fn versions_before_1_1_0_do_not_allow_gc() {
    let (s, eps) = server();
    for v in VERSIONS.into_iter().filter(|v| *v != "1.1.0") {
        let e = err(&run("GC", &gc_conf(v, &eps, json!([]))), 1, v);
        assert!(e["msg"].as_str().unwrap().contains("GC"), "{e}");
    }
    assert!(s.state().gcs.is_empty());
}

#[test]
fn sends_the_valid_attachments_of_this_node() {
    let (s, eps) = server();
    let keep = json!([{"containerID": "c-keep", "ifname": "eth0"}, {"containerID": "c-keep", "ifname": "net1"}]);
    let vars = [("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin"), ("NODE_NAME", "node-b")];
    ok(&plugin::testing::invoke(&vars, &gc_conf("1.1.0", &eps, keep), &plugin::TcpFactory));
    let st = s.state();
    let gc = &st.gcs[0];
    assert_eq!((gc.network_name.as_str(), gc.cni_network.as_str(), gc.node.as_str()), ("n1", "net-a", "node-b"));
    assert_eq!(gc.keep.len(), 2);
    assert_eq!((gc.keep[1].container_id.as_str(), gc.keep[1].ifname.as_str()), ("c-keep", "net1"));
    assert_eq!(gc.request_id.len(), 32);
}

#[test]
fn releases_what_is_not_listed() {
    let (s, eps) = server();
    ok(&run("ADD", &conf("1.1.0", &eps, json!({"network_name": "n1"}))));
    ok(&run("GC", &gc_conf("1.1.0", &eps, json!([{"containerID": "other", "ifname": "eth0"}]))));
    assert!(s.state().held.is_empty());
}

#[test]
fn the_valid_attachments_are_required_and_checked() {
    let (_s, eps) = server();
    let e = err(&run("GC", &gc_conf("1.1.0", &eps, Value::Null)), 7, "1.1.0");
    assert!(e["msg"].as_str().unwrap().contains("cni.dev/valid-attachments"), "{e}");
    let e = err(&run("GC", &gc_conf("1.1.0", &eps, json!([{"containerID": "c"}]))), 7, "1.1.0");
    assert!(e["msg"].as_str().unwrap().contains("[0].ifname"), "{e}");
}
