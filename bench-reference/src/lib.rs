//! Reference side of the whereabouts-rs benchmark: whereabouts' allocation scheme (whole-pool object,
//! lowest free address, compare-and-swap on mod_revision, up to 100 retries) against a real etcd cluster.
//!
//! The binary `etcd-scheme-bench` drives it; its JSON report has the same schema as whereabouts-rs' own
//! load generator so the two can be printed side by side.
#![warn(missing_docs)]

pub mod bench;
pub mod etcd;
pub mod pool;
pub mod scheme;
pub mod stats;
