//! Reference side of the whereabouts-rs benchmark: two etcd allocation schemes against a real etcd
//! cluster. `whole-pool` ([`scheme`]) is whereabouts' own (whole-pool object, lowest free address,
//! compare-and-swap on mod_revision, up to 100 retries); `key-per-address` ([`key_per_address`]) is the
//! strongest etcd baseline (one key per address claimed with create-if-absent, random offsets).
//!
//! The binary `etcd-scheme-bench` drives either through the load generator both benchmarks share
//! (`loadgen`, which holds no whereabouts-rs code): its JSON report has the same schema as
//! `whereabouts-ctl bench`'s, so the two can be printed side by side. The binary `floor-bench`
//! ([`floor`]) measures what no system on the machine can beat: a bare tonic unary echo at the
//! same concurrency, and append + fdatasync.
pub mod bench;
pub mod etcd;
pub mod floor;
pub mod key_per_address;
pub mod output;
pub mod pool;
pub mod report;
pub mod scheme;
