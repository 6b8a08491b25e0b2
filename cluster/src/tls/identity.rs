//! Who is calling, from the client certificate. Roles follow the Kubernetes convention of
//! certificate subjects: the Organization names the role, the Common Name the principal.
//!
//! | O (organization)      | CN          | may                                                         |
//! |-----------------------|-------------|-------------------------------------------------------------|
//! | `whereabouts:peer`    | node name   | Raft between nodes; forward clients' calls on their behalf  |
//! | `whereabouts:admin`   | operator    | everything: membership, release by address, backups, import |
//! | `whereabouts:node`    | k8s node    | allocate/release/check/GC only attachments of its own node  |

use x509_parser::prelude::{FromDer, X509Certificate};

/// Organization of cluster members' certificates.
pub const ROLE_PEER: &str = "whereabouts:peer";
/// Organization of operators' certificates.
pub const ROLE_ADMIN: &str = "whereabouts:admin";
/// Organization of the CNI plugin's certificate on each Kubernetes node.
pub const ROLE_NODE: &str = "whereabouts:node";

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    /// Another member of the cluster.
    Peer(String),
    /// An operator.
    Admin(String),
    /// The plugin of one Kubernetes node.
    Node(String),
}

impl Identity {
    /// Reads the role and name from a DER certificate; `None` when it carries no known role.
    pub fn from_certificate(der: &[u8]) -> Option<Identity> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject = cert.subject();
        let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        let role =
            subject.iter_organization().filter_map(|o| o.as_str().ok()).find(|o| o.starts_with("whereabouts:"))?;
        match role {
            ROLE_PEER => Some(Identity::Peer(name)),
            ROLE_ADMIN => Some(Identity::Admin(name)),
            ROLE_NODE if !name.is_empty() => Some(Identity::Node(name)),
            _ => None,
        }
    }

    /// `role:name`, as carried in the on-behalf-of header of forwarded calls.
    pub fn to_header(&self) -> String {
        match self {
            Identity::Peer(n) => format!("peer:{n}"),
            Identity::Admin(n) => format!("admin:{n}"),
            Identity::Node(n) => format!("node:{n}"),
        }
    }

    /// Parses [`Identity::to_header`].
    pub fn from_header(s: &str) -> Option<Identity> {
        let (role, name) = s.split_once(':')?;
        match role {
            "peer" => Some(Identity::Peer(name.into())),
            "admin" => Some(Identity::Admin(name.into())),
            "node" if !name.is_empty() => Some(Identity::Node(name.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_reject_garbage() {
        for id in [Identity::Peer("n0".into()), Identity::Admin("alice".into()), Identity::Node("worker-1".into())] {
            assert_eq!(Identity::from_header(&id.to_header()), Some(id));
        }
        assert_eq!(Identity::from_header("node:"), None);
        assert_eq!(Identity::from_header("root:x"), None);
        assert_eq!(Identity::from_header("admin"), None);
    }
}
