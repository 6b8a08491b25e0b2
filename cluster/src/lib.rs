//! whereabouts-rs cluster: the `whereabouts-node` server (Raft over gRPC, the IPAM service,
//! forwarding, metrics) and the `whereabouts-ctl` operator CLI.

pub mod clock;
pub mod compaction;
pub mod convert;
pub mod ctl;
pub mod kube;
pub mod leader_lease;
pub mod metrics;
pub mod node;
pub mod proposer;
pub mod raft_net;
pub mod service;
pub mod telemetry;
pub mod tls;
