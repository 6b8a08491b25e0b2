//! One IPAM call on this node: its deadline (the client's `grpc-timeout`, capped by the node's
//! request timeout), whether it was already forwarded once, where it must run (here, or on the
//! leader), and the two ways to run it — a write through the [`Proposer`](crate::proposer), or a
//! linearizable read. A follower forwards to the leader exactly once; a forwarded call that lands on
//! a non-leader (leadership just moved) answers UNAVAILABLE with the leader hint instead of looping.

use std::future::Future;
use std::time::{Duration, Instant};

use ipam::{Event, Outcome};
use proto::ipam::ipam_client::IpamClient;
use raft_store::Machine;
use tokio::time::timeout_at;
use tonic::transport::Channel;
use tonic::{Response, Status};

use super::context::Context;
use super::errors::ServeError;
use crate::leader_lease::Leadership;
use crate::proposer::WriteError;
use crate::tls::{Identity, PeerInfo};

#[cfg(all(feature = "planted-bug-stale-read", not(debug_assertions)))]
compile_error!("planted-bug-stale-read is a test-only planted bug: never build it in release");

/// Metadata marking a call forwarded by a follower.
pub const FORWARDED_KEY: &str = "x-whereabouts-forwarded";

/// Metadata naming the original caller of a call a member forwarded (trusted from members only).
pub const ON_BEHALF_OF_KEY: &str = "x-whereabouts-on-behalf-of";

/// Who is calling, as far as permissions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Plain TCP (`--insecure`): no authentication, everything allowed.
    Anonymous,
    /// An authenticated identity.
    Is(Identity),
}

/// A call being served.
pub struct Call<'a> {
    ctx: &'a Context,
    rpc: &'static str,
    forwarded: bool,
    deadline: Instant,
    started: Instant,
    caller: Result<Caller, String>,
}

/// The caller of `req`: from its client certificate, or, for a call a member forwarded, from the
/// on-behalf-of header that member set.
fn caller_of<T>(ctx: &Context, req: &tonic::Request<T>) -> Result<Caller, String> {
    if !ctx.transport.is_tls() {
        return Ok(Caller::Anonymous);
    }
    let info = req.extensions().get::<PeerInfo>().ok_or("no TLS connection information")?;
    let identity = info.identity.clone().ok_or(
        "the client certificate carries no whereabouts role (O=whereabouts:peer, whereabouts:admin or whereabouts:node)",
    )?;
    match (&identity, req.metadata().get(ON_BEHALF_OF_KEY)) {
        (Identity::Peer(_), Some(v)) => {
            let original = v.to_str().ok().and_then(Identity::from_header).ok_or("malformed on-behalf-of header")?;
            Ok(Caller::Is(original))
        }
        _ => Ok(Caller::Is(identity)),
    }
}

