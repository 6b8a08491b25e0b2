//! The load generator shared by `etcd-scheme-bench` (whereabouts' scheme on etcd, in
//! `bench-reference`) and `whereabouts-ctl bench`: one closed-loop driver, one `allocate:release`
//! mix, one pool layout, one set of time limits and one report schema, so that the two systems
//! are measured the same way and their JSON reports can be put side by side.
//!
//! What differs between the systems stays with them: how a client talks to its store
//! ([`driver::Client`]), why an operation fails ([`error_kinds::FailureKind`]) and the report's
//! extra fields ([`report::Extras`]). Nothing here depends on whereabouts-rs.
#![warn(missing_docs)]

pub mod driver;
pub mod error_kinds;
pub mod latency;
pub mod limits;
pub mod mix;
pub mod pool_range;
pub mod report;

pub use driver::{Attempts, Client, Finished, OpContext, Plan, Progress};
pub use error_kinds::{ErrorKinds, FailureKind};
pub use latency::{Latencies, LatencySummary};
pub use limits::{InvalidSeconds, Limits};
pub use mix::{Mix, MixError, OpKind};
pub use pool_range::{PoolRange, RangeError};
pub use report::{Extras, Measured, PoolSize, Report, Setup};
