//! Support for the end-to-end tests: CNI execution. The local cluster and the network
//! namespaces come from `testkit` (`loopback_cluster`, `netns`).

pub mod cni;
