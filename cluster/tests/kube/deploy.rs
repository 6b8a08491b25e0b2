//! deploy/: every manifest and every rendered chart template deserializes into its Kubernetes type
//! (k8s-openapi, or a strict local type for prometheus-operator and cert-manager kinds) and
//! serializes back to the same document, so a misspelt field cannot hide; the plain manifests are
//! the chart rendered with its defaults; alerts and the dashboard only use metrics the node serves.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::chart::{documents, render};
use super::support::OneNode;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Rule {
    alert: String,
    expr: String,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "for")]
    for_: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    path: String,
    interval: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MonitorSpec {
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    endpoints: Vec<Endpoint>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Custom<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

/// The subset of cert-manager's Certificate the chart uses.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    common_name: String,
    subject: Value,
    duration: String,
    renew_before: String,
    private_key: Value,
    usages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dns_names: Vec<String>,
    issuer_ref: Value,
}

fn same<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    match first_difference(doc, &back, String::new()) {
        Some(path) => Err(format!("does not round-trip at {path} (unknown or misspelt field?)")),
        None => Ok(()),
    }
}

fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                first_difference(l, r, format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (l, r))| first_difference(l, r, format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: written {a}, typed {b}")),
    }
}

/// Checks one document by its kind; returns the kind.
fn validate(doc: &Value) -> String {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let result = match (api, kind.as_str()) {
        ("apps/v1", "StatefulSet") => same::<StatefulSet>(doc),
        ("apps/v1", "DaemonSet") => same::<DaemonSet>(doc),
        ("v1", "Service") => same::<Service>(doc),
        ("v1", "ServiceAccount") => same::<ServiceAccount>(doc),
        ("v1", "ConfigMap") => same::<ConfigMap>(doc),
        ("policy/v1", "PodDisruptionBudget") => same::<PodDisruptionBudget>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => same::<ClusterRole>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => same::<ClusterRoleBinding>(doc),
        ("rbac.authorization.k8s.io/v1", "Role") => same::<Role>(doc),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => same::<RoleBinding>(doc),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => same::<CustomResourceDefinition>(doc),
        ("monitoring.coreos.com/v1", "PrometheusRule") => same::<Custom<RuleSpec>>(doc),
        ("monitoring.coreos.com/v1", "ServiceMonitor") => same::<Custom<MonitorSpec>>(doc),
        ("cert-manager.io/v1", "Certificate") => same::<Custom<CertificateSpec>>(doc),
        other => Err(format!("unexpected kind {other:?}")),
    };
    if let Err(e) = result {
        panic!("{kind} {}: {e}", doc["metadata"]["name"]);
    }
    kind
}

fn everything_on() -> Value {
    json!({
        "tls": {"enabled": true},
        "exporter": {"reservations": true, "namespace": "whereabouts"},
        "reconciler": {"dryRun": true},
        "node": {"replicas": 5, "storage": {"storageClassName": "fast"}, "extraArgs": ["--snapshot-threshold=5000"],
                 "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [{"operator": "Exists"}]},
        "plugin": {"endpoints": ["10.96.0.50:7000", "10.96.0.51:7000"]},
        "serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": true},
        "grafanaDashboard": {"enabled": true},
    })
}

fn all_docs(rendered: &std::collections::BTreeMap<String, String>) -> Vec<Value> {
    rendered.values().flat_map(|t| documents(t)).collect()
}

fn manifests_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/manifests")
}

/// deploy/manifests/*.yaml are the chart rendered with its defaults (release `whereabouts` in
/// `kube-system`), plus monitoring.yaml with the monitoring parts on. `UPDATE_MANIFESTS=1`
/// rewrites them.
fn expected_manifests() -> Vec<(&'static str, String)> {
    let header = "# Generated from deploy/helm/whereabouts-rs with its default values (release \"whereabouts\",\n# namespace kube-system) by cluster/tests/kube/deploy.rs. Edit the chart, then run\n# UPDATE_MANIFESTS=1 cargo test -p cluster --test kube deploy\n";
    let join = |r: std::collections::BTreeMap<String, String>, keep: &dyn Fn(&str) -> bool| {
        let parts: Vec<String> = r
            .into_iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, text)| format!("# Source: whereabouts-rs/templates/{name}\n{}\n", text.trim()))
            .filter(|p| !p.trim_end().ends_with(".yaml"))
            .collect();
        format!("{header}---\n{}", parts.join("---\n"))
    };
    let monitoring = |n: &str| ["servicemonitor.yaml", "prometheusrule.yaml", "dashboard.yaml"].contains(&n);
    let defaults = render("whereabouts", "kube-system", &json!({}));
    let on = json!({"serviceMonitor": {"enabled": true}, "prometheusRule": {"enabled": true}, "grafanaDashboard": {"enabled": true}});
    vec![
        ("whereabouts-rs.yaml", join(defaults, &|n| !monitoring(n))),
        ("monitoring.yaml", join(render("whereabouts", "kube-system", &on), &monitoring)),
    ]
}

#[test]
fn the_manifests_are_the_rendered_chart_and_valid() {
    for (file, text) in expected_manifests() {
        let path = manifests_dir().join(file);
        if std::env::var_os("UPDATE_MANIFESTS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{file} differs from the rendered chart: run UPDATE_MANIFESTS=1 cargo test -p cluster --test kube deploy"
        );
        let kinds: BTreeSet<String> = documents(&on_disk).iter().map(validate).collect();
        assert!(!kinds.is_empty(), "{file} has no objects");
    }
}

