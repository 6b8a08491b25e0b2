//! The Kubernetes parts of whereabouts-rs, all optional at run time: the `IPPool` exporter
//! (`--export-ippools`), the pod reconciler (`--reconcile-pods`), both on the Raft leader only, and
//! the importer behind `whereabouts-ctl import`. Without the cargo feature `kubernetes` only the
//! flags remain (and say so when used). Nothing here is on the allocation path: these tasks read
//! the state machine and write through the proposer like any client.

mod options;

pub use options::KubeOptions;

#[cfg(feature = "kubernetes")]
pub mod crd;
#[cfg(feature = "kubernetes")]
pub mod exporter;
#[cfg(feature = "kubernetes")]
pub mod importer;
#[cfg(feature = "kubernetes")]
pub mod leader;
#[cfg(feature = "kubernetes")]
pub mod metrics;
#[cfg(feature = "kubernetes")]
pub mod naming;
#[cfg(feature = "kubernetes")]
pub mod pods;
#[cfg(feature = "kubernetes")]
pub mod reconciler;

#[cfg(feature = "kubernetes")]
pub use metrics::KubeMetrics;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::Context;

/// Starts the enabled leader-only tasks (exporter, reconciler) of a node; they end when `stop`
/// turns true. Each builds its Kubernetes client (in-cluster or kubeconfig) when this node becomes
/// the leader, and retries later when that fails.
#[cfg(feature = "kubernetes")]
pub fn start(
    opts: &KubeOptions,
    ctx: Arc<Context>,
    metrics: Arc<KubeMetrics>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    use std::time::Duration;

    const PAUSE: Duration = Duration::from_secs(10);
    let mut tasks = Vec::new();
    if !opts.enabled() {
        return tasks;
    }
    let leading = leader::leadership(&ctx.raft, ctx.id, ctx.lease);
    if opts.export_ippools {
        let settings = exporter::ExportSettings::from(opts);
        let (ctx, metrics) = (ctx.clone(), metrics.clone());
        tasks.push(tokio::spawn(leader::while_leader(
            "ippool exporter",
            leading.clone(),
            stop.clone(),
            PAUSE,
            move || {
                let (ctx, settings, metrics) = (ctx.clone(), settings.clone(), metrics.clone());
                async move {
                    match kube::Client::try_default().await {
                        Ok(client) => exporter::run(ctx, client, settings, metrics).await,
                        Err(e) => tracing::error!(error = %e, "ippool exporter: no Kubernetes client"),
                    }
                }
            },
        )));
    }
    if opts.reconcile_pods {
        let settings = reconciler::ReconcileSettings::from(opts);
        tasks.push(tokio::spawn(leader::while_leader("pod reconciler", leading, stop, PAUSE, move || {
            let (ctx, settings, metrics) = (ctx.clone(), settings.clone(), metrics.clone());
            async move {
                match kube::Client::try_default().await {
                    Ok(client) => reconciler::run(ctx, client, settings, metrics).await,
                    Err(e) => tracing::error!(error = %e, "pod reconciler: no Kubernetes client"),
                }
            }
        })));
    }
    tasks
}

/// Without the `kubernetes` feature: warns when a Kubernetes flag was given, starts nothing.
#[cfg(not(feature = "kubernetes"))]
pub fn start(opts: &KubeOptions, _ctx: Arc<Context>, _stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    if opts.enabled() {
        tracing::error!(
            "--export-ippools / --reconcile-pods: this build has no Kubernetes support (feature `kubernetes`)"
        );
    }
    Vec::new()
}
