//! Typed operation values: what each `f` carries in `value`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::error::OpError;
use super::process::Process;
use super::table::FinalTable;

/// `error` value of a `fail` allocate meaning "the ranges are exhausted" (a definite, checked outcome).
pub const ERROR_EXHAUSTED: &str = "exhausted";

/// One range of a request, as in the whereabouts ipam config (`range`, `range_start`, `range_end`, `exclude`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangeSpec {
    /// CIDR (host bits ignored) or `first-last/prefix` range-end syntax.
    pub range: String,
    /// First address to hand out (inclusive); ignored when outside the usable span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    /// Last address to hand out (inclusive); ignored when outside the span or below the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    /// CIDRs or bare IPs never handed out (the whole block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl RangeSpec {
    /// A plain CIDR range with no start, end or excludes.
    pub fn new(range: impl Into<String>) -> Self {
        Self { range: range.into(), range_start: None, range_end: None, exclude: Vec::new() }
    }
}

fn default_true() -> bool {
    true
}

/// CNI ADD: one address from each range, all or nothing; `ips` set on `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocate {
    /// Client-chosen id; the cluster applies a request id at most once.
    pub request_id: String,
    /// whereabouts `network_name`; pools are (network, range CIDR).
    pub network: String,
    /// `<containerID>/<ifname>`.
    pub owner: String,
    /// Ranges in request order (ipRanges).
    pub ranges: Vec<RangeSpec>,
    /// Whether an address held in any range of the network counts as taken.
    #[serde(default = "default_true")]
    pub overlapping: bool,
    /// On `ok`: one address per range, same order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpAddr>>,
    /// On `fail`/`info`: why; [`ERROR_EXHAUSTED`] makes a `fail` a checked outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Allocate {
    /// An allocate invocation with `overlapping: true`.
    pub fn new(
        request_id: impl Into<String>,
        network: impl Into<String>,
        owner: impl Into<String>,
        ranges: Vec<RangeSpec>,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            network: network.into(),
            owner: owner.into(),
            ranges,
            overlapping: true,
            ips: None,
            error: None,
        }
    }

    /// The same request with its `ok` result.
    pub fn with_ips(mut self, ips: Vec<IpAddr>) -> Self {
        self.ips = Some(ips);
        self
    }

    /// The same request with an error text (use [`ERROR_EXHAUSTED`] for exhaustion).
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// CNI DEL: release every address `owner` holds in these ranges (unknown owner is ok).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Client-chosen id; applied at most once.
    pub request_id: String,
    /// whereabouts `network_name`.
    pub network: String,
    /// `<containerID>/<ifname>`.
    pub owner: String,
    /// Ranges whose pools are released.
    pub ranges: Vec<RangeSpec>,
}

/// Guarded release of one address: freed only if `owner` holds `ip` in `network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseIp {
    /// Optional client id; applied at most once when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// whereabouts `network_name`.
    pub network: String,
    /// The address to free.
    pub ip: IpAddr,
    /// Expected holder.
    pub owner: String,
}

/// Per-owner check (CNI CHECK): which addresses `owner` holds in `network`; `ips` set on `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOwner {
    /// whereabouts `network_name`.
    pub network: String,
    /// `<containerID>/<ifname>`.
    pub owner: String,
    /// On `ok`: every address held (order irrelevant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpAddr>>,
}

/// Final linearizable full read of one node after faults heal; `allocations` set on `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    /// Always `true`; distinguishes the final read from a per-owner read.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// On `ok`: network → ip → owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<FinalTable>,
}

impl FinalRead {
    /// A final read invocation.
    pub fn new() -> Self {
        Self { is_final: true, allocations: None }
    }

    /// The same read with its `ok` result.
    pub fn with_allocations(mut self, table: FinalTable) -> Self {
        self.allocations = Some(table);
        self
    }
}

impl Default for FinalRead {
    fn default() -> Self {
        Self::new()
    }
}

/// A fault-injector event; `f` is the fault name and `value` free-form (targets, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nemesis {
    /// kill, restart, pause, resume, partition, heal, drop, add-learner, promote, remove, …
    pub f: String,
    /// Free-form details.
    pub value: serde_json::Value,
}

