//! Which node the plugin acts for. The cluster records it with every lease (GC and the reconciler
//! sweep per node) and, with TLS, allows a plugin only its certificate's node. kubelet's node name
//! is not always the host name (`--hostname-override`, cloud providers), so it is taken, first
//! found: the `node_name` key; the certificate's Common Name (with TLS the cluster accepts no
//! other name, so any other source could only be refused); `NODE_NAME`; `KUBERNETES_NODE_NAME`;
//! the host name.

use std::fmt;
use std::path::Path;

use x509_parser::pem::parse_x509_pem;

use crate::config::ClusterKeys;
use crate::env::Env;

/// The organization of a plugin certificate (see docs/security.md).
pub const NODE_ROLE: &str = "whereabouts:node";

/// Where the node name came from (named in errors, so a refusal says what to change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `ipam.node_name`.
    Config,
    /// The Common Name of `tls_cert`.
    Certificate,
    /// An environment variable.
    Env(&'static str),
    /// The host name.
    Hostname,
    /// Nothing was found ("" is sent, the cluster records no node).
    Unknown,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Config => f.write_str("ipam.node_name"),
            Source::Certificate => f.write_str("the Common Name of tls_cert"),
            Source::Env(var) => f.write_str(var),
            Source::Hostname => f.write_str("the host name"),
            Source::Unknown => f.write_str("no source"),
        }
    }
}

/// The node name and its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName {
    /// The name ("" when unknown).
    pub name: String,
    /// Where it came from.
    pub source: Source,
}

impl NodeName {
    /// Resolves the node name for an invocation (see the module doc).
    pub fn resolve(keys: &ClusterKeys, env: &Env) -> NodeName {
        let found = |name: String, source| NodeName { name, source };
        if let Some(name) = &keys.node_name {
            return found(name.clone(), Source::Config);
        }
        if let Some(name) = keys.tls.as_ref().and_then(|t| certificate_node(&env.read_file(Path::new(&t.cert))?)) {
            return found(name, Source::Certificate);
        }
        for var in ["NODE_NAME", "KUBERNETES_NODE_NAME"] {
            if let Some(name) = env.var(var) {
                return found(name.to_string(), Source::Env(var));
            }
        }
        match &env.hostname {
            Some(h) => found(h.clone(), Source::Hostname),
            None => found(String::new(), Source::Unknown),
        }
    }
}

/// The Common Name of the first certificate in `pem` when it is a plugin certificate
/// (`O=whereabouts:node`).
pub fn certificate_node(pem: &[u8]) -> Option<String> {
    let (_, pem) = parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let subject = cert.subject();
    subject.iter_organization().filter_map(|o| o.as_str().ok()).find(|o| *o == NODE_ROLE)?;
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsPaths;
    use crate::testing::env_with_files;

    /// A self-signed plugin certificate for node `name`, in PEM.
    fn node_certificate(name: &str) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, NODE_ROLE);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn keys(node_name: Option<&str>, cert: Option<&str>) -> ClusterKeys {
        ClusterKeys {
            node_name: node_name.map(str::to_string),
            tls: cert.map(|c| TlsPaths { ca: "/ca.pem".into(), cert: c.into(), key: "/key.pem".into() }),
            ..ClusterKeys::default()
        }
    }

    #[test]
    fn config_then_certificate_then_environment_then_host_name() {
        let pem = node_certificate("kubelet-name");
        let files = [("/cert.pem", pem.as_str())];
        let env = env_with_files(&[("NODE_NAME", "env-name"), ("KUBERNETES_NODE_NAME", "k")], &files, Some("host"));
        let resolve = |k: &ClusterKeys| NodeName::resolve(k, &env);
        assert_eq!(
            resolve(&keys(Some("cfg"), Some("/cert.pem"))),
            NodeName { name: "cfg".into(), source: Source::Config }
        );
        assert_eq!(resolve(&keys(None, Some("/cert.pem"))).name, "kubelet-name");
        assert_eq!(
            resolve(&keys(None, Some("/missing.pem"))),
            NodeName { name: "env-name".into(), source: Source::Env("NODE_NAME") }
        );
        assert_eq!(resolve(&keys(None, None)).source, Source::Env("NODE_NAME"));
        let bare = env_with_files(&[], &[], Some("host"));
        assert_eq!(
            NodeName::resolve(&keys(None, None), &bare),
            NodeName { name: "host".into(), source: Source::Hostname }
        );
        let nothing = env_with_files(&[], &[], None);
        assert_eq!(NodeName::resolve(&keys(None, None), &nothing).source, Source::Unknown);
    }

    #[test]
    fn only_plugin_certificates_name_a_node() {
        assert_eq!(certificate_node(node_certificate("worker-7").as_bytes()).as_deref(), Some("worker-7"));
        assert_eq!(certificate_node(b"not a certificate"), None);
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "whereabouts:peer");
        params.distinguished_name.push(rcgen::DnType::CommonName, "n0");
        let peer = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem();
        assert_eq!(certificate_node(peer.as_bytes()), None, "a member's certificate names no plugin node");
    }
}
