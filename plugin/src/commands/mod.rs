//! One module per CNI command, all taking a validated [`Request`] and a [`Cluster`]; [`execute`]
//! dispatches and returns what to print on stdout (only ADD prints a result). After a command that
//! reached the cluster, the DELs this node could not deliver earlier are delivered
//! ([`deferred`]).

mod add;
mod capacity;
mod check;
mod deferred;
mod del;
mod gc;
mod status;

use ipam::{FieldError, FieldProblem};
use proto::ipam::Attachment;

pub use capacity::allocatable;

use crate::client::{jitter_from, ClientFactory, Cluster, ClusterError};
use crate::error::PluginError;
use crate::invocation::Command;
use crate::last_leader::{leader_first, LastLeader};
use crate::request::Request;

/// Runs the command of `req` (not VERSION); returns the JSON to print, if any.
pub async fn execute(req: &Request, factory: &dyn ClientFactory) -> Result<Option<String>, PluginError> {
    let memo = LastLeader::new(&req.state_dir);
    let remembered = memo.read();
    let mut cluster = cluster_for(req, factory, req.budget, remembered.as_deref());
    let outcome = match req.invocation.command {
        Command::Add => add::add(req, &mut cluster).await.map(Some),
        Command::Del => del::del(req, &mut cluster).await.map(|()| None),
        Command::Check => check::check(req, &mut cluster).await.map(|()| None),
        Command::Gc => gc::gc(req, &mut cluster).await.map(|()| None),
        Command::Status => status::status(req, &mut cluster).await.map(|()| None),
        Command::Version => unreachable!("VERSION is answered before a request is loaded"),
    };
    tracing::debug!(attempts = cluster.attempts(), leader = cluster.leader(), "calls to the cluster");
    if let Some(leader) = cluster.leader().filter(|l| Some(*l) != remembered.as_deref()) {
        if req.config.cluster.endpoints.iter().any(|e| e == leader) {
            memo.write(leader);
        }
    }
    if outcome.is_ok() && cluster.reached() {
        deferred::deliver(req, factory).await;
    }
    outcome.map_err(|e| name_the_node(e, req))
}

/// The cluster of `req`'s configuration, within `budget`, the remembered leader first.
fn cluster_for<'f>(
    req: &Request,
    factory: &'f dyn ClientFactory,
    budget: crate::client::Budget,
    leader: Option<&str>,
) -> Cluster<'f> {
    let keys = &req.config.cluster;
    let endpoints = leader_first(keys.endpoints.clone(), leader);
    Cluster::new(endpoints, factory, budget, jitter_from(&req.request_id)).with_tls(keys.tls.clone())
}

/// A refusal for the node name says which name was sent and where it came from.
fn name_the_node(e: PluginError, req: &Request) -> PluginError {
    match e {
        PluginError::Cluster(ClusterError::PermissionDenied(message)) => {
            PluginError::NodeRefused { node: req.node.name.clone(), origin: req.node.source.to_string(), message }
        }
        other => other,
    }
}

/// Fails with code 7 naming `ipam.endpoints` when no endpoint is configured.
fn require_endpoints(req: &Request) -> Result<(), PluginError> {
    if req.config.cluster.endpoints.is_empty() {
        let problem = FieldProblem::Invalid(
            "is required: list the cluster nodes (host:port) in the ipam section or in the flat file".into(),
        );
        return Err(FieldError::new("ipam.endpoints", "[]", problem).into());
    }
    Ok(())
}

/// Who asks: the container and interface, the pod (from `CNI_ARGS`), this node, the CNI network.
/// A pod is sent only with its name: podman sends `K8S_POD_NAME` alone (namespace ""), a bare CNI
/// caller neither, and the attachment is then known by container id and interface only.
fn attachment(req: &Request) -> Attachment {
    let (pod_namespace, pod_name) = match req.args.pod_name.as_str() {
        "" => (String::new(), String::new()),
        name => (req.args.pod_namespace.clone(), name.to_string()),
    };
    Attachment {
        container_id: req.invocation.container_id.clone(),
        ifname: req.invocation.ifname.clone(),
        pod_namespace,
        pod_name,
        pod_uid: req.args.pod_uid.clone(),
        node: req.node.name.clone(),
        cni_network: req.config.cni_network.clone(),
    }
}