/// The operation carried by an event, typed by `f` (and by the shape of `value` for release/read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `f: allocate`.
    Allocate(Allocate),
    /// `f: release` with `ranges`.
    Release(Release),
    /// `f: release` with `ip`.
    ReleaseIp(ReleaseIp),
    /// `f: read` with `network` + `owner`.
    ReadOwner(ReadOwner),
    /// `f: read` with `final: true`.
    FinalRead(FinalRead),
    /// Any nemesis event.
    Nemesis(Nemesis),
}

fn decode<T: serde::de::DeserializeOwned>(f: &'static str, value: serde_json::Value) -> Result<T, OpError> {
    serde_json::from_value(value).map_err(|error| OpError::Value { f, error })
}

impl Op {
    /// Builds the typed op from the wire `process`, `f` and `value`.
    pub fn from_wire(process: Process, f: &str, value: serde_json::Value) -> Result<Self, OpError> {
        if process == Process::Nemesis {
            return Ok(Op::Nemesis(Nemesis { f: f.to_string(), value }));
        }
        match f {
            "allocate" => Ok(Op::Allocate(decode("allocate", value)?)),
            "release" if value.get("ip").is_some() => Ok(Op::ReleaseIp(decode("release", value)?)),
            "release" => Ok(Op::Release(decode("release", value)?)),
            "read" if value.get("final") == Some(&serde_json::Value::Bool(true)) => {
                Ok(Op::FinalRead(decode("read", value)?))
            }
            "read" => Ok(Op::ReadOwner(decode("read", value)?)),
            other => Err(OpError::UnknownFunction(other.to_string())),
        }
    }

    /// The `f` field: allocate, release, read or the fault name.
    pub fn f(&self) -> &str {
        match self {
            Op::Allocate(_) => "allocate",
            Op::Release(_) | Op::ReleaseIp(_) => "release",
            Op::ReadOwner(_) | Op::FinalRead(_) => "read",
            Op::Nemesis(n) => &n.f,
        }
    }

    /// The `value` field as JSON.
    pub fn into_value(self) -> serde_json::Value {
        // These types serialise to JSON objects with string keys only, so to_value cannot fail.
        let v = match self {
            Op::Allocate(v) => serde_json::to_value(v),
            Op::Release(v) => serde_json::to_value(v),
            Op::ReleaseIp(v) => serde_json::to_value(v),
            Op::ReadOwner(v) => serde_json::to_value(v),
            Op::FinalRead(v) => serde_json::to_value(v),
            Op::Nemesis(n) => return n.value,
        };
        v.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn release_and_read_shapes_are_told_apart() {
        let c = Process::Client(0);
        let r = Op::from_wire(
            c,
            "release",
            json!({"request_id":"r","network":"n","owner":"o","ranges":[{"range":"10.0.0.0/24"}]}),
        );
        assert!(matches!(r, Ok(Op::Release(_))));
        let r = Op::from_wire(c, "read", json!({"final": true}));
        assert!(matches!(r, Ok(Op::FinalRead(_))));
        let r = Op::from_wire(c, "read", json!({"network":"n","owner":"o"}));
        assert!(matches!(r, Ok(Op::ReadOwner(_))));
    }

    #[test]
    fn allocate_defaults_to_overlapping() {
        let op = Op::from_wire(
            Process::Client(0),
            "allocate",
            json!({"request_id":"r","network":"n","owner":"o","ranges":[{"range":"10.0.0.0/24"}]}),
        )
        .unwrap();
        let Op::Allocate(a) = op else { panic!("not an allocate") };
        assert!(a.overlapping);
        assert_eq!(a.ranges[0], RangeSpec::new("10.0.0.0/24"));
    }

    #[test]
    fn missing_field_names_the_function() {
        let err = Op::from_wire(Process::Client(0), "allocate", json!({"network":"n"})).unwrap_err();
        assert!(matches!(err, OpError::Value { f: "allocate", .. }));
    }
}
