//! The gRPC contract of whereabouts-rs, generated from `proto/ipam.proto` (the IPAM API every
//! client uses: CNI plugin, `whereabouts-ctl`, benchmarks) and `proto/raft.proto` (Raft RPCs
//! between nodes). Only this crate holds generated code; conversions to domain types live in
//! `cluster`.

#![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]

/// `whereabouts.ipam.v1`: the IPAM service (generated; the field docs are the `.proto` comments).
#[allow(missing_docs)]
pub mod ipam {
    tonic::include_proto!("whereabouts.ipam.v1");
}

/// `whereabouts.raft.v1`: Raft RPCs between nodes (generated).
#[allow(missing_docs)]
pub mod raft {
    tonic::include_proto!("whereabouts.raft.v1");
}

/// The current tree's `ipam.proto` and `raft.proto` as a binary `google.protobuf.FileDescriptorSet`
/// (with source info), written by the build script from the same protoc run as the generated code:
/// what the wire-compatibility test compares with the releases' baselines in `compat/`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.binpb"));

/// gRPC metadata key carrying a stable, machine-readable error reason (see `ipam.proto`).
pub const ERROR_REASON_KEY: &str = "x-whereabouts-error";
/// The reason a node gave for failing a call (its `x-whereabouts-error`), or `None` when no node
/// said it: a node sets a reason on every error it answers, while the HTTP/2 layer turns stream
/// resets into statuses with codes that look definite — `ENHANCE_YOUR_CALM` (a server tearing
/// down a connection with too many reset streams, e.g. after a pause) becomes RESOURCE_EXHAUSTED,
/// `INADEQUATE_SECURITY` PERMISSION_DENIED. Such a status says nothing about whether the call was
/// applied, so a client may treat a refusal as definite only when this is `Some`.
pub fn node_reason(status: &tonic::Status) -> Option<&str> {
    status.metadata().get(ERROR_REASON_KEY).and_then(|v| v.to_str().ok()).filter(|r| !r.is_empty())
}

/// gRPC metadata key carrying the current leader's address, when known.
pub const LEADER_KEY: &str = "x-whereabouts-leader";
/// Largest message a node or client accepts (bytes).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
