//! Test machinery shared by the workspace's tests and by the chaos suite: nothing here is part
//! of a product binary. Product crates (ipam, raft-store, proto, cluster, plugin) take it as a
//! dev-dependency only; `jepsen-tests`, itself test machinery, depends on it normally.

#[cfg(feature = "inprocess")]
pub mod faulty_network;
#[cfg(feature = "inprocess")]
pub mod inprocess_cluster;
pub mod loopback_cluster;
pub mod mem_log;
pub mod mem_state_machine;
pub mod module_graph;
pub mod netns;
pub mod node_binary;
pub mod node_processes;
pub mod ports;
pub mod requests;
