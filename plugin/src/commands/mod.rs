//! One module per CNI command, all taking a validated [`Request`] and a [`Cluster`]; [`execute`]
//! dispatches and returns what to print on stdout (only ADD prints a result).

mod add;
mod capacity;
mod check;
mod del;
mod gc;
mod status;

use proto::ipam::Attachment;
use raft_store::domain::{FieldError, FieldProblem};

pub use capacity::allocatable;

use crate::client::{jitter_from, ClientFactory, Cluster};
use crate::cni::print_result;
use crate::error::PluginError;
use crate::invocation::Command;
use crate::request::Request;

/// Runs the command of `req` (not VERSION); returns the JSON to print, if any.
pub async fn execute(req: &Request, factory: &dyn ClientFactory) -> Result<Option<String>, PluginError> {
    let mut cluster = Cluster::new(req.config.endpoints.clone(), factory, req.budget, jitter_from(&req.request_id))
        .with_tls(req.config.tls.clone());
    let outcome = match req.invocation.command {
        Command::Add => add::add(req, &mut cluster).await.map(|r| Some(print_result(&r, req.version))),
        Command::Del => del::del(req, &mut cluster).await.map(|()| None),
        Command::Check => check::check(req, &mut cluster).await.map(|()| None),
        Command::Gc => gc::gc(req, &mut cluster).await.map(|()| None),
        Command::Status => status::status(req, &mut cluster).await.map(|()| None),
        Command::Version => unreachable!("VERSION is answered before a request is loaded"),
    };
    tracing::debug!(attempts = cluster.attempts(), "calls to the cluster");
    outcome
}

/// Fails with code 7 naming `ipam.endpoints` when no endpoint is configured.
fn require_endpoints(req: &Request) -> Result<(), PluginError> {
    if req.config.endpoints.is_empty() {
        let problem = FieldProblem::Invalid(
            "is required: list the cluster nodes (host:port) in the ipam section or in the flat file".into(),
        );
        return Err(FieldError::new("ipam.endpoints", "[]", problem).into());
    }
    Ok(())
}

/// Who asks: the container and interface, the pod (from `CNI_ARGS`), this node, the CNI network.
fn attachment(req: &Request) -> Attachment {
    Attachment {
        container_id: req.invocation.container_id.clone(),
        ifname: req.invocation.ifname.clone(),
        pod_namespace: req.args.pod_namespace.clone(),
        pod_name: req.args.pod_name.clone(),
        pod_uid: req.args.pod_uid.clone(),
        node: req.node.clone(),
        cni_network: req.config.cni_network.clone(),
    }
}
