//! What a call to the cluster can end in, classified once from the gRPC status and the
//! `x-whereabouts-error` reason (see `ipam.proto`): retryable conditions (another endpoint or a
//! later attempt may succeed) versus final answers.

use tonic::{Code, Status};

/// Why a node could not serve the call now. All are retried within the time budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transient {
    /// The endpoint could not be connected to.
    Unreachable,
    /// No leader is known (election, no quorum).
    NoLeader,
    /// The write or read did not complete within the deadline (on the node or on our side).
    Timeout,
    /// The node could not reach the leader.
    ForwardFailed,
    /// UNAVAILABLE with no known reason.
    Unavailable,
}

/// A failed call, as the plugin maps it to CNI error codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// Retryable; after the budget is spent it stays the last error seen.
    #[error("{endpoint}: {kind:?}: {message}")]
    Transient {
        /// The endpoint that failed.
        endpoint: String,
        /// What happened.
        kind: Transient,
        /// The node's message or the transport error.
        message: String,
        /// The leader's address, when the node knew it.
        leader_hint: Option<String>,
    },
    /// RESOURCE_EXHAUSTED: no free address in a range.
    #[error("pool exhausted: {0}")]
    Exhausted(String),
    /// ALREADY_EXISTS: a requested static address is held by someone else.
    #[error("address taken: {0}")]
    AddressTaken(String),
    /// FAILED_PRECONDITION (`owner_conflict`/`owner_mismatch`).
    #[error("owner conflict: {0}")]
    OwnerConflict(String),
    /// INVALID_ARGUMENT: the node refused a field of the request.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// PERMISSION_DENIED: the plugin's certificate does not allow the call (another node's
    /// attachments, or no plugin role).
    #[error("{0}")]
    PermissionDenied(String),
    /// INTERNAL or any other status: a bug or storage failure.
    #[error("cluster error ({code:?}): {message}")]
    Internal {
        /// The gRPC code.
        code: Code,
        /// The message.
        message: String,
    },
    /// Every attempt failed transiently until the time budget was spent.
    #[error(
        "no node answered within the {budget_ms} ms budget after {attempts} attempt(s); last: {last}{}",
        answered_suffix(.answered)
    )]
    BudgetSpent {
        /// The budget, ms.
        budget_ms: u64,
        /// How many calls were tried.
        attempts: u32,
        /// The last transient error.
        last: Box<ClusterError>,
        /// The last error a node itself answered with (NO_LEADER, a node-side timeout), when the
        /// last error is a local one (connect failure, our own deadline): on a loaded machine the
        /// budget often ends during an attempt, and the node's answer is what explains the failure.
        answered: Option<Box<ClusterError>>,
    },
}

/// ` (last answer from a node: …)` when a node answered earlier than the last failure.
fn answered_suffix(answered: &Option<Box<ClusterError>>) -> String {
    answered.as_ref().map(|a| format!(" (last answer from a node: {a})")).unwrap_or_default()
}

