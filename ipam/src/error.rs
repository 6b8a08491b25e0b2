//! Errors of the IPAM domain: validation errors that name the offending field, and the outcomes of
//! applying an event that are not a success. All are matchable enums; none is built from text.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What is wrong with one field of a configuration or request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FieldProblem {
    /// Not a CIDR (`ADDRESS/PREFIX`) nor the range-end syntax `START-END/PREFIX`.
    #[error("not a valid CIDR")]
    InvalidCidr,
    /// Not an IP address.
    #[error("not a valid IP address")]
    InvalidIp,
    /// Not a CIDR nor an IP address (exclude entries may be either).
    #[error("not a valid CIDR or IP address")]
    InvalidCidrOrIp,
    /// A /31 or /32 (/127 or /128) has no address between its network and last address.
    #[error("the network has no usable address (the prefix must be at most /30 for IPv4, /126 for IPv6)")]
    NoUsableAddress,
    /// The start of `START-END/PREFIX` is not inside the network `END/PREFIX`.
    #[error("range start is outside the network {network}")]
    StartOutsideNetwork {
        /// The network the start should belong to.
        network: IpNet,
    },
    /// IPv4 and IPv6 mixed inside one range.
    #[error("address family does not match the range (expected {expected})")]
    FamilyMismatch {
        /// "IPv4" or "IPv6".
        expected: String,
    },
    /// The field is required.
    #[error("is required")]
    Missing,
    /// The value has the wrong JSON type or shape.
    #[error("has the wrong type: {0}")]
    WrongType(String),
    /// The value is longer or larger than allowed.
    #[error("is too long or too large (limit {limit})")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Any other rule, spelled out.
    #[error("{0}")]
    Invalid(String),
}

/// A field that failed validation: where, what was given, and why it is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {problem} (got {value:?})")]
pub struct FieldError {
    /// Path of the field, e.g. `ipam.ipRanges[1].range_start`.
    pub field: String,
    /// The value as given (truncated if huge).
    pub value: String,
    /// The rule it breaks.
    pub problem: FieldProblem,
}

impl FieldError {
    /// Builds an error for `field`, keeping at most 256 characters of `value`.
    pub fn new(field: impl Into<String>, value: impl AsRef<str>, problem: FieldProblem) -> FieldError {
        let value = value.as_ref();
        let value = match value.char_indices().nth(256) {
            Some((cut, _)) => format!("{}…", &value[..cut]),
            None => value.to_string(),
        };
        FieldError { field: field.into(), value, problem }
    }
}

/// A value that is accepted for compatibility with whereabouts but ignored or adjusted.
/// The caller logs it; the domain stays free of I/O.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Path of the field, e.g. `ipam.range_end`.
    pub field: String,
    /// What was done with it.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why an event did not succeed. Part of the replicated reply, so it is serializable and the same
/// on every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum IpamError {
    /// No free address is left in the range (after exclusions and overlapping ranges).
    #[error("no free address left in range {range} (network {network:?})")]
    Exhausted {
        /// The network name of the pool.
        network: String,
        /// The range that is full, as `CIDR[start-end]`.
        range: String,
    },
    /// A requested static address is held by another attachment.
    #[error("address {ip} is already held by {holder} (network {network:?})")]
    AddressTaken {
        /// The network name.
        network: String,
        /// The address asked for.
        ip: IpAddr,
        /// `containerID/ifname` of the holder.
        holder: String,
    },
    /// A guarded release named an owner that does not hold the address.
    #[error("address {ip} is held by {holder}, not by {expected}")]
    OwnerMismatch {
        /// The address.
        ip: IpAddr,
        /// Who holds it.
        holder: String,
        /// Who the caller expected.
        expected: String,
    },
    /// The attachment already holds a different address in the pool than the one this request
    /// implies (a pool holds at most one address per container+interface and per pod+interface).
    #[error("{owner} already holds {held} in pool {pool}; release it before asking for {wanted}")]
    OwnerConflict {
        /// `containerID/ifname` (or pod) of the request.
        owner: String,
        /// The pool.
        pool: String,
        /// The address already held.
        held: IpAddr,
        /// The address the request implies.
        wanted: String,
    },
    /// The request itself is invalid (caught before it reaches the log, or on decode).
    #[error("invalid request: {0}")]
    Invalid(FieldError),
}
