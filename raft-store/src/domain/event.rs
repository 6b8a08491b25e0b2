//! The events of the replicated log and their replies. An event is an *intent* (allocate for this
//! attachment, release this owner); the address chosen is the result of applying it, returned to
//! the client. Events are validated before they enter the log and again when applied, so a bad
//! event can only ever produce an error reply.
//!
//! These types are stored with a compact, non-self-describing encoding (postcard) in the log and
//! in snapshots: no field may be skipped when serializing.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::{FieldError, FieldProblem, IpamError};
use super::owner::{Attachment, Owner};
use super::range::Range;

/// Longest request id accepted.
pub const MAX_REQUEST_ID: usize = 128;
/// Longest container id, pod name, namespace, node or network name accepted.
pub const MAX_NAME: usize = 253;
/// Longest interface name (Linux `IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;
/// Most ranges (or static addresses) in one request.
pub const MAX_RANGES: usize = 16;
/// Most attachments a GC request may keep.
pub const MAX_KEEP: usize = 100_000;

/// One log entry's payload as the leader stamps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Client-chosen id; a repeated id returns the first reply instead of acting twice.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Leader's wall clock when the event was proposed (ms since the Unix epoch): apply never reads
    /// a clock itself.
    pub time_ms: u64,
    /// What to do.
    pub command: Command,
}

/// What an event asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// ADD: one address from each range (plus requested static addresses), all or nothing.
    Allocate(Allocate),
    /// DEL: free everything `owner` holds in the network.
    Release(Release),
    /// Free one address, only if `expected` holds it.
    ReleaseIp(ReleaseIp),
    /// CNI GC: free a node's attachments of a CNI network that are not in `keep`.
    Gc(Gc),
}

/// See [`Command::Allocate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocate {
    /// whereabouts' `network_name` ("" when unset): with a range's CIDR it names the pool.
    pub network: String,
    /// Ranges to allocate from (`range` / `ipRanges`), one address each.
    pub ranges: Vec<Range>,
    /// Specific addresses asked for (`ips` capability, `args.cni.ips`, `IP=`), reserved cluster-wide.
    #[serde(default)]
    pub statics: Vec<IpNet>,
    /// `enable_overlapping_ranges`: never take an address another range of the network holds.
    pub overlapping: bool,
    /// Who asks.
    pub attachment: Attachment,
}

/// See [`Command::Release`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Network name.
    pub network: String,
    /// Whose addresses to free.
    pub owner: Owner,
    /// Free only addresses recorded for this node: a node's plugin may release its own node's
    /// attachments, never another node's.
    #[serde(default)]
    pub only_node: Option<String>,
}

/// See [`Command::ReleaseIp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseIp {
    /// Network name.
    pub network: String,
    /// The address.
    pub ip: IpAddr,
    /// Who must hold it for the release to happen.
    pub expected: Owner,
}

/// See [`Command::Gc`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gc {
    /// Network name of the pools to sweep.
    pub network: String,
    /// CNI network `name` whose attachments are swept.
    pub cni_network: String,
    /// Only this node's attachments are swept.
    pub node: String,
    /// Attachments still valid (`cni.dev/valid-attachments`).
    pub keep: Vec<Owner>,
}

/// An address given or freed, with the pool it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The address.
    pub ip: IpAddr,
    /// The pool's CIDR (its prefix length is the address's).
    pub pool: IpNet,
}

impl Lease {
    /// The address with the pool's prefix length, as CNI results carry it.
    pub fn address(&self) -> IpNet {
        IpNet::new(self.ip, self.pool.prefix_len()).expect("pool prefix fits its family")
    }
}

/// What applying an event produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// One lease per range, in request order, then static addresses outside every range.
    Allocated(Vec<Lease>),
    /// Addresses freed (empty when the owner held nothing: DEL is idempotent).
    Released(Vec<Lease>),
}

/// The reply to an event: the same on every node, since apply is deterministic.
pub type Reply = Result<Outcome, IpamError>;

