//! whereabouts-rs storage crate.
//!
//! - [`domain`]: the pure IPAM domain (ranges, allocator, events, `apply`, snapshots).
//! - [`config`]: whereabouts-compatible CNI configuration parsing.
//! - `store` / `types` (feature `storage`): openraft storage on sled and the Raft type config.

pub mod config;
pub mod domain;

#[cfg(feature = "storage")]
pub mod store;
#[cfg(feature = "storage")]
pub mod types;
