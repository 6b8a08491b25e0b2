//! The pod reconciler against the fake API, with explicit pass times (no sleeping): grace period,
//! the re-check just before a release, UID changes, deleted nodes, missing data, dry run, rate
//! limiting, re-owned addresses and allocations without a pod.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::kube::pods::ClusterView;
use cluster::kube::reconciler::{ReconcileSettings, Reconciler};
use cluster::kube::KubeMetrics;
use http::Method;
use serde_json::json;

use super::fake_api::FakeApi;
use super::support::{OneNode, PodSpec};

const PODS: &str = "api/v1/pods";
const NODES: &str = "api/v1/nodes";
const GRACE: Duration = Duration::from_secs(300);

fn settings(dry_run: bool, per_minute: u32) -> ReconcileSettings {
    ReconcileSettings {
        grace: GRACE,
        interval: Duration::from_secs(30),
        resync: Duration::from_secs(3600),
        max_per_minute: per_minute,
        dry_run,
    }
}

fn pod(p: PodSpec<'_>, phase: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": p.name, "namespace": p.ns, "uid": p.uid},
        "spec": {"nodeName": p.node, "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": phase}})
}

fn node(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
}

struct World {
    n: OneNode,
    api: FakeApi,
    metrics: KubeMetrics,
    r: Reconciler,
    t0: Instant,
}

impl World {
    async fn new(dry_run: bool, per_minute: u32) -> World {
        let n = OneNode::start().await;
        let api = FakeApi::new();
        api.put(NODES, node("n1"));
        api.put(NODES, node("n2"));
        let view = Arc::new(Mutex::new(ClusterView::default()));
        let r = Reconciler::new(api.client(), settings(dry_run, per_minute), view);
        World { n, api, metrics: KubeMetrics::default(), r, t0: Instant::now() }
    }

    /// Allocates for `p` and creates the pod in the API; returns the address.
    async fn running(&self, p: PodSpec<'_>, container: &str) -> String {
        self.api.put(PODS, pod(p, "Running"));
        self.n.add("", "10.20.0.0/24", container, Some(p)).await
    }

    async fn pass_at(&mut self, after: Duration) -> cluster::kube::reconciler::PassReport {
        self.r.pass(&self.n.node.ctx, &self.metrics, self.t0 + after).await
    }

    fn held(&self, ip: &str) -> bool {
        !self.n.holders(ip).is_empty()
    }
}

const A: PodSpec<'static> = PodSpec { ns: "default", name: "a", uid: "uid-a", node: "n1" };
const B: PodSpec<'static> = PodSpec { ns: "default", name: "b", uid: "uid-b", node: "n2" };

