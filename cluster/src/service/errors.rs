//! Every way an IPAM call fails, mapped to a gRPC status in one place: the code, a message that
//! says what to do, the stable reason in `x-whereabouts-error`, and the leader hint in
//! `x-whereabouts-leader`.

use ipam::{FieldError, IpamError};
use proto::{ERROR_REASON_KEY, LEADER_KEY};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// Why a call could not be served (beyond the domain's own errors).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The domain refused the request.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A field of the request is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No leader is known (election in progress, or no quorum).
    #[error("no leader is known (election in progress or quorum lost); retry later")]
    NoLeader,
    /// This node is not the leader and the request was already forwarded once.
    #[error("this node is not the leader; retry against {}", .leader.as_deref().unwrap_or("the leader"))]
    NotLeader {
        /// The leader's address, when known.
        leader: Option<String>,
    },
    /// The write or read did not complete in time (no quorum, overload). For a write the outcome
    /// is unknown: it may still be applied, so a retry must carry the same request id.
    #[error("{0} did not complete within the deadline (is a quorum of nodes up?); retry with the same request id")]
    Timeout(&'static str),
    /// This node leads but could not confirm it with a quorum (a linearizable read), or no quorum
    /// acknowledged it within the leader lease (see [`crate::leader_lease`]).
    #[error("this node could not reach a quorum of the cluster; retry later")]
    NoQuorum,
    /// The call was forwarded to the leader and no answer came before the deadline.
    #[error("the leader at {addr} did not answer within the deadline ({reason}); retry with the same request id")]
    ForwardTimeout {
        /// The leader's address.
        addr: String,
        /// What the transport said.
        reason: String,
    },
    /// Forwarding to the leader failed.
    #[error("could not reach the leader at {addr}: {reason}")]
    ForwardFailed {
        /// The leader's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Raft stopped on this node (storage failure such as a full disk, or shutting down).
    #[error("this node cannot serve: {0}; retry on another node")]
    Stopped(String),
    /// A membership change was refused by Raft.
    #[error("membership change refused: {0}")]
    Membership(String),
    /// The cluster is not in a state that allows the change (e.g. a member cannot read the
    /// cluster version asked for).
    #[error("{0}")]
    Precondition(String),
    /// A storage or internal failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServeError {
    fn parts(&self) -> (Code, &'static str) {
        match self {
            ServeError::Ipam(IpamError::Exhausted { .. }) => (Code::ResourceExhausted, "exhausted"),
            ServeError::Ipam(IpamError::AddressTaken { .. }) => (Code::AlreadyExists, "address_taken"),
            ServeError::Ipam(IpamError::OwnerMismatch { .. }) => (Code::FailedPrecondition, "owner_mismatch"),
            ServeError::Ipam(IpamError::OwnerConflict { .. }) => (Code::FailedPrecondition, "owner_conflict"),
            ServeError::Ipam(IpamError::Invalid(_)) | ServeError::Invalid(_) => (Code::InvalidArgument, "invalid"),
            ServeError::NoLeader => (Code::Unavailable, "no_leader"),
            ServeError::NotLeader { .. } => (Code::Unavailable, "no_leader"),
            ServeError::Timeout(_) => (Code::DeadlineExceeded, "timeout"),
            ServeError::NoQuorum => (Code::Unavailable, "no_quorum"),
            ServeError::ForwardTimeout { .. } => (Code::DeadlineExceeded, "forward_timeout"),
            ServeError::ForwardFailed { .. } => (Code::Unavailable, "forward_failed"),
            ServeError::Stopped(_) => (Code::Unavailable, "node_failed"),
            ServeError::PermissionDenied(_) => (Code::PermissionDenied, "permission_denied"),
            ServeError::Membership(_) => (Code::FailedPrecondition, "membership"),
            ServeError::Precondition(_) => (Code::FailedPrecondition, "precondition"),
            ServeError::Internal(_) => (Code::Internal, "internal"),
        }
    }

    /// The stable reason sent in `x-whereabouts-error`.
    pub fn reason(&self) -> &'static str {
        self.parts().1
    }

    /// The gRPC status, with the leader's address when known.
    pub fn into_status(self, leader: Option<&str>) -> Status {
        let (code, reason) = self.parts();
        let mut meta = MetadataMap::new();
        meta.insert(ERROR_REASON_KEY, MetadataValue::from_static(reason));
        let leader = match &self {
            ServeError::NotLeader { leader: Some(l) } => Some(l.as_str()),
            // This node leads: a hint to itself would send the client straight back.
            ServeError::NoQuorum => None,
            _ => leader,
        };
        if let Some(value) = leader.and_then(|l| MetadataValue::try_from(l).ok()) {
            meta.insert(LEADER_KEY, value);
        }
        Status::with_metadata(code, self.to_string(), meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipam::FieldProblem;

    #[test]
    fn statuses_carry_code_reason_and_leader() {
        let s = ServeError::Ipam(IpamError::Exhausted { network: "n".into(), range: "10.0.0.0/30".into() })
            .into_status(Some("127.0.0.1:7001"));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.metadata().get(ERROR_REASON_KEY).unwrap(), "exhausted");
        assert_eq!(s.metadata().get(LEADER_KEY).unwrap(), "127.0.0.1:7001");
        let s =
            ServeError::Invalid(FieldError::new("ranges[0].range", "x", FieldProblem::InvalidCidr)).into_status(None);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().starts_with("ranges[0].range: not a valid CIDR"), "{}", s.message());
        let s = ServeError::NotLeader { leader: Some("10.0.0.1:7000".into()) }.into_status(None);
        assert_eq!(s.metadata().get(LEADER_KEY).unwrap(), "10.0.0.1:7000");
        let s = ServeError::Timeout("the write").into_status(Some("127.0.0.1:7001"));
        assert_eq!(s.code(), Code::DeadlineExceeded, "an unknown outcome is not 'unavailable'");
        assert!(s.message().contains("same request id"), "{}", s.message());
        let s = ServeError::NoQuorum.into_status(Some("127.0.0.1:7001"));
        assert_eq!(
            (s.code(), s.metadata().get(ERROR_REASON_KEY).unwrap().to_str().unwrap()),
            (Code::Unavailable, "no_quorum")
        );
        assert!(s.metadata().get(LEADER_KEY).is_none(), "no hint pointing back at the leader itself");
    }
}
