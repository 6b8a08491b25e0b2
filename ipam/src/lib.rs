//! The pure IPAM domain: ranges, the allocator, events and `apply`. It imports only `std`,
//! `ipnet`, `serde` and `hashbrown` — no clock, no randomness, no I/O — so a Raft state machine can
//! fold the log into it and every node reaches the same state.

pub mod apply;
pub mod error;
pub mod event;
pub mod format;
pub mod ip;
pub mod limits;
pub mod offset_set;
pub mod owner;
pub mod packed;
pub mod pool;
pub mod range;
pub mod snapshot;
pub mod state;
#[cfg(test)]
mod test_support;

pub use apply::apply;
pub use error::{FieldError, FieldProblem, IpamError, Warning};
pub use event::{
    Allocate, Command, Configure, Event, Gc, Lease, Outcome, Release, ReleaseIp, Reply, SetClusterVersion,
};
pub use format::{UnsupportedFormat, FORMAT_MAX, FORMAT_MIN};
pub use ip::Family;
pub use limits::Limits;
pub use owner::{Attachment, Owner, PodRef};
pub use range::{Range, RangeSpec};
pub use state::{AllocationView, HistoryAction, HistoryEntry, PoolUsage, State};
