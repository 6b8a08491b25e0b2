//! Transport security: mutual TLS for Raft between nodes and for every client, with identities
//! (and so permissions) taken from client certificates, certificates reloaded when their files
//! change, and `certs init` for development and test set-ups. Plain TCP only with `--insecure`.

pub mod certs;
pub mod identity;
pub mod incoming;
pub mod material;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::watch;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity as TonicIdentity};

pub use identity::Identity;
pub use incoming::PeerInfo;
pub use material::{Loaded, TlsError, TlsFiles};

/// TLS command-line options (shared by the node and the ctl).
#[derive(Clone, Debug, Default, Args)]
pub struct TlsOptions {
    /// CA bundle (PEM) that signs every member's and client's certificate.
    #[arg(long, env = "WHEREABOUTS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// This process's certificate (PEM).
    #[arg(long, env = "WHEREABOUTS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// This process's private key (PEM).
    #[arg(long, env = "WHEREABOUTS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Use plain TCP, without TLS: no authentication, anyone who can reach the port can change
    /// state. For local experiments only.
    /// `WHEREABOUTS_INSECURE` takes `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
    #[arg(long, env = "WHEREABOUTS_INSECURE", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
}

impl TlsOptions {
    /// The files, when all three are given; an error when only some are, or none without
    /// `--insecure`.
    pub fn files(&self) -> Result<Option<TlsFiles>, String> {
        match (&self.tls_ca, &self.tls_cert, &self.tls_key, self.insecure) {
            (Some(ca), Some(cert), Some(key), false) => Ok(Some(TlsFiles { ca: ca.clone(), cert: cert.clone(), key: key.clone() })),
            (None, None, None, true) => Ok(None),
            (_, _, _, true) => Err("--insecure cannot be combined with --tls-ca/--tls-cert/--tls-key".into()),
            (None, None, None, false) => Err(
                "TLS is required: give --tls-ca, --tls-cert and --tls-key (see `whereabouts-ctl certs init`), or --insecure for plain TCP"
                    .into(),
            ),
            _ => Err("give all of --tls-ca, --tls-cert and --tls-key".into()),
        }
    }
}

/// How this process talks: plain TCP, or TLS with live material.
#[derive(Clone)]
pub enum Transport {
    /// Plain TCP (`--insecure`).
    Insecure,
    /// Mutual TLS.
    Tls(watch::Receiver<Arc<Loaded>>),
}

impl Transport {
    /// Loads (and watches) the material the options name.
    pub fn from_options(opts: &TlsOptions, reload_every: Duration) -> anyhow::Result<Transport> {
        match opts.files().map_err(anyhow::Error::msg)? {
            None => Ok(Transport::Insecure),
            Some(files) => Ok(Transport::Tls(files.watch(reload_every)?)),
        }
    }

    /// True for mutual TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Generation of the material (changes when certificates were reloaded; 0 for plain TCP).
    pub fn generation(&self) -> u64 {
        match self {
            Transport::Insecure => 0,
            Transport::Tls(rx) => rx.borrow().generation,
        }
    }

    /// An endpoint for `addr` (`host:port`) with the current material.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, String> {
        match self {
            Transport::Insecure => Endpoint::from_shared(format!("http://{addr}")).map_err(|e| e.to_string()),
            Transport::Tls(rx) => {
                let m = rx.borrow().clone();
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
                let tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&m.ca_pem))
                    .identity(TonicIdentity::from_pem(&m.cert_pem, &m.key_pem))
                    .domain_name(host.to_string());
                Endpoint::from_shared(format!("https://{addr}"))
                    .map_err(|e| e.to_string())?
                    .tls_config(tls)
                    .map_err(|e| e.to_string())
            }
        }
    }
}
