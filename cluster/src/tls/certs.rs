//! `whereabouts-ctl certs init`: a CA and the certificates a dev or test cluster needs — one per
//! member (`whereabouts:peer`, with its addresses as SANs), one per Kubernetes node's plugin
//! (`whereabouts:node`) and one per operator (`whereabouts:admin`). Production clusters use
//! cert-manager with the same subjects (see docs/security.md).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use super::identity::{ROLE_ADMIN, ROLE_NODE, ROLE_PEER};

/// What to issue.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Members: name and the host names / IPs clients and peers use to reach it.
    pub peers: Vec<(String, Vec<String>)>,
    /// Kubernetes node names (one plugin certificate each).
    pub nodes: Vec<String>,
    /// Operator names.
    pub admins: Vec<String>,
    /// Validity in days.
    pub days: u32,
}

fn dn(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn write(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e} (certs init never overwrites files)", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn ca_params(now: std::time::SystemTime, until: std::time::SystemTime) -> CertificateParams {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = dn("whereabouts-rs CA", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params.not_before = now.into();
    ca_params.not_after = until.into();
    ca_params
}

/// A leaf certificate for `name` with role `role`, signed by the CA: (certificate PEM, key PEM).
fn leaf(
    name: &str,
    role: &str,
    sans: Vec<String>,
    days: u32,
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
) -> anyhow::Result<(String, String)> {
    let now = time_now();
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = dn(name, Some(role));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(u64::from(days.max(1)) * 86_400)).into();
    let cert = params.signed_by(&key, ca, ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Issues the CA and every certificate of `plan` into `dir` (created if missing; existing files
/// are never overwritten). Returns the files written.
pub fn init(dir: &Path, plan: &Plan) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let now = time_now();
    let until = now + std::time::Duration::from_secs(u64::from(plan.days.max(1)) * 86_400);
    let ca_key = KeyPair::generate()?;
    let ca = ca_params(now, until).self_signed(&ca_key)?;
    let mut written = Vec::new();
    let mut emit = |name: &str, text: String, private: bool| -> anyhow::Result<()> {
        let path = dir.join(name);
        write(&path, &text, private)?;
        written.push(path);
        Ok(())
    };
    emit("ca.pem", ca.pem(), false)?;
    emit("ca-key.pem", ca_key.serialize_pem(), true)?;
    let leaves = plan
        .peers
        .iter()
        .map(|(n, sans)| (format!("peer-{n}"), n.as_str(), ROLE_PEER, sans.clone()))
        .chain(plan.nodes.iter().map(|n| (format!("node-{n}"), n.as_str(), ROLE_NODE, vec![])))
        .chain(plan.admins.iter().map(|n| (format!("admin-{n}"), n.as_str(), ROLE_ADMIN, vec![])));
    for (file, name, role, sans) in leaves {
        let (cert, key) = leaf(name, role, sans, plan.days, &ca, &ca_key)?;
        emit(&format!("{file}.pem"), cert, false)?;
        emit(&format!("{file}-key.pem"), key, true)?;
    }
    Ok(written)
}

/// Issues a new certificate for `name`/`role` from a CA made by [`init`] (its key in PEM): what a
/// rotation does. Returns (certificate PEM, key PEM).
pub fn reissue(ca_key_pem: &str, name: &str, role: &str, sans: &[&str], days: u32) -> anyhow::Result<(String, String)> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    // Same subject and key as the CA certificate init wrote: leaves it signs chain to it.
    let now = time_now();
    let ca = ca_params(now, now + std::time::Duration::from_secs(86_400)).self_signed(&ca_key)?;
    leaf(name, role, sans.iter().map(|s| s.to_string()).collect(), days, &ca, &ca_key)
}

fn time_now() -> std::time::SystemTime {
    // A minute in the past tolerates small clock differences between machines.
    std::time::SystemTime::now() - std::time::Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{Identity, TlsFiles};
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn issued_certificates_load_and_carry_their_roles() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan {
            peers: vec![("n0".into(), vec!["127.0.0.1".into(), "node-0.example".into()])],
            nodes: vec!["worker-1".into()],
            admins: vec!["alice".into()],
            days: 1,
        };
        let files = init(dir.path(), &plan).unwrap();
        assert_eq!(files.len(), 8);
        let roles = [
            ("peer-n0", Identity::Peer("n0".into())),
            ("node-worker-1", Identity::Node("worker-1".into())),
            ("admin-alice", Identity::Admin("alice".into())),
        ];
        for (file, identity) in roles {
            let pem = std::fs::read(dir.path().join(format!("{file}.pem"))).unwrap();
            let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
            assert_eq!(Identity::from_certificate(&der), Some(identity));
            let tls = TlsFiles {
                ca: dir.path().join("ca.pem"),
                cert: dir.path().join(format!("{file}.pem")),
                key: dir.path().join(format!("{file}-key.pem")),
            };
            tls.load(0).unwrap();
        }
        assert!(init(dir.path(), &plan).is_err(), "never overwrites");
    }
}
