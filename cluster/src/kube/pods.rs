//! What the reconciler knows of the Kubernetes cluster: pods (UID, node, finished or not) and node
//! names, kept by watching both and replaced by a full list on every resync. A view is `ready` only
//! after a complete list; a watch error makes it not ready until the next complete list, so that
//! nothing is judged on missing data.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::sync::Notify;

/// What the reconciler needs of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.nodeName`, when scheduled.
    pub node: Option<String>,
    /// `status.phase` is `Succeeded` or `Failed`: its sandbox (and network) is gone.
    pub finished: bool,
}

/// A pod's key: namespace and name.
pub type PodKey = (String, String);

/// Pods and nodes as last seen.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// Pods by namespace and name.
    pub pods: HashMap<PodKey, PodInfo>,
    /// Names of existing nodes.
    pub nodes: HashSet<String>,
    /// The pods are completely known (listed, no watch error since).
    pub pods_ready: bool,
    /// The nodes are completely known.
    pub nodes_ready: bool,
}

impl ClusterView {
    /// Whether both pods and nodes are completely known.
    pub fn ready(&self) -> bool {
        self.pods_ready && self.nodes_ready
    }
}

/// The key and reconciler's view of `pod` (None when it has no name).
pub fn pod_info(pod: &Pod) -> Option<(PodKey, PodInfo)> {
    let name = pod.metadata.name.clone()?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let info = PodInfo {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        finished: matches!(phase, Some("Succeeded" | "Failed")),
    };
    Some(((namespace, name), info))
}

/// Lists every pod and node (paged): a complete, ready view, or the API's error.
pub async fn list_all(client: &Client) -> Result<ClusterView, kube::Error> {
    let mut view = ClusterView { pods_ready: true, nodes_ready: true, ..ClusterView::default() };
    let pods: Api<Pod> = Api::all(client.clone());
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = pods.list(&params).await?;
        view.pods.extend(page.items.iter().filter_map(pod_info));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = nodes.list_metadata(&params).await?;
        view.nodes.extend(page.items.into_iter().filter_map(|n| n.metadata.name));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(view);
        }
    }
}

/// A fresh read of one pod from the API: `None` when it does not exist.
pub async fn get_pod(client: &Client, namespace: &str, name: &str) -> Result<Option<PodInfo>, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    Ok(pods.get_opt(name).await?.as_ref().and_then(pod_info).map(|(_, info)| info))
}

/// A fresh read of whether node `name` exists.
pub async fn node_exists(client: &Client, name: &str) -> Result<bool, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    Ok(nodes.get_metadata_opt(name).await?.is_some())
}

/// Keeps `view` up to date by watching pods and nodes; wakes `deleted` when a pod goes away.
/// Runs until cancelled.
pub async fn watch(client: Client, view: Arc<Mutex<ClusterView>>, deleted: Arc<Notify>) {
    let pods = watcher::watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff();
    let nodes =
        watcher::watcher(Api::<PartialObjectMeta<Node>>::all(client), watcher::Config::default()).default_backoff();
    let mut pod_buffer: Option<HashMap<PodKey, PodInfo>> = None;
    let mut node_buffer: Option<HashSet<String>> = None;
    futures::pin_mut!(pods, nodes);
    loop {
        tokio::select! {
            event = pods.next() => {
                let Some(event) = event else { return };
                let mut v = view.lock().unwrap_or_else(|p| p.into_inner());
                match event {
                    Ok(Event::Init) => pod_buffer = Some(HashMap::new()),
                    Ok(Event::InitApply(p)) => {
                        if let (Some(b), Some((k, i))) = (pod_buffer.as_mut(), pod_info(&p)) { b.insert(k, i); }
                    }
                    Ok(Event::InitDone) => {
                        v.pods = pod_buffer.take().unwrap_or_default();
                        v.pods_ready = true;
                    }
                    Ok(Event::Apply(p)) => if let Some((k, i)) = pod_info(&p) { v.pods.insert(k, i); },
                    Ok(Event::Delete(p)) => {
                        if let Some((k, _)) = pod_info(&p) { v.pods.remove(&k); }
                        deleted.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reconciler: pod watch failed; not judging until the next full list");
                        v.pods_ready = false;
                    }
                }
            }
            event = nodes.next() => {
                let Some(event) = event else { return };
                let mut v = view.lock().unwrap_or_else(|p| p.into_inner());
                let name = |m: &PartialObjectMeta<Node>| m.metadata.name.clone();
                match event {
                    Ok(Event::Init) => node_buffer = Some(HashSet::new()),
                    Ok(Event::InitApply(n)) => {
                        if let (Some(b), Some(n)) = (node_buffer.as_mut(), name(&n)) { b.insert(n); }
                    }
                    Ok(Event::InitDone) => {
                        v.nodes = node_buffer.take().unwrap_or_default();
                        v.nodes_ready = true;
                    }
                    Ok(Event::Apply(n)) => if let Some(n) = name(&n) { v.nodes.insert(n); },
                    Ok(Event::Delete(n)) => {
                        if let Some(n) = name(&n) { v.nodes.remove(&n); }
                        deleted.notify_one();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reconciler: node watch failed; not judging until the next full list");
                        v.nodes_ready = false;
                    }
                }
            }
        }
    }
}