#[tokio::test]
async fn a_gone_pod_is_released_only_after_the_grace_period_and_a_fresh_check() {
    let mut w = World::new(false, 60).await;
    let ip_a = w.running(A, "ca").await;
    let ip_b = w.running(B, "cb").await;
    let r = w.pass_at(Duration::ZERO).await;
    assert_eq!((r.suspects, r.released.len(), r.no_data), (0, 0, false));

    w.api.remove(PODS, "default", "a");
    w.r = Reconciler::new(w.api.client(), settings(false, 60), Arc::default()); // a fresh view (no watch here)
    let r = w.pass_at(Duration::from_secs(1)).await;
    assert_eq!((r.suspects, r.released.len()), (1, 0), "suspected, not released");
    let r = w.pass_at(GRACE).await;
    assert_eq!(r.released.len(), 0, "one second short of the grace period");
    assert!(w.held(&ip_a));
    let gets_before = w.api.count(Method::GET, "/namespaces/default/pods/a");
    let r = w.pass_at(GRACE + Duration::from_secs(1)).await;
    assert_eq!(r.released, vec![ip_a.parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(w.api.count(Method::GET, "/namespaces/default/pods/a"), gets_before + 1, "re-read just before");
    assert!(!w.held(&ip_a) && w.held(&ip_b));
    assert_eq!(w.metrics.releases("released"), 1);
}

#[tokio::test]
async fn a_pod_seen_again_or_found_by_the_recheck_is_kept() {
    let mut w = World::new(false, 60).await;
    let ip = w.running(A, "ca").await;
    w.api.remove(PODS, "default", "a");
    assert_eq!(w.pass_at(Duration::ZERO).await.suspects, 1);
    // The pod comes back (same UID) before the next full list; the view still misses it, but
    // the fresh read just before the release finds it.
    w.api.put(PODS, pod(A, "Running"));
    let r = w.pass_at(GRACE + Duration::from_secs(5)).await;
    assert_eq!((r.released.len(), r.suspects), (0, 0));
    assert!(w.held(&ip));
}

#[tokio::test]
async fn a_recreated_pod_frees_the_old_uid_and_never_the_same_uid() {
    let mut w = World::new(false, 60).await;
    let ip_a = w.running(A, "ca").await;
    let ip_b = w.running(B, "cb").await;
    // Pod a re-created with a new UID (and no ADD yet): the old allocation is stale.
    w.api.remove(PODS, "default", "a");
    w.api.put(PODS, pod(PodSpec { uid: "uid-a2", ..A }, "Pending"));
    w.pass_at(Duration::ZERO).await;
    let r = w.pass_at(GRACE).await;
    assert_eq!(r.released.len(), 1);
    assert!(!w.held(&ip_a) && w.held(&ip_b), "same UID: kept");
    assert_eq!(w.metrics.releases("released"), 1);
}

#[tokio::test]
async fn nothing_is_released_while_the_api_cannot_be_read() {
    let mut w = World::new(false, 60).await;
    let ip = w.running(A, "ca").await;
    w.api.set_down(true);
    let r = w.pass_at(Duration::ZERO).await;
    assert!(r.no_data, "no view: no judgement");
    w.api.set_down(false);
    w.api.remove(PODS, "default", "a");
    assert_eq!(w.pass_at(Duration::from_secs(1)).await.suspects, 1);
    w.api.set_down(true);
    let r = w.pass_at(GRACE * 2).await;
    assert_eq!((r.released.len(), r.deferred), (0, 1), "the re-check failed: no release");
    assert!(w.held(&ip));
    w.api.set_down(false);
    let r = w.pass_at(GRACE * 3).await;
    assert_eq!(r.released.len(), 1);
}

#[tokio::test]
async fn pods_on_deleted_nodes_are_released_and_finished_pods_too() {
    let mut w = World::new(false, 60).await;
    let ip_a = w.running(A, "ca").await;
    let ip_b = w.running(B, "cb").await;
    let c = PodSpec { ns: "jobs", name: "c", uid: "uid-c", node: "n2" };
    let ip_c = w.running(c, "cc").await;
    w.api.remove(NODES, "", "n1");
    w.api.put(PODS, pod(c, "Succeeded"));
    w.pass_at(Duration::ZERO).await;
    let r = w.pass_at(GRACE).await;
    assert_eq!(r.released.len(), 2);
    assert!(!w.held(&ip_a) && !w.held(&ip_c) && w.held(&ip_b));
    assert_eq!(w.api.count(Method::GET, "/api/v1/nodes/n1"), 1, "the node was re-read before the release");
}

#[tokio::test]
async fn dry_run_releases_nothing_and_counts() {
    let mut w = World::new(true, 60).await;
    let ip = w.running(A, "ca").await;
    w.api.remove(PODS, "default", "a");
    w.pass_at(Duration::ZERO).await;
    let r = w.pass_at(GRACE).await;
    assert_eq!(r.released.len(), 1, "reported");
    w.pass_at(GRACE * 2).await;
    assert!(w.held(&ip));
    assert_eq!((w.metrics.releases("dry_run"), w.metrics.releases("released")), (1, 0), "counted once");
}

#[tokio::test]
async fn releases_are_rate_limited() {
    let mut w = World::new(false, 2).await;
    for i in 0..5 {
        let name = format!("p{i}");
        let p = PodSpec { ns: "default", name: &name, uid: "u", node: "n1" };
        w.running(p, &format!("c{i}")).await;
        w.api.remove(PODS, "default", &name);
    }
    w.pass_at(Duration::ZERO).await;
    let released = |r: cluster::kube::reconciler::PassReport| r.released.len();
    assert_eq!(released(w.pass_at(GRACE).await), 2, "a full bucket of two");
    assert_eq!(released(w.pass_at(GRACE).await), 0, "empty at the same instant");
    assert_eq!(released(w.pass_at(GRACE + Duration::from_secs(30)).await), 1, "one token per 30 s");
    assert_eq!(released(w.pass_at(GRACE + Duration::from_secs(90)).await), 2);
    assert_eq!(w.n.count(), 0);
}

#[tokio::test]
async fn a_reowned_address_and_pod_less_allocations_are_never_released() {
    let mut w = World::new(false, 60).await;
    let ip = w.running(A, "old-container").await;
    let anon = w.n.add("", "10.20.0.0/24", "no-pod", None).await;
    w.api.remove(PODS, "default", "a");
    w.api.put(PODS, pod(PodSpec { uid: "uid-a2", ..A }, "Pending"));
    w.pass_at(Duration::ZERO).await;
    // The new pod's ADD arrives: same pod + interface keeps the address, now owned by the new
    // container and UID. The suspicion was about the old owner: nothing is released.
    let again = w.n.add("", "10.20.0.0/24", "new-container", Some(PodSpec { uid: "uid-a2", ..A })).await;
    assert_eq!(again, ip);
    let r = w.pass_at(GRACE * 2).await;
    assert_eq!(r.released.len(), 0);
    assert_eq!(w.n.holders(&ip)[0].1, "new-container/net1");
    assert!(w.held(&anon), "an allocation without a pod is not the reconciler's to judge");
}
