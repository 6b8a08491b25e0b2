//! Conversions between protobuf messages and domain / openraft types, one file per message
//! family. The domain never sees prost types; handlers never build them by hand.

pub mod api;
pub mod raft;
