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
use super::format::{is_supported, FORMAT_MAX, FORMAT_MIN};
use super::limits::{Limits, MAX_HISTORY, MAX_REQUEST_CACHE, MIN_REQUEST_CACHE};
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
    /// Change what the state remembers beyond allocations (operator: `whereabouts-ctl
    /// settings`). The limits decide evictions inside apply, so they are replicated state, set
    /// through the log like everything else — never a node's own flags, which would make
    /// replicas with different flags diverge.
    Configure(Configure),
    /// Set the cluster version: the newest format the leader may write (operator:
    /// `whereabouts-ctl cluster-version set`). Format 2 and later only; not remembered in the
    /// request cache (setting a version twice is the same as once), so no reply of this kind
    /// ever reaches a snapshot an older node must read.
    SetClusterVersion(SetClusterVersion),
}

/// See [`Command::SetClusterVersion`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetClusterVersion {
    /// The new cluster version, between [`FORMAT_MIN`] and [`FORMAT_MAX`].
    pub version: u32,
}

/// See [`Command::Configure`]: fields left `None` keep their value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configure {
    /// Replies kept for request-id deduplication.
    pub request_cache: Option<u64>,
    /// Entries kept in the allocation history (0 keeps none).
    pub history: Option<u64>,
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
    /// The limits now in force.
    Configured(Limits),
    /// The cluster version before and after a [`Command::SetClusterVersion`].
    ClusterVersion {
        /// Before.
        previous: u32,
        /// After.
        current: u32,
    },
}

/// The reply to an event: the same on every node, since apply is deterministic.
pub type Reply = Result<Outcome, IpamError>;

impl Command {
    /// The command's name, for messages and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Allocate(_) => "allocate",
            Command::Release(_) => "release",
            Command::ReleaseIp(_) => "release_ip",
            Command::Gc(_) => "gc",
            Command::Configure(_) => "configure",
            Command::SetClusterVersion(_) => "set_cluster_version",
        }
    }

    /// The oldest format that can carry this command: a leader must not write it in an older one.
    pub fn min_format(&self) -> u32 {
        match self {
            Command::SetClusterVersion(_) | Command::Configure(_) => 2,
            _ => FORMAT_MIN,
        }
    }

    /// The cluster version a client must find before asking for this command: the leader writes
    /// it only in [`Command::min_format`], which members still on an older release cannot read.
    /// `SetClusterVersion` needs none: it is what raises the version (after checking that every
    /// member reads the format it is written in).
    pub fn min_cluster_version(&self) -> u32 {
        match self {
            Command::SetClusterVersion(_) => FORMAT_MIN,
            other => other.min_format(),
        }
    }

    /// The command as format `format` can carry it, with the same effect on every member. Format 1
    /// (release 0.1.0) refuses a pod without a namespace (podman's `K8S_POD_NAME` alone), which this
    /// release accepts and never uses as a key: in format 1 such a pod is left out.
    pub fn fit_to_format(mut self, format: u32) -> Command {
        if format < 2 {
            if let Command::Allocate(a) = &mut self {
                if a.attachment.pod.as_ref().is_some_and(|p| p.namespace.is_empty()) {
                    a.attachment.pod = None;
                }
            }
        }
        self
    }
}

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
            Command::SetClusterVersion(c) => {
                if is_supported(c.version) {
                    Ok(())
                } else {
                    let problem = FieldProblem::Invalid(format!("must be between {FORMAT_MIN} and {FORMAT_MAX}"));
                    Err(FieldError::new("cluster_version", c.version.to_string(), problem))
                }
            }
            Command::Configure(c) => {
                if let Some(n) = c.request_cache {
                    if !(MIN_REQUEST_CACHE..=MAX_REQUEST_CACHE).contains(&n) {
                        let problem = FieldProblem::Invalid(format!(
                            "must be between {MIN_REQUEST_CACHE} and {MAX_REQUEST_CACHE}"
                        ));
                        return Err(FieldError::new("request_cache", n.to_string(), problem));
                    }
                }
                match c.history {
                    Some(n) if n > MAX_HISTORY => {
                        let problem = FieldProblem::TooLarge { limit: MAX_HISTORY };
                        Err(FieldError::new("history", n.to_string(), problem))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn check_attachment(a: &Attachment) -> Result<(), FieldError> {
    check_owner(&a.owner)?;
    if let Some(pod) = &a.pod {
        // An empty namespace is podman's pod: `K8S_POD_NAME` without `K8S_POD_NAMESPACE`.
        check_len("pod_namespace", &pod.namespace, MAX_NAME, false)?;
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