impl ClusterError {
    /// True when another endpoint or a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClusterError::Transient { .. })
    }

    /// Maps a gRPC status from `endpoint`: the reason trailer wins, then the code.
    pub fn from_status(endpoint: &str, status: &Status) -> ClusterError {
        let meta = |key: &str| status.metadata().get(key).and_then(|v| v.to_str().ok()).map(str::to_string);
        let reason = meta(proto::ERROR_REASON_KEY).unwrap_or_default();
        let leader_hint = meta(proto::LEADER_KEY).filter(|l| !l.is_empty());
        let message = status.message().to_string();
        let transient = |kind| ClusterError::Transient {
            endpoint: endpoint.to_string(),
            kind,
            message: message.clone(),
            leader_hint: leader_hint.clone(),
        };
        match (reason.as_str(), status.code()) {
            ("no_leader", _) => transient(Transient::NoLeader),
            ("timeout", _) | (_, Code::DeadlineExceeded) => transient(Transient::Timeout),
            ("forward_failed", _) => transient(Transient::ForwardFailed),
            // A final-looking code no node said (nodes always set a reason): the HTTP/2 layer
            // made it from a stream reset — ENHANCE_YOUR_CALM becomes RESOURCE_EXHAUSTED,
            // INADEQUATE_SECURITY PERMISSION_DENIED. The call may or may not have been applied;
            // retrying with the same request id is what settles it.
            (
                "",
                Code::ResourceExhausted
                | Code::AlreadyExists
                | Code::FailedPrecondition
                | Code::InvalidArgument
                | Code::PermissionDenied,
            ) => transient(Transient::Unavailable),
            ("exhausted", _) | (_, Code::ResourceExhausted) => ClusterError::Exhausted(message),
            ("address_taken", _) | (_, Code::AlreadyExists) => ClusterError::AddressTaken(message),
            ("owner_mismatch" | "owner_conflict", _) | (_, Code::FailedPrecondition) => {
                ClusterError::OwnerConflict(message)
            }
            ("invalid", _) | (_, Code::InvalidArgument) => ClusterError::Invalid(message),
            ("permission_denied", _) | (_, Code::PermissionDenied) => ClusterError::PermissionDenied(message),
            ("internal", _) => ClusterError::Internal { code: status.code(), message },
            (_, Code::Unavailable) => transient(if status.message().contains("transport error") {
                Transient::Unreachable
            } else {
                Transient::Unavailable
            }),
            // A connection torn down mid-call (a node killed) surfaces from the transport as
            // Unknown, Cancelled or Internal without our reason trailer — nodes always set one.
            // Retrying is safe since writes carry a request id.
            ("", Code::Cancelled | Code::Unknown | Code::Internal) => transient(Transient::Unavailable),
            (other, code) => {
                let message = if other.is_empty() { message } else { format!("{other}: {message}") };
                ClusterError::Internal { code, message }
            }
        }
    }

    /// The leader address a node suggested, if any.
    pub fn leader_hint(&self) -> Option<&str> {
        match self {
            ClusterError::Transient { leader_hint, .. } => leader_hint.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataMap;

    fn status(code: Code, reason: &str, leader: &str) -> Status {
        let mut meta = MetadataMap::new();
        if !reason.is_empty() {
            meta.insert(proto::ERROR_REASON_KEY, reason.parse().unwrap());
        }
        if !leader.is_empty() {
            meta.insert(proto::LEADER_KEY, leader.parse().unwrap());
        }
        Status::with_metadata(code, "msg", meta)
    }

    #[test]
    fn reasons_map_to_variants() {
        let e = ClusterError::from_status("n1", &status(Code::Unavailable, "no_leader", "10.0.0.1:7000"));
        assert!(matches!(e, ClusterError::Transient { kind: Transient::NoLeader, .. }));
        assert_eq!(e.leader_hint(), Some("10.0.0.1:7000"));
        let kind = |code, reason| match ClusterError::from_status("n", &status(code, reason, "")) {
            ClusterError::Transient { kind, .. } => Some(kind),
            _ => None,
        };
        assert_eq!(kind(Code::Unavailable, "timeout"), Some(Transient::Timeout));
        assert_eq!(kind(Code::Unavailable, "forward_failed"), Some(Transient::ForwardFailed));
        assert_eq!(kind(Code::Unavailable, ""), Some(Transient::Unavailable));
        assert_eq!(kind(Code::DeadlineExceeded, ""), Some(Transient::Timeout));
        let e = |code, reason| ClusterError::from_status("n", &status(code, reason, ""));
        assert_eq!(e(Code::ResourceExhausted, "exhausted"), ClusterError::Exhausted("msg".into()));
        assert_eq!(e(Code::AlreadyExists, "address_taken"), ClusterError::AddressTaken("msg".into()));
        assert_eq!(e(Code::FailedPrecondition, "owner_mismatch"), ClusterError::OwnerConflict("msg".into()));
        assert_eq!(e(Code::FailedPrecondition, "owner_conflict"), ClusterError::OwnerConflict("msg".into()));
        assert_eq!(e(Code::InvalidArgument, "invalid"), ClusterError::Invalid("msg".into()));
        assert_eq!(e(Code::PermissionDenied, "permission_denied"), ClusterError::PermissionDenied("msg".into()));
        assert!(matches!(e(Code::Internal, "internal"), ClusterError::Internal { .. }));
        assert!(matches!(e(Code::Unimplemented, ""), ClusterError::Internal { code: Code::Unimplemented, .. }));
        assert!(e(Code::Internal, "").is_transient(), "no reason trailer: from the transport, not a node");
        assert!(!e(Code::Internal, "internal").is_transient());
    }

    /// Regression: a RESOURCE_EXHAUSTED the HTTP/2 layer made from ENHANCE_YOUR_CALM (a node
    /// tearing down a connection full of reset streams after a pause) was reported as "pool
    /// exhausted" and never retried, although the call may have been applied. Seen failing before
    /// the fix (it was `Exhausted`).
    #[test]
    fn final_looking_codes_without_a_node_reason_are_retried() {
        let e = |code| ClusterError::from_status("n", &status(code, "", ""));
        for code in [
            Code::ResourceExhausted,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::PermissionDenied,
        ] {
            assert!(
                matches!(e(code), ClusterError::Transient { kind: Transient::Unavailable, .. }),
                "{code:?}: {:?}",
                e(code)
            );
        }
    }
}