impl<'a> Call<'a> {
    /// Starts serving `rpc` for `req`.
    pub fn new<T>(ctx: &'a Context, rpc: &'static str, req: &tonic::Request<T>) -> Call<'a> {
        let started = Instant::now();
        let asked = req.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
        let budget = asked.map_or(ctx.request_timeout, |t| t.min(ctx.request_timeout));
        let forwarded = req.metadata().get(FORWARDED_KEY).is_some();
        let caller = caller_of(ctx, req);
        Call { ctx, rpc, forwarded, deadline: started + budget, started, caller }
    }

    /// Fails unless the caller is authenticated (or the node runs without TLS).
    fn caller(&self) -> Result<&Caller, Status> {
        self.caller.as_ref().map_err(|reason| self.deny(reason))
    }

    fn deny(&self, reason: &str) -> Status {
        tracing::warn!(rpc = self.rpc, reason, "permission denied");
        self.fail(ServeError::PermissionDenied(format!("{}: {reason}", self.rpc)))
    }

    /// Fails unless the caller is authenticated (any role; everyone without TLS).
    pub fn require_authenticated(&self) -> Result<(), Status> {
        self.caller().map(|_| ())
    }

    /// Fails unless the caller may do anything (operators and members; everyone without TLS).
    pub fn require_admin(&self) -> Result<(), Status> {
        match self.caller()? {
            Caller::Anonymous | Caller::Is(Identity::Admin(_)) | Caller::Is(Identity::Peer(_)) => Ok(()),
            Caller::Is(other) => Err(self.deny(&format!("{other} is not an administrator"))),
        }
    }

    /// The node a plugin identity is limited to (`None`: not limited). Fails for unauthenticated
    /// callers.
    pub fn node_scope(&self) -> Result<Option<String>, Status> {
        match self.caller()? {
            Caller::Is(Identity::Node(name)) => Ok(Some(name.clone())),
            _ => Ok(None),
        }
    }

    /// Refuses a node identity acting for another node.
    pub fn deny_other_node(&self, scope: &str, asked: &str) -> Status {
        self.deny(&format!("node {scope} may not act on node {asked:?}'s attachments"))
    }

    /// The leader to forward to, or `None` to serve here.
    pub fn route(&self) -> Result<Option<String>, Status> {
        // PLANTED BUG (test-only feature): `Check` is served here, even on a follower.
        #[cfg(feature = "planted-bug-stale-read")]
        if self.rpc == "check" {
            return Ok(None);
        }
        match self.ctx.leader() {
            Some((id, _)) if id == self.ctx.id => match self.ctx.leadership() {
                // Cut off from the quorum: another node may lead by now. Refused at once (nothing
                // was proposed), so the caller tries another member instead of waiting it out.
                Leadership::Isolated { silent_ms } if self.ctx.lease.refuses_calls(silent_ms) => {
                    tracing::debug!(silent_ms, "refusing a call: no quorum answered within the leader lease");
                    Err(self.fail(ServeError::NoQuorum))
                }
                Leadership::Isolated { .. } | Leadership::Leads | Leadership::NotLeader => Ok(None),
            },
            Some((_, addr)) if !self.forwarded => Ok(Some(addr)),
            Some((_, addr)) => Err(self.fail(ServeError::NotLeader { leader: Some(addr) })),
            None => Err(self.fail(ServeError::NoLeader)),
        }
    }

    /// Sends the call to the leader at `addr` and relays its answer.
    pub async fn forward<Req, Resp, F, Fut>(&self, addr: &str, msg: Req, send: F) -> Result<Response<Resp>, Status>
    where
        F: FnOnce(IpamClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let client = self
            .ctx
            .peers
            .client(addr)
            .map_err(|reason| self.fail(ServeError::ForwardFailed { addr: addr.into(), reason }))?;
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.deadline.saturating_duration_since(Instant::now()));
        req.metadata_mut().insert(FORWARDED_KEY, tonic::metadata::MetadataValue::from_static("1"));
        if let Ok(Caller::Is(identity)) = &self.caller {
            if let Ok(v) = tonic::metadata::MetadataValue::try_from(identity.to_header()) {
                req.metadata_mut().insert(ON_BEHALF_OF_KEY, v);
            }
        }
        let result = match send(client, req).await {
            // Said by the transport, not by the leader (which always sets a reason).
            Err(s) if proto::node_reason(&s).is_none() => {
                let reason = s.message().to_string();
                let out_of_time = matches!(s.code(), tonic::Code::DeadlineExceeded | tonic::Code::Cancelled)
                    || Instant::now() >= self.deadline;
                Err(self.fail(if out_of_time {
                    ServeError::ForwardTimeout { addr: addr.into(), reason }
                } else {
                    ServeError::ForwardFailed { addr: addr.into(), reason }
                }))
            }
            // Tell the caller where the leader is, so that its next call goes there directly
            // (one hop instead of two; the plugin remembers it between invocations).
            Ok(mut resp) => {
                if let Ok(v) = tonic::metadata::MetadataValue::try_from(addr) {
                    resp.metadata_mut().insert(proto::LEADER_KEY, v);
                }
                Ok(resp)
            }
            other => other,
        };
        self.ctx.metrics.observe(self.rpc, self.started, result.is_ok());
        result
    }

    /// Writes `event` through the proposer (until this call's deadline) and returns the domain's
    /// outcome. The request id is scoped to the caller first, so one caller's id never returns
    /// another caller's remembered reply.
    pub async fn write(&self, mut event: Event) -> Result<Outcome, Status> {
        let (needs, current) =
            (event.command.min_cluster_version(), self.ctx.with_machine(|m| m.state.cluster_version()));
        if current < needs {
            return Err(self.fail(ServeError::Precondition(format!(
                "{} needs cluster version {needs} and the cluster is at {current} (a member may still run an older \
                 release): upgrade every member, then `whereabouts-ctl cluster-version --set {needs}`",
                event.command.kind()
            ))));
        }
        event.request_id = self.scoped(event.request_id)?;
        let result = match self.ctx.proposer.write(event, self.deadline).await {
            Err(WriteError::Invalid(e)) => Err(ServeError::Invalid(e)),
            Err(WriteError::Timeout) => Err(ServeError::Timeout("the write")),
            Err(WriteError::NotLeader { leader }) => Err(ServeError::NotLeader { leader: leader.map(|(_, a)| a) }),
            Err(WriteError::Fatal(e)) => Err(ServeError::Stopped(e)),
            Ok(reply) => reply.map_err(ServeError::Ipam),
        };
        result.map_err(|e| self.fail(e))
    }

    /// `id` as remembered for this caller: `<16 hex digits of a hash of the identity>~<id>`; as
    /// given without TLS (every caller is the same anonymous one).
    fn scoped(&self, id: Option<String>) -> Result<Option<String>, Status> {
        let (Some(id), Ok(Caller::Is(identity))) = (id.as_ref(), &self.caller) else { return Ok(id) };
        let limit = ipam::event::MAX_REQUEST_ID - SCOPE_LEN;
        if id.len() > limit {
            let problem = ipam::FieldProblem::TooLarge { limit: limit as u64 };
            return Err(self.fail(ipam::FieldError::new("request_id", id, problem)));
        }
        Ok(Some(format!("{:016x}~{id}", fnv1a(identity.to_header().as_bytes()))))
    }

    /// Confirms leadership with a quorum (read index), waits until it is applied, then reads.
    pub async fn read<T>(&self, f: impl FnOnce(&Machine) -> T) -> Result<T, Status> {
        // PLANTED BUG (test-only feature): `Check` reads local state without a read index.
        #[cfg(feature = "planted-bug-stale-read")]
        if self.rpc == "check" {
            return Ok(self.ctx.with_machine(f));
        }
        match timeout_at(self.deadline.into(), self.ctx.raft.ensure_linearizable()).await {
            Err(_) => return Err(self.fail(ServeError::Timeout("the linearizable read"))),
            Ok(Err(openraft::error::RaftError::APIError(e))) => {
                let e = match e {
                    openraft::error::CheckIsLeaderError::ForwardToLeader(f) => {
                        ServeError::NotLeader { leader: f.leader_node.map(|n| n.addr) }
                    }
                    openraft::error::CheckIsLeaderError::QuorumNotEnough(_) => ServeError::NoQuorum,
                };
                return Err(self.fail(e));
            }
            Ok(Err(e)) => return Err(self.fail(ServeError::Internal(e.to_string()))),
            Ok(Ok(_)) => {}
        }
        Ok(self.ctx.with_machine(f))
    }

    /// A failure of this call as a status (counted in metrics).
    pub fn fail(&self, e: impl Into<ServeError>) -> Status {
        let e = e.into();
        tracing::debug!(rpc = self.rpc, reason = e.reason(), error = %e, "call failed");
        self.ctx.metrics.observe(self.rpc, self.started, false);
        let leader = self.ctx.leader().map(|(_, addr)| addr);
        e.into_status(leader.as_deref())
    }

    /// A success of this call (counted in metrics).
    pub fn ok<T>(&self, value: T) -> Result<Response<T>, Status> {
        self.ctx.metrics.observe(self.rpc, self.started, true);
        Ok(Response::new(value))
    }
}

/// Length of the caller scope put in front of request ids (`{:016x}~`).
const SCOPE_LEN: usize = 17;

/// FNV-1a, 64 bits: a stable hash (the same on every node and version) of a caller identity.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Parses gRPC's `grpc-timeout` header (`<digits><unit>`, unit one of H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_hash_is_stable() {
        // FNV-1a test vectors: the scope must never change between versions.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("5Q"), None);
    }
}
