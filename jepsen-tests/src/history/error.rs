//! Errors raised while reading, writing or pairing a history.

use std::path::PathBuf;

/// Everything that can go wrong with a history file; each variant says which line or event is at fault.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The history file could not be opened, read or written.
    #[error("history file {path}")]
    Io {
        /// File that was being read or written.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// Reading from or writing to a history stream (not a named file) failed.
    #[error("history stream")]
    Stream(#[source] std::io::Error),
    /// A line is not valid JSON or does not have the event shape.
    #[error("line {line}")]
    Json {
        /// 1-based line number in the file.
        line: usize,
        /// Underlying parse error.
        source: serde_json::Error,
    },
    /// An event is well-formed JSON but breaks a rule of the history format.
    #[error("event {index}: {reason}")]
    Malformed {
        /// `index` field of the offending event.
        index: u64,
        /// Which rule is broken.
        reason: String,
    },
}

impl HistoryError {
    /// Builds a [`HistoryError::Malformed`] for the event with this index.
    pub fn malformed(index: u64, reason: impl Into<String>) -> Self {
        Self::Malformed { index, reason: reason.into() }
    }
}

/// Why a raw `(process, f, value)` triple is not a valid operation.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A client event names an `f` other than allocate, release or read.
    #[error("unknown client function {0:?} (expected allocate, release or read)")]
    UnknownFunction(String),
    /// The value does not have the shape required for its `f`.
    #[error("value of {f}: {error}")]
    Value {
        /// The function whose value is bad.
        f: &'static str,
        /// What serde found wrong (kept in the message: this error is usually flattened to text).
        error: serde_json::Error,
    },
    /// The `process` field is a string other than "nemesis".
    #[error("process must be an integer or \"nemesis\", got {0:?}")]
    BadProcess(String),
}
