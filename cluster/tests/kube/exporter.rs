//! The IPPool exporter against the fake API: batching, the write budget, recovery after the API
//! was unreachable, read-only mirroring, and reservations.

use std::time::Duration;

use cluster::kube::exporter::{desired, ExportSettings, Exporter};
use cluster::kube::KubeMetrics;
use http::Method;
use serde_json::json;

use super::fake_api::FakeApi;
use super::support::{OneNode, PodSpec};

const POOLS: &str = "apis/whereabouts.cni.cncf.io/v1alpha1/ippools";
const RESERVATIONS: &str = "apis/whereabouts.cni.cncf.io/v1alpha1/overlappingrangeipreservations";

fn settings(max_writes: usize, reservations: bool) -> ExportSettings {
    ExportSettings {
        namespace: "kube-system".into(),
        interval: Duration::from_millis(100),
        max_writes,
        resync: Duration::from_secs(3600),
        reservations,
    }
}

fn applies(api: &FakeApi) -> usize {
    api.count(Method::PATCH, "/ippools/")
}

#[tokio::test]
async fn a_burst_of_allocations_is_one_write_per_pool() {
    let n = OneNode::start().await;
    let api = FakeApi::new();
    n.add_many("", "10.1.0.0/22", "burst", 1000).await;
    let pod = PodSpec { ns: "default", name: "web-0", uid: "u-1", node: "n1" };
    let ip = n.add("tenant-b", "10.2.0.0/24", "c-web", Some(pod)).await;
    assert_eq!(ip, "10.2.0.1");
    let metrics = KubeMetrics::default();
    let mut exporter = Exporter::new(api.client(), settings(50, false));

    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert_eq!((report.applied, report.pending, report.failed), (2, 0, false));
    assert_eq!(applies(&api), 2, "1,001 allocations in two pools: two writes");
    let patch = api.requests().into_iter().find(|r| r.method == Method::PATCH).unwrap();
    assert!(patch.content_type.starts_with("application/apply-patch+yaml"), "server-side apply");
    assert!(patch.query.contains("fieldManager=whereabouts-rs") && patch.query.contains("force=true"));

    let big = api.get(POOLS, "kube-system", "10.1.0.0-22").expect("pool named as whereabouts names it");
    assert_eq!(big["spec"]["range"], "10.1.0.0/22");
    assert_eq!(big["spec"]["allocations"].as_object().unwrap().len(), 1000);
    assert_eq!(big["status"], json!({"total": "1019", "used": 1000}));
    assert_eq!(big["metadata"]["labels"]["app.kubernetes.io/managed-by"], "whereabouts-rs");
    let small = api.get(POOLS, "kube-system", "tenant-b-10.2.0.0-24").unwrap();
    assert_eq!(small["spec"]["allocations"]["1"], json!({"id": "c-web", "podref": "default/web-0", "ifname": "net1"}));

    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert!(report.idle, "nothing changed: nothing computed, nothing written");
    n.add_many("", "10.1.0.0/22", "more", 5).await;
    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert_eq!(report.applied, 1, "only the changed pool is written");
    assert_eq!(applies(&api), 3);
    let big = api.get(POOLS, "kube-system", "10.1.0.0-22").unwrap();
    assert_eq!(big["spec"]["allocations"].as_object().unwrap().len(), 1005);
}

#[tokio::test]
async fn the_write_budget_spreads_pools_over_rounds() {
    let n = OneNode::start().await;
    let api = FakeApi::new();
    for i in 0..5 {
        n.add("", &format!("10.3.{i}.0/24"), &format!("c{i}"), None).await;
    }
    let metrics = KubeMetrics::default();
    let mut exporter = Exporter::new(api.client(), settings(2, false));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (r, _) = exporter.round(&n.node.ctx, &metrics).await;
        seen.push((r.applied, r.pending));
    }
    assert_eq!(seen, vec![(2, 3), (2, 1), (1, 0), (0, 0)]);
    assert_eq!(api.names(POOLS).len(), 5);
}

