//! The independent oracle: allocation semantics re-implemented from the spec, not from the cluster.

mod network;
mod range;

pub use network::{NetOp, NetState, NetworkModel, Observation, OwnerId, PoolId, PoolRange, ReqId, Request};
pub use range::{Range, RangeError};
