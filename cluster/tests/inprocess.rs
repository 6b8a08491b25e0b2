//! In-process clusters on loopback, one module per topic. All nodes of a test run in this process
//! (each with its own data directory and gRPC port); links between them can be cut.

mod inprocess {
    pub mod cluster_version;
    pub mod election;
    pub mod forwarding;
    pub mod membership;
    pub mod quorum;
    pub mod raft_network;
    pub mod security;
    pub mod settings;
    pub mod snapshot;
}
