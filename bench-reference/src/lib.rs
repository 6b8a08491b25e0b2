//! Reference side of the whereabouts-rs benchmark: whereabouts' allocation scheme (whole-pool object,
//! lowest free address, compare-and-swap on mod_revision, up to 100 retries) against a real etcd cluster.
//!
//! The binary `etcd-scheme-bench` drives it through the load generator both benchmarks share
//! (`loadgen`, which holds no whereabouts-rs code): its JSON report has the same schema as
//! `whereabouts-ctl bench`'s, so the two can be printed side by side.
pub mod bench;
pub mod etcd;
pub mod pool;
pub mod report;
pub mod scheme;
