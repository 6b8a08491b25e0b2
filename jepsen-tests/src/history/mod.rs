//! The history format: typed events, reading and writing `history.jsonl`.
//!
//! The format is specified in `docs/chaos.md` ("History format"); these types are its only
//! implementation, shared by the harness (writer) and the checker (reader).

mod error;
mod event;
mod op;
mod process;
mod reader;
mod table;
mod writer;

pub use error::{HistoryError, OpError};
pub use event::{Event, EventType, NodeId, RawEvent};
pub use op::{Allocate, FinalRead, Nemesis, Op, RangeSpec, ReadOwner, Release, ReleaseIp, ERROR_EXHAUSTED};
pub use process::Process;
pub use reader::{parse_history, read_history};
pub use table::{FinalTable, Holders};
pub use writer::HistoryWriter;
