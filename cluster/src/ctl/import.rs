//! `whereabouts-ctl import`: migration from whereabouts. Reads whereabouts' `IPPool`s (and
//! reservations) from the Kubernetes API or a YAML file and seeds the cluster with them (see
//! [`crate::kube::importer`]); a dry run unless `--apply`. Exits non-zero when there are conflicts.

use std::path::PathBuf;

use clap::Args;
use proto::ipam as pb;

use super::client::Cluster;
use super::output::{print, table, Output};
use crate::kube::importer::{self, ImportOptions, ImportReport, ImportTarget, Source};

/// Options of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read the IPPools from the Kubernetes API (in-cluster config, or KUBECONFIG / ~/.kube/config).
    #[arg(long, conflicts_with = "from_file", required_unless_present = "from_file")]
    pub from_kube: bool,
    /// Read them from a YAML file, e.g. the output of
    /// `kubectl get ippools,overlappingrangeipreservations -A -o yaml`.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// With --from-kube: only this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Interface name for allocations that record none (whereabouts versions before `ifname`).
    #[arg(long, default_value = "net1")]
    pub default_ifname: String,
    /// CNI network `name` recorded with the imported allocations (CNI GC sweeps per CNI network).
    #[arg(long, default_value = "")]
    pub cni_network: String,
    /// Commit the import. Without it nothing is written (dry run).
    #[arg(long)]
    pub apply: bool,
}

impl ImportTarget for Cluster {
    async fn allocations(&self) -> Result<Vec<pb::Allocation>, tonic::Status> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let msg = pb::ListAllocationsRequest { network_name: None, limit: 0, after: after.clone(), local: false };
            let (_, page) = self.call(msg, |mut c, r| async move { c.list_allocations(r).await }).await?;
            all.extend(page.allocations);
            if page.next.is_empty() {
                return Ok(all);
            }
            after = page.next;
        }
    }

    async fn allocate(&self, req: pb::AllocateRequest) -> Result<pb::AllocateResponse, tonic::Status> {
        self.call(req, |mut c, r| async move { c.allocate(r).await }).await.map(|(_, r)| r)
    }
}

/// Runs `import`.
pub async fn run(cluster: &Cluster, out: Output, args: ImportArgs) -> anyhow::Result<()> {
    let source = match &args.from_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Source::from_yaml(&text)?
        }
        None => Source::from_kube(kube::Client::try_default().await?, args.namespace.as_deref()).await?,
    };
    let opts = ImportOptions { default_ifname: args.default_ifname, cni_network: args.cni_network };
    let report = importer::import(cluster, &source, &opts, args.apply).await?;
    print(out, &report, || text(&report))?;
    let conflicts = report.count("conflict") + report.count("invalid");
    if conflicts > 0 {
        anyhow::bail!(
            "{conflicts} entries were not imported (conflicts or invalid): resolve them, then run the import again"
        );
    }
    Ok(())
}

fn text(report: &ImportReport) -> String {
    let rows: Vec<Vec<String>> = report
        .entries
        .iter()
        .map(|e| {
            let network = if e.network.is_empty() { "(unnamed)".to_string() } else { e.network.clone() };
            vec![
                network,
                e.pool.clone(),
                e.ip.clone(),
                e.owner.clone(),
                e.pod.clone(),
                e.result.clone(),
                e.detail.clone(),
            ]
        })
        .collect();
    let mut out = table(&["NETWORK", "POOL", "IP", "OWNER", "POD", "RESULT", "DETAIL"], &rows);
    for note in &report.notes {
        out.push_str(&format!("\nnote: {note}"));
    }
    let mode = if report.applied { "applied" } else { "dry run: nothing written (use --apply to import)" };
    out.push_str(&format!(
        "\n\n{} new, {} imported, {} already present, {} conflicts, {} invalid ({mode})",
        report.count("new"),
        report.count("imported"),
        report.count("present"),
        report.count("conflict"),
        report.count("invalid")
    ));
    out
}