#[tokio::test]
async fn the_exporter_recovers_after_the_api_was_unreachable() {
    let n = OneNode::start().await;
    let api = FakeApi::new();
    n.add("", "10.4.0.0/24", "a", None).await;
    let metrics = KubeMetrics::default();
    let mut exporter = Exporter::new(api.client(), settings(50, false));
    api.set_down(true);
    let (report, wait) = exporter.round(&n.node.ctx, &metrics).await;
    assert!(report.failed && report.applied == 0);
    let (_, wait2) = exporter.round(&n.node.ctx, &metrics).await;
    assert!(wait2 > wait && wait > Duration::from_millis(100), "backs off while the API is down");
    n.add("", "10.4.0.0/24", "b", None).await;
    n.add("", "10.5.0.0/24", "c", None).await;
    api.set_down(false);
    let (report, wait) = exporter.round(&n.node.ctx, &metrics).await;
    assert_eq!((report.applied, report.failed, wait), (2, false, Duration::from_millis(100)));
    let pool = api.get(POOLS, "kube-system", "10.4.0.0-24").unwrap();
    assert_eq!(pool["spec"]["allocations"].as_object().unwrap().len(), 2, "the state as it is now");
    assert!(api.get(POOLS, "kube-system", "10.5.0.0-24").is_some());
}

#[tokio::test]
async fn the_mirror_is_read_only_and_deletes_only_its_own_objects() {
    let n = OneNode::start().await;
    let api = FakeApi::new();
    let ip = n.add("", "10.6.0.0/24", "mine", None).await;
    let pool = |name: &str, labels: serde_json::Value, allocations: serde_json::Value| {
        json!({"apiVersion": "whereabouts.cni.cncf.io/v1alpha1", "kind": "IPPool",
            "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
            "spec": {"range": "10.6.0.0/24", "allocations": allocations}})
    };
    let ours = json!({"app.kubernetes.io/managed-by": "whereabouts-rs"});
    api.put(POOLS, pool("old-10.9.0.0-24", ours.clone(), json!({})));
    api.put(POOLS, pool("legacy-10.8.0.0-24", json!({}), json!({"7": {"id": "x", "podref": "a/b"}})));
    // whereabouts' own object for our pool, with an allocation we do not have.
    api.put(POOLS, pool("10.6.0.0-24", json!({}), json!({"9": {"id": "stale", "podref": "a/c"}})));

    let metrics = KubeMetrics::default();
    let mut exporter = Exporter::new(api.client(), settings(50, false));
    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert_eq!((report.applied, report.deleted), (1, 1));
    assert_eq!(api.names(POOLS), vec!["10.6.0.0-24".to_string(), "legacy-10.8.0.0-24".to_string()]);
    let taken_over = api.get(POOLS, "kube-system", "10.6.0.0-24").unwrap();
    assert_eq!(taken_over["spec"]["allocations"], json!({"1": {"id": "mine", "podref": "", "ifname": "net1"}}));

    // A hand edit is never read back into the state, and a full resync repairs it.
    let mut edited = taken_over.clone();
    edited["spec"]["allocations"]["2"] = json!({"id": "by-hand", "podref": "x/y"});
    api.put(POOLS, edited);
    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert!(report.idle);
    assert!(n.holders("10.6.0.2").is_empty(), "CRD edits never reach the log");
    assert_eq!(n.holders(&ip).len(), 1);
    let wanted = n.node.ctx.with_machine(|m| desired(&m.state, "kube-system", false));
    let report = exporter.sync(&wanted, true, &metrics).await;
    assert_eq!(report.applied, 1);
    let repaired = api.get(POOLS, "kube-system", "10.6.0.0-24").unwrap();
    assert_eq!(repaired["spec"]["allocations"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn reservations_follow_allocations() {
    let n = OneNode::start().await;
    let api = FakeApi::new();
    let pod = PodSpec { ns: "default", name: "db-0", uid: "u", node: "n1" };
    n.add("net-a", "fd00:10::/120", "c1", Some(pod)).await;
    n.add("net-a", "fd00:10::/120", "c2", None).await;
    let metrics = KubeMetrics::default();
    let mut exporter = Exporter::new(api.client(), settings(50, true));
    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert_eq!(report.applied, 3, "one pool, two reservations");
    let r = api.get(RESERVATIONS, "kube-system", "net-a-fd00-10--1").expect("named as whereabouts names them");
    assert_eq!(r["spec"], json!({"containerid": "c1", "podref": "default/db-0", "ifname": "net1"}));
    assert!(api.get(POOLS, "kube-system", "net-a-fd00-10---120").is_some());
    let del = proto::ipam::ReleaseRequest {
        request_id: "del-c2".into(),
        network_name: "net-a".into(),
        container_id: "c2".into(),
        ifname: "net1".into(),
        deferred_ms: 0,
    };
    n.client().release(del).await.unwrap();
    let (report, _) = exporter.round(&n.node.ctx, &metrics).await;
    assert_eq!((report.applied, report.deleted), (1, 1));
    assert_eq!(api.names(RESERVATIONS), vec!["net-a-fd00-10--1".to_string()]);
}
