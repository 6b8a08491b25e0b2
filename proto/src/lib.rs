//! The gRPC contract of whereabouts-rs, generated from `proto/ipam.proto` (the IPAM API every
//! client uses: CNI plugin, `whereabouts-ctl`, benchmarks) and `proto/raft.proto` (Raft RPCs
//! between nodes). Only this crate holds generated code; conversions to domain types live in
//! `cluster`.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

/// `whereabouts.ipam.v1`: the IPAM service.
pub mod ipam {
    tonic::include_proto!("whereabouts.ipam.v1");
}

/// `whereabouts.raft.v1`: Raft RPCs between nodes.
pub mod raft {
    tonic::include_proto!("whereabouts.raft.v1");
}

/// gRPC metadata key carrying a stable, machine-readable error reason (see `ipam.proto`).
pub const ERROR_REASON_KEY: &str = "x-whereabouts-error";
/// gRPC metadata key carrying the current leader's address, when known.
pub const LEADER_KEY: &str = "x-whereabouts-leader";
/// Largest message a node or client accepts (bytes).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
