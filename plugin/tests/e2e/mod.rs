//! Support for the end-to-end tests: a real local cluster, network namespaces, CNI execution.

pub mod cluster;
pub mod cni;
pub mod netns;