#[test]
fn every_chart_template_renders_valid_objects() {
    let defaults: Vec<String> =
        all_docs(&render("whereabouts", "kube-system", &json!({}))).iter().map(validate).collect();
    for kind in [
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
        "DaemonSet",
        "CustomResourceDefinition",
        "ClusterRole",
        "Role",
    ] {
        assert!(defaults.iter().any(|k| k == kind), "{kind} missing from the defaults");
    }
    let on = all_docs(&render("wr", "net", &everything_on()));
    let kinds: Vec<String> = on.iter().map(validate).collect();
    for kind in ["Certificate", "ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing with everything on");
    }
    let off = json!({"exporter": {"enabled": false}, "reconciler": {"enabled": false}, "plugin": {"enabled": false}, "crds": {"install": false}});
    let kinds: BTreeSet<String> = all_docs(&render("wr", "net", &off)).iter().map(validate).collect();
    assert_eq!(kinds, ["PodDisruptionBudget", "Service", "ServiceAccount", "StatefulSet"].map(String::from).into());
}

#[test]
fn the_statefulset_has_what_a_raft_cluster_needs() {
    let docs = all_docs(&render("whereabouts", "kube-system", &everything_on()));
    let sts: StatefulSet =
        serde_json::from_value(docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap().clone()).unwrap();
    let spec = sts.spec.unwrap();
    assert_eq!(spec.replicas, Some(5));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    assert_eq!(
        spec.volume_claim_templates.unwrap()[0].spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("fast")
    );
    let pod = spec.template.spec.unwrap();
    assert!(pod.affinity.unwrap().pod_anti_affinity.is_some());
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap();
    let cluster = args.iter().find(|a| a.starts_with("--initial-cluster=")).unwrap();
    assert_eq!(
        cluster,
        "--initial-cluster=0=whereabouts-node-0.whereabouts-node.kube-system.svc:7000,1=whereabouts-node-1.whereabouts-node.kube-system.svc:7000,2=whereabouts-node-2.whereabouts-node.kube-system.svc:7000,3=whereabouts-node-3.whereabouts-node.kube-system.svc:7000,4=whereabouts-node-4.whereabouts-node.kube-system.svc:7000"
    );
    assert!(args[0].contains("--id auto") && args[0].contains("-ge 5"));
    for flag in [
        "--tls-ca=/etc/whereabouts/tls/ca.crt",
        "--export-ippools",
        "--kube-namespace=whereabouts",
        "--export-reservations",
        "--reconcile-pods",
        "--reconcile-dry-run",
        "\"--snapshot-threshold=5000\"",
    ] {
        assert!(args.iter().any(|a| a == flag.trim_matches('"')), "{flag} missing: {args:?}");
    }
    assert!(!args.iter().any(|a| a == "--insecure"));
    assert_eq!(c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap().path.as_deref(), Some("/readyz"));
    assert!(c.resources.as_ref().unwrap().limits.is_some());
    let pdb = docs.iter().find(|d| d["kind"] == "PodDisruptionBudget").unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let headless = docs.iter().find(|d| d["kind"] == "Service" && d["spec"]["clusterIP"] == "None").unwrap();
    assert_eq!(headless["spec"]["publishNotReadyAddresses"], true);
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
    let env = &ds["spec"]["template"]["spec"]["containers"][0]["env"];
    let endpoints = env.as_array().unwrap().iter().find(|e| e["name"] == "ENDPOINTS").unwrap();
    assert_eq!(endpoints["value"], "\"10.96.0.50:7000\",\"10.96.0.51:7000\"");
}

/// Metric names a node serves (`_total`, `_bucket`, ... included), from its `/metrics` text.
fn served_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut it = rest.split_whitespace();
        let (name, kind) = (it.next().unwrap(), it.next().unwrap());
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}

fn used_metrics(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("whereabouts_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[tokio::test]
async fn alerts_and_the_dashboard_use_metrics_the_node_serves() {
    let n = OneNode::start().await;
    n.add("", "10.60.0.0/24", "c", None).await;
    // Families are served once they have a sample.
    let kube = &n.node.kube_metrics;
    kube.release("released", "pod_gone");
    kube.export_write(true);
    kube.pass("ok");
    let served = served_metrics(&cluster::node::http::render_metrics(&n.node.ctx));
    assert!(served.contains("whereabouts_reconciler_releases_total"), "{served:?}");
    let rules = render("whereabouts", "kube-system", &json!({"prometheusRule": {"enabled": true}}))
        ["prometheusrule.yaml"]
        .clone();
    let dashboard = std::fs::read_to_string(super::chart::chart_dir().join("dashboards/whereabouts-rs.json")).unwrap();
    let parsed: Value = serde_json::from_str(&dashboard).unwrap();
    assert!(parsed["panels"].as_array().unwrap().len() >= 10);
    for (what, text) in [("alerts", rules), ("dashboard", dashboard)] {
        let unknown: Vec<String> = used_metrics(&text).difference(&served).cloned().collect();
        assert!(unknown.is_empty(), "{what} use metrics no node serves: {unknown:?}");
    }
}
