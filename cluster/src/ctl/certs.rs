//! `whereabouts-ctl certs init`: a CA and certificates for a development or test cluster.

use std::path::PathBuf;

use clap::Subcommand;

use super::output::{print, Output};
use crate::tls::certs::{init, Plan};

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write ca.pem, and a certificate + key per member, per Kubernetes node and per operator.
    Init {
        /// Directory to write into (created if missing; existing files are never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// A member: `NAME=HOST[,HOST...]` with the host names / IPs it is reached at (repeatable).
        #[arg(long = "peer", value_parser = parse_peer)]
        peers: Vec<(String, Vec<String>)>,
        /// A Kubernetes node name: its CNI plugin gets a `whereabouts:node` certificate (repeatable).
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// An operator name: an admin certificate (repeatable; default `admin`).
        #[arg(long = "admin", default_values_t = [String::from("admin")])]
        admins: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

fn parse_peer(s: &str) -> Result<(String, Vec<String>), String> {
    let (name, hosts) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected NAME=HOST[,HOST...]"))?;
    let hosts: Vec<String> = hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect();
    if name.is_empty() || hosts.is_empty() {
        return Err(format!("{s:?}: expected NAME=HOST[,HOST...]"));
    }
    Ok((name.to_string(), hosts))
}

/// Runs a certs command.
pub fn run(out: Output, cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Init { out: dir, peers, nodes, admins, days } => {
            let written = init(&dir, &Plan { peers, nodes, admins, days })?;
            let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            print(out, &names, || format!("wrote {} files:\n{}", names.len(), names.join("\n")))
        }
    }
}