impl Event {
    /// An event without request id.
    pub fn new(command: Command, time_ms: u64) -> Event {
        Event { request_id: None, time_ms, command }
    }

    /// The same event carrying `request_id`.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Event {
        self.request_id = Some(request_id.into());
        self
    }

    /// Checks sizes and shapes; the cluster calls this before proposing, apply calls it again.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(id) = &self.request_id {
            check_request_id(id)?;
        }
        self.command.validate()
    }
}

/// A request id is 1..=[`MAX_REQUEST_ID`] bytes without control characters. Only such ids are
/// remembered for deduplication (and so in snapshots, which refuse any other).
pub fn check_request_id(id: &str) -> Result<(), FieldError> {
    check_len("request_id", id, MAX_REQUEST_ID, true)
}

impl Command {
    /// See [`Event::validate`].
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            Command::Allocate(a) => {
                check_len("network_name", &a.network, MAX_NAME, false)?;
                check_attachment(&a.attachment)?;
                if a.ranges.is_empty() && a.statics.is_empty() {
                    return Err(FieldError::new("ranges", "[]", FieldProblem::Missing));
                }
                if a.ranges.len() > MAX_RANGES {
                    let n = a.ranges.len().to_string();
                    return Err(FieldError::new("ranges", n, FieldProblem::TooLarge { limit: MAX_RANGES as u64 }));
                }
                if a.statics.len() > MAX_RANGES {
                    let n = a.statics.len().to_string();
                    return Err(FieldError::new("ips", n, FieldProblem::TooLarge { limit: MAX_RANGES as u64 }));
                }
                Ok(())
            }
            Command::Release(r) => {
                check_len("network_name", &r.network, MAX_NAME, false)?;
                if let Some(node) = &r.only_node {
                    check_len("only_node", node, MAX_NAME, true)?;
                }
                check_owner(&r.owner)
            }
            Command::ReleaseIp(r) => {
                check_len("network_name", &r.network, MAX_NAME, false)?;
                check_owner(&r.expected)
            }
            Command::Gc(g) => {
                check_len("network_name", &g.network, MAX_NAME, false)?;
                check_len("cni_network", &g.cni_network, MAX_NAME, false)?;
                check_len("node", &g.node, MAX_NAME, true)?;
                if g.keep.len() > MAX_KEEP {
                    let n = g.keep.len().to_string();
                    return Err(FieldError::new("keep", n, FieldProblem::TooLarge { limit: MAX_KEEP as u64 }));
                }
                g.keep.iter().try_for_each(check_owner)
            }
        }
    }
}

fn check_attachment(a: &Attachment) -> Result<(), FieldError> {
    check_owner(&a.owner)?;
    if let Some(pod) = &a.pod {
        check_len("pod_namespace", &pod.namespace, MAX_NAME, true)?;
        check_len("pod_name", &pod.name, MAX_NAME, true)?;
    }
    if let Some(uid) = &a.pod_uid {
        check_len("pod_uid", uid, MAX_NAME, false)?;
    }
    if let Some(node) = &a.node {
        check_len("node", node, MAX_NAME, true)?;
    }
    check_len("cni_network", &a.cni_network, MAX_NAME, false)
}

fn check_owner(o: &Owner) -> Result<(), FieldError> {
    check_len("container_id", &o.container_id, MAX_NAME, true)?;
    check_len("ifname", &o.ifname, MAX_IFNAME, true)?;
    if o.ifname.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) || o.ifname == "." || o.ifname == ".." {
        return Err(FieldError::new("ifname", &o.ifname, FieldProblem::Invalid("not a valid interface name".into())));
    }
    Ok(())
}

fn check_len(field: &str, value: &str, limit: usize, required: bool) -> Result<(), FieldError> {
    if required && value.is_empty() {
        return Err(FieldError::new(field, value, FieldProblem::Missing));
    }
    if value.len() > limit {
        return Err(FieldError::new(field, value, FieldProblem::TooLarge { limit: limit as u64 }));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, value, FieldProblem::Invalid("contains control characters".into())));
    }
    Ok(())
}
