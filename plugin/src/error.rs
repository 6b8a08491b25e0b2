//! The plugin's error enum and the one function that maps it to a CNI error result
//! ([`to_cni_error`]): the boundary of STYLE.md rule 8 (Status → CNI code).

use crate::config::ConfigError;
use ipam::FieldError;
use ipnet::IpNet;

use crate::client::ClusterError;
use crate::cni::error::*;
use crate::cni::{CniError, CniVersion, Incompatible};
use crate::cni_args::CniArgsError;
use crate::invocation::{Command, EnvError};

/// Everything an invocation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A `CNI_*` variable is missing or invalid.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// `CNI_ARGS` is malformed.
    #[error(transparent)]
    CniArgs(#[from] CniArgsError),
    /// Reading stdin failed.
    #[error("reading the network configuration from stdin: {0}")]
    Stdin(String),
    /// Writing the result to stdout failed.
    #[error("writing the result to stdout: {0}")]
    Stdout(String),
    /// The configuration's versions are not supported.
    #[error("incompatible CNI versions: {0}")]
    Incompatible(#[from] Incompatible),
    /// The command needs a newer configuration version.
    #[error("config version {version} does not allow {}", command.as_str())]
    CommandNotAllowed {
        /// The command.
        command: Command,
        /// The configuration's version.
        version: CniVersion,
    },
    /// The configuration is not JSON or breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A field the plugin itself reads is missing or invalid.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The cluster refused the request or could not be reached within the budget.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The cluster refused the node name the plugin acts for (with TLS, a plugin certificate allows
    /// only its own node).
    #[error(
        "the cluster refused this plugin acting for node {node:?} (from {origin}): {message}; set ipam.node_name \
         (or NODE_NAME) to the node named by the plugin's certificate, or use that node's certificate"
    )]
    NodeRefused {
        /// The node name sent.
        node: String,
        /// Where it came from.
        origin: String,
        /// What the cluster said (it names the certificate's node).
        message: String,
    },
    /// The ADD's earlier DEL is still waiting to be delivered and could not be taken back.
    #[error("a pending DEL of this attachment could not be taken back: {0}")]
    PendingStore(String),
    /// The result cannot be written in the configuration's version.
    #[error(transparent)]
    Convert(#[from] crate::cni::v02::NoAddress),
    /// CHECK: the cluster does not hold exactly the addresses of `prevResult`.
    #[error("the cluster does not hold the addresses of prevResult: missing {missing:?}, unexpected {unexpected:?}")]
    CheckMismatch {
        /// In `prevResult`, not held by this attachment.
        missing: Vec<IpNet>,
        /// Held by this attachment, not in `prevResult`.
        unexpected: Vec<IpNet>,
    },
    /// STATUS: the cluster answered but has no leader.
    #[error("the cluster has no leader: {0}")]
    NoLeader(String),
    /// STATUS: a configured range has no free address.
    #[error("pool exhausted: {0}")]
    PoolExhausted(String),
    /// The cluster sent something the plugin cannot read.
    #[error("unexpected reply from the cluster: {0}")]
    BadReply(String),
    /// A failure of the plugin itself (e.g. the async runtime cannot start).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Maps `err` from `command` (if known) to the CNI error printed for `version`.
pub fn to_cni_error(err: &PluginError, command: Option<Command>, version: CniVersion) -> CniError {
    let status = command == Some(Command::Status);
    let (code, msg, details) = match err {
        PluginError::Env(_) | PluginError::CniArgs(_) => (INVALID_ENVIRONMENT, err.to_string(), String::new()),
        PluginError::Stdin(_) | PluginError::Stdout(_) => (IO_FAILURE, err.to_string(), String::new()),
        PluginError::Incompatible(e) => (INCOMPATIBLE_VERSION, "incompatible CNI versions".into(), e.to_string()),
        PluginError::CommandNotAllowed { .. } => (INCOMPATIBLE_VERSION, err.to_string(), String::new()),
        PluginError::Config(ConfigError::Json(e)) => {
            (DECODING_FAILURE, "invalid JSON in the network configuration".into(), e.clone())
        }
        PluginError::Config(_) | PluginError::Field(_) => (INVALID_CONFIG, err.to_string(), String::new()),
        PluginError::NoLeader(_) | PluginError::PoolExhausted(_) => (NOT_AVAILABLE, err.to_string(), String::new()),
        PluginError::Cluster(e) if status => (NOT_AVAILABLE, "the IPAM cluster cannot serve ADD".into(), e.to_string()),
        PluginError::Cluster(e) => cluster_code(e),
        PluginError::CheckMismatch { .. } => (CHECK_MISMATCH, err.to_string(), String::new()),
        PluginError::NodeRefused { .. } => (PERMISSION_DENIED, err.to_string(), String::new()),
        PluginError::PendingStore(_) => (TRY_AGAIN_LATER, err.to_string(), String::new()),
        PluginError::Convert(_) => (INVALID_CONFIG, err.to_string(), String::new()),
        PluginError::BadReply(_) | PluginError::Internal(_) => (INTERNAL, err.to_string(), String::new()),
    };
    CniError { cni_version: version.as_str().to_string(), code, msg, details }
}

fn cluster_code(e: &ClusterError) -> (u32, String, String) {
    match e {
        ClusterError::Transient { .. } | ClusterError::BudgetSpent { .. } => {
            (TRY_AGAIN_LATER, "the IPAM cluster is unavailable, try again later".into(), e.to_string())
        }
        ClusterError::Exhausted(m) => (POOL_EXHAUSTED, format!("pool exhausted: {m}"), String::new()),
        ClusterError::AddressTaken(m) => (ADDRESS_TAKEN, format!("address taken: {m}"), String::new()),
        ClusterError::OwnerConflict(m) => (OWNER_CONFLICT, format!("owner conflict: {m}"), String::new()),
        ClusterError::Invalid(m) => (INVALID_CONFIG, format!("the cluster refused the request: {m}"), String::new()),
        ClusterError::PermissionDenied(m) => {
            (PERMISSION_DENIED, format!("the cluster refused the call: {m}"), String::new())
        }
        ClusterError::Internal { .. } => (INTERNAL, "internal error in the IPAM cluster".into(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Transient;
    use ipam::FieldProblem;

    fn code(err: PluginError, command: Command) -> u32 {
        to_cni_error(&err, Some(command), CniVersion::V1_0_0).code
    }

    fn transient() -> ClusterError {
        ClusterError::Transient {
            endpoint: "n".into(),
            kind: Transient::NoLeader,
            message: "m".into(),
            leader_hint: None,
        }
    }

    #[test]
    fn every_variant_has_its_code() {
        let add = Command::Add;
        assert_eq!(code(EnvError::NoCommand.into(), add), 4);
        assert_eq!(code(CniArgsError::NotAPair("x".into()).into(), add), 4);
        assert_eq!(code(PluginError::Stdin("x".into()), add), 5);
        let inc = Incompatible { asked: vec!["0.2.0".into()], supported: vec![] };
        assert_eq!(code(inc.into(), add), 1);
        assert_eq!(
            code(PluginError::CommandNotAllowed { command: Command::Check, version: CniVersion::V0_3_1 }, add),
            1
        );
        assert_eq!(code(ConfigError::Json("eof".into()).into(), add), 6);
        let field = FieldError::new("ipam.range", "x", FieldProblem::InvalidCidr);
        let e = to_cni_error(&ConfigError::Field(field.clone()).into(), Some(add), CniVersion::V0_4_0);
        assert_eq!((e.code, e.cni_version.as_str()), (7, "0.4.0"));
        assert!(e.msg.contains("ipam.range"), "{}", e.msg);
        assert_eq!(code(field.into(), add), 7);
        assert_eq!(code(transient().into(), add), 11);
        let spent =
            ClusterError::BudgetSpent { budget_ms: 1, attempts: 2, last: Box::new(transient()), answered: None };
        assert_eq!(code(spent.clone().into(), Command::Del), 11);
        assert_eq!(code(spent.into(), Command::Status), 50);
        assert_eq!(code(ClusterError::Exhausted("r".into()).into(), add), 100);
        assert_eq!(code(ClusterError::AddressTaken("r".into()).into(), add), 101);
        assert_eq!(code(ClusterError::OwnerConflict("r".into()).into(), add), 102);
        assert_eq!(code(ClusterError::Invalid("r".into()).into(), add), 7);
        let internal = ClusterError::Internal { code: tonic::Code::Internal, message: "m".into() };
        assert_eq!(code(internal.into(), add), 999);
        assert_eq!(code(PluginError::CheckMismatch { missing: vec![], unexpected: vec![] }, Command::Check), 103);
        assert_eq!(code(PluginError::NoLeader("x".into()), Command::Status), 50);
        assert_eq!(code(PluginError::PoolExhausted("x".into()), Command::Status), 50);
        assert_eq!(code(PluginError::BadReply("x".into()), add), 999);
        assert_eq!(code(ClusterError::PermissionDenied("m".into()).into(), add), 104);
        let refused = PluginError::NodeRefused {
            node: "host-1".into(),
            origin: "the host name".into(),
            message: "permission denied: allocate: node kubelet-1 may not act on node \"host-1\"'s attachments".into(),
        };
        let e = to_cni_error(&refused, Some(add), CniVersion::V1_0_0);
        assert_eq!(e.code, 104);
        assert!(e.msg.contains("\"host-1\"") && e.msg.contains("kubelet-1"), "both names: {}", e.msg);
        assert_eq!(code(PluginError::PendingStore("x".into()), add), 11);
        assert_eq!(code(crate::cni::v02::NoAddress(CniVersion::V0_2_0).into(), add), 7);
        assert_eq!(code(PluginError::Internal("x".into()), add), 999);
    }
}
