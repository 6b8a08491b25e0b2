//! The floors the benchmarks are measured against (`floor-bench`): what no IPAM on this machine
//! can beat, measured in the same run as the systems.
//!
//! - [`echo`]: a bare tonic unary echo in its own process, driven by loadgen's closed loop with
//!   one HTTP/2 connection per client, as `whereabouts-ctl bench` drives the nodes. An allocation
//!   is at least one such call; its report has the shared schema (system [`SYSTEM_ECHO`]), so
//!   `bench-report` puts it beside the others and gives whereabouts-rs' ratio to it.
//! - [`fdatasync`]: the latency of appending a block to a file and `fdatasync`ing it, the least a
//!   durable commit costs on this disk.

pub mod echo;
pub mod fdatasync;

/// The `system` of the echo floor's reports.
pub const SYSTEM_ECHO: &str = "tonic-echo-floor";
