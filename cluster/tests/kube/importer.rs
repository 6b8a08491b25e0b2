//! The importer: whereabouts' IPPools (from YAML or the fake API) into a running node; dry run,
//! conflicts reported and never overwritten, owners kept, idempotent re-runs.

use cluster::kube::importer::{import, ImportOptions, ImportTarget, Source};
use proto::ipam as pb;
use serde_json::json;

use super::fake_api::FakeApi;
use super::support::{OneNode, PodSpec};

/// The importer's view of a node: its IPAM API.
struct Target<'a>(&'a OneNode);

impl ImportTarget for Target<'_> {
    async fn allocations(&self) -> Result<Vec<pb::Allocation>, tonic::Status> {
        let req = pb::ListAllocationsRequest { network_name: None, limit: 0, after: String::new(), local: false };
        Ok(self.0.client().list_allocations(req).await?.into_inner().allocations)
    }
    async fn allocate(&self, req: pb::AllocateRequest) -> Result<pb::AllocateResponse, tonic::Status> {
        Ok(self.0.client().allocate(req).await?.into_inner())
    }
}

const SOURCE: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: whereabouts.cni.cncf.io/v1alpha1
  kind: IPPool
  metadata: {name: 10.30.0.0-24, namespace: kube-system}
  spec:
    range: 10.30.0.0/24
    allocations:
      "1": {id: c-web, podref: default/web, ifname: net1}
      "2": {id: c-same, podref: default/same, ifname: net1}
      "3": {id: c-theirs, podref: default/theirs, ifname: net1}
      "4": {id: c-old, podref: default/old}
      "300": {id: c-bad, podref: default/bad}
- apiVersion: whereabouts.cni.cncf.io/v1alpha1
  kind: IPPool
  metadata: {name: tenant-a-fd00-30---120, namespace: kube-system}
  spec:
    range: fd00:30::/120
    allocations:
      "16": {id: c-v6, podref: tenant/db-0, ifname: net2}
- apiVersion: whereabouts.cni.cncf.io/v1alpha1
  kind: OverlappingRangeIPReservation
  metadata: {name: 10.30.0.4, namespace: kube-system}
  spec: {containerid: c-old, podref: default/old, ifname: eth7}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: unrelated}
"#;

fn opts() -> ImportOptions {
    ImportOptions { default_ifname: "net1".into(), cni_network: "macvlan-conf".into() }
}

fn results(report: &cluster::kube::importer::ImportReport) -> Vec<(String, String)> {
    report.entries.iter().map(|e| (e.ip.clone(), e.result.clone())).collect()
}

#[tokio::test]
async fn dry_run_then_apply_keeps_owners_and_reports_conflicts() {
    let n = OneNode::start().await;
    // Already in the cluster: 10.30.0.2 for the same owner, 10.30.0.3 for somebody else.
    let same = PodSpec { ns: "default", name: "same", uid: "", node: "" };
    let mut req = super::support::add_request("", "10.30.0.0/24", "c-same", Some(same));
    req.static_ips = vec!["10.30.0.2/24".into()];
    req.ranges.clear();
    n.client().allocate(req).await.unwrap();
    let mut req = super::support::add_request("", "10.30.0.0/24", "someone-else", None);
    req.static_ips = vec!["10.30.0.3/24".into()];
    req.ranges.clear();
    n.client().allocate(req).await.unwrap();
    let before = n.count();

    let source = Source::from_yaml(SOURCE).unwrap();
    assert_eq!((source.pools.len(), source.reservations.len(), source.skipped.len()), (2, 1, 1));
    let dry = import(&Target(&n), &source, &opts(), false).await.unwrap();
    let expect = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        results(&dry),
        expect(&[
            ("10.30.0.1", "new"),
            ("10.30.0.2", "present"),
            ("10.30.0.3", "conflict"),
            ("10.30.0.4", "new"),
            ("", "invalid"),
            ("fd00:30::10", "new"),
        ])
    );
    assert_eq!(dry.entries[3].owner, "c-old/eth7", "ifname from the reservation");
    assert!(dry.entries[2].detail.contains("someone-else/net1"));
    assert_eq!(dry.entries[5].network, "tenant-a");
    assert_eq!(n.count(), before, "a dry run writes nothing");

    let applied = import(&Target(&n), &source, &opts(), true).await.unwrap();
    assert_eq!((applied.count("imported"), applied.count("conflict"), applied.count("present")), (3, 1, 1));
    assert_eq!(n.holders("10.30.0.1"), vec![(String::new(), "c-web/net1".to_string())]);
    assert_eq!(n.holders("10.30.0.3"), vec![(String::new(), "someone-else/net1".to_string())], "not overwritten");
    assert_eq!(n.holders("fd00:30::10"), vec![("tenant-a".to_string(), "c-v6/net2".to_string())]);
    let pod = n.node.ctx.with_machine(|m| m.state.who_has(&"10.30.0.1".parse().unwrap())[0].attachment.clone());
    assert_eq!(pod.pod.map(|p| p.to_string()), Some("default/web".to_string()));

    // Re-running is safe; the pod's next ADD (new sandbox) gets its imported address back.
    let again = import(&Target(&n), &source, &opts(), true).await.unwrap();
    assert_eq!((again.count("present"), again.count("imported")), (4, 0));
    let web = PodSpec { ns: "default", name: "web", uid: "u-web", node: "n1" };
    assert_eq!(n.add("", "10.30.0.0/24", "new-sandbox", Some(web)).await, "10.30.0.1");
}

#[tokio::test]
async fn pools_are_read_from_the_api() {
    let api = FakeApi::new();
    api.put(
        "apis/whereabouts.cni.cncf.io/v1alpha1/ippools",
        json!({"apiVersion": "whereabouts.cni.cncf.io/v1alpha1", "kind": "IPPool",
            "metadata": {"name": "net1-10.40.0.0-16", "namespace": "whereabouts"},
            "spec": {"range": "10.40.0.0/16", "allocations": {"257": {"id": "c", "podref": "ns/p"}}}}),
    );
    let all = Source::from_kube(api.client(), None).await.unwrap();
    assert_eq!(all.pools.len(), 1);
    assert!(Source::from_kube(api.client(), Some("other")).await.unwrap().pools.is_empty());
    let n = OneNode::start().await;
    let report = import(&Target(&n), &all, &opts(), true).await.unwrap();
    assert_eq!(results(&report), vec![("10.40.1.1".to_string(), "imported".to_string())]);
    assert_eq!(report.entries[0].network, "net1");
    assert_eq!(report.entries[0].detail, "no ifname recorded: net1 assumed");
}

#[test]
fn pools_whose_name_does_not_match_their_range_are_skipped() {
    let yaml = r#"
apiVersion: whereabouts.cni.cncf.io/v1alpha1
kind: IPPool
metadata: {name: something-else}
spec: {range: 10.0.0.0/24, allocations: {"1": {id: c, podref: a/b}}}
"#;
    let source = Source::from_yaml(yaml).unwrap();
    let report = cluster::kube::importer::plan(&source, &[], &opts());
    assert!(report.entries.is_empty());
    assert!(report.notes[0].contains("does not match range"), "{:?}", report.notes);
}
