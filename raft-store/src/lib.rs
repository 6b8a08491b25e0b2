//! whereabouts-rs storage crate.
//!
//! - [`domain`]: the pure IPAM domain (ranges, allocator, events, `apply`, snapshots).
//! - [`config`]: whereabouts-compatible CNI configuration parsing.

pub mod config;
pub mod domain;
