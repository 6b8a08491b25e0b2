//! Thread-safe append-only writer for `history.jsonl`, used by the chaos harness.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use super::error::HistoryError;
use super::event::{Event, EventType, NodeId};
use super::op::{Nemesis, Op};
use super::process::Process;

struct Inner<W> {
    sink: W,
    next_index: u64,
    last_time: u64,
}

/// Appends events as JSON lines. Index and time are assigned under one lock, so file order,
/// `index` order and `time` order agree (index 0, 1, 2…; time non-decreasing nanoseconds since
/// the writer was created). Each line is flushed before `record` returns.
pub struct HistoryWriter<W: Write + Send = BufWriter<File>> {
    inner: Mutex<Inner<W>>,
    start: Instant,
}

impl HistoryWriter<BufWriter<File>> {
    /// Creates (truncating) `path`, and its parent folders, e.g. `results/<run>/history.jsonl`.
    pub fn create(path: &Path) -> Result<Self, HistoryError> {
        let io = |source| HistoryError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path).map_err(io)?;
        Ok(Self::new(BufWriter::new(file)))
    }
}

impl<W: Write + Send> HistoryWriter<W> {
    /// Wraps any sink; time 0 is now.
    pub fn new(sink: W) -> Self {
        Self { inner: Mutex::new(Inner { sink, next_index: 0, last_time: 0 }), start: Instant::now() }
    }

    /// Records one event stamped with the elapsed monotonic time; returns it as written.
    pub fn record(
        &self,
        process: Process,
        kind: EventType,
        node: Option<NodeId>,
        op: Op,
    ) -> Result<Event, HistoryError> {
        self.write(None, process, kind, node, op)
    }

    /// Records one event with an explicit time (raised to the previous time if it is lower).
    pub fn record_at(
        &self,
        time: u64,
        process: Process,
        kind: EventType,
        node: Option<NodeId>,
        op: Op,
    ) -> Result<Event, HistoryError> {
        self.write(Some(time), process, kind, node, op)
    }

    /// Records a nemesis event (`f` = fault name, `value` = free-form details).
    pub fn nemesis(&self, kind: EventType, f: &str, value: serde_json::Value) -> Result<Event, HistoryError> {
        let op = Op::Nemesis(Nemesis { f: f.to_string(), value });
        self.record(Process::Nemesis, kind, None, op)
    }

    /// Returns the sink (after a final flush).
    pub fn into_inner(self) -> Result<W, HistoryError> {
        let mut inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        inner.sink.flush().map_err(HistoryError::Stream)?;
        Ok(inner.sink)
    }

    fn write(
        &self,
        time: Option<u64>,
        process: Process,
        kind: EventType,
        node: Option<NodeId>,
        op: Op,
    ) -> Result<Event, HistoryError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = time.unwrap_or_else(|| u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let event = Event { index: inner.next_index, time: now.max(inner.last_time), process, kind, node, op };
        let mut line = serde_json::to_vec(&event).map_err(|e| HistoryError::malformed(event.index, e.to_string()))?;
        line.push(b'\n');
        inner.sink.write_all(&line).map_err(HistoryError::Stream)?;
        inner.sink.flush().map_err(HistoryError::Stream)?;
        inner.next_index += 1;
        inner.last_time = event.time;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{parse_history, Allocate, RangeSpec};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_get_dense_increasing_indexes() {
        let w = Arc::new(HistoryWriter::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let w = Arc::clone(&w);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let op = Op::Allocate(Allocate::new(
                            format!("r{p}-{i}"),
                            "n",
                            format!("c{p}/eth0"),
                            vec![RangeSpec::new("10.1.0.0/24")],
                        ));
                        w.record(Process::Client(p), EventType::Invoke, Some(0), op).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let w = Arc::into_inner(w).unwrap();
        let bytes = w.into_inner().unwrap();
        let events = parse_history(&bytes[..]).unwrap();
        assert_eq!(events.len(), 100);
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(ev.index, i as u64);
        }
        assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn explicit_times_never_go_backwards() {
        let w = HistoryWriter::new(Vec::new());
        let fault = |f: &str| Op::Nemesis(Nemesis { f: f.into(), value: serde_json::json!({"nodes": [1]}) });
        let at = |t, f| w.record_at(t, Process::Nemesis, EventType::Info, None, fault(f));
        let a = at(50, "kill").unwrap();
        let b = at(10, "heal").unwrap();
        assert_eq!((a.index, a.time), (0, 50));
        assert_eq!((b.index, b.time), (1, 50));
    }
}
