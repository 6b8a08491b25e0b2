//! TLS material — CA, certificate, key as PEM files — loaded into rustls configurations, and kept
//! fresh: a watcher reloads the files when they change (cert-manager rotates certificates in
//! place), and new connections use the new configuration without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// Paths of the PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA bundle that signs every member's and client's certificate.
    pub ca: PathBuf,
    /// This process's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the material (key does not match, bad CA, ...).
    #[error("invalid TLS material: {0}")]
    Rustls(String),
}

/// The loaded material, in the forms servers and clients need.
pub struct Loaded {
    /// Server side: our certificate, client certificates required and verified against the CA.
    pub server: Arc<ServerConfig>,
    /// PEM texts for tonic's client configuration.
    pub ca_pem: Vec<u8>,
    /// Our certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Our key, PEM.
    pub key_pem: Vec<u8>,
    /// Increases at every reload (clients rebuild their connections when it changes).
    pub generation: u64,
}

fn file_err(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { path: path.display().to_string(), reason: reason.to_string() }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_err(path, e))
}

fn certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

impl TlsFiles {
    /// Loads and checks the files.
    pub fn load(&self, generation: u64) -> Result<Loaded, TlsError> {
        let (ca_pem, cert_pem, key_pem) = (read(&self.ca)?, read(&self.cert)?, read(&self.key)?);
        let mut roots = RootCertStore::empty();
        for ca in certs(&self.ca, &ca_pem)? {
            roots.add(ca).map_err(|e| file_err(&self.ca, e))?;
        }
        let chain = certs(&self.cert, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| file_err(&self.key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Loaded { server: Arc::new(server), ca_pem, cert_pem, key_pem, generation })
    }

    fn modified(&self) -> Option<[SystemTime; 3]> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some([m(&self.ca)?, m(&self.cert)?, m(&self.key)?])
    }

    /// Loads the files and watches them every `interval`: a change that loads cleanly replaces the
    /// material; one that does not is logged and the old material stays in use.
    pub fn watch(self, interval: Duration) -> Result<watch::Receiver<Arc<Loaded>>, TlsError> {
        let first = self.load(0)?;
        let (tx, rx) = watch::channel(Arc::new(first));
        tokio::spawn(async move {
            let mut seen = self.modified();
            let mut generation = 0;
            loop {
                tokio::time::sleep(interval).await;
                if tx.is_closed() {
                    return;
                }
                let now = self.modified();
                if now.is_none() || now == seen {
                    continue;
                }
                seen = now;
                generation += 1;
                match self.load(generation) {
                    Ok(loaded) => {
                        tracing::info!(generation, cert = %self.cert.display(), "reloaded TLS certificates");
                        let _ = tx.send(Arc::new(loaded));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS files changed but cannot be loaded; keeping the previous ones")
                    }
                }
            }
        });
        Ok(rx)
    }
}
