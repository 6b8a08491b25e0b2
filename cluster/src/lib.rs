//! whereabouts-rs cluster: the `whereabouts-node` server (Raft over gRPC, the IPAM service,
//! forwarding, metrics) and the `whereabouts-ctl` operator CLI.

pub mod convert;
pub mod ctl;
pub mod ipam;
pub mod kube;
pub mod metrics;
pub mod node;
pub mod proposer;
pub mod raft_net;
pub mod telemetry;
pub mod tls;
