//! Reading `history.jsonl` into typed events.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::error::HistoryError;
use super::event::{Event, EventType, RawEvent};
use super::process::Process;

/// Reads a history file; see [`parse_history`] for the rules applied.
pub fn read_history(path: &Path) -> Result<Vec<Event>, HistoryError> {
    let file = File::open(path).map_err(|source| HistoryError::Io { path: path.to_path_buf(), source })?;
    parse_history(BufReader::new(file)).map_err(|e| match e {
        HistoryError::Stream(source) => HistoryError::Io { path: path.to_path_buf(), source },
        other => other,
    })
}

/// Parses JSON lines into events, keeping file order.
///
/// Blank lines are skipped; `index` must strictly increase. A client completion may carry only
/// its results: fields it lacks are taken from the value of that process's pending invoke.
pub fn parse_history<R: BufRead>(reader: R) -> Result<Vec<Event>, HistoryError> {
    let mut events = Vec::new();
    let mut pending: HashMap<u64, serde_json::Value> = HashMap::new();
    let mut last_index: Option<u64> = None;
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(HistoryError::Stream)?;
        if line.trim().is_empty() {
            continue;
        }
        let mut raw: RawEvent =
            serde_json::from_str(&line).map_err(|source| HistoryError::Json { line: n + 1, source })?;
        if last_index.is_some_and(|last| raw.index <= last) {
            return Err(HistoryError::malformed(raw.index, "index does not increase in file order"));
        }
        last_index = Some(raw.index);
        if let Process::Client(p) = raw.process {
            if raw.kind == EventType::Invoke {
                pending.insert(p, raw.value.clone());
            } else if let Some(invoke) = pending.remove(&p) {
                raw.value = merge(invoke, raw.value);
            }
        }
        let index = raw.index;
        let event = Event::try_from(raw).map_err(|e| HistoryError::malformed(index, e.to_string()))?;
        events.push(event);
    }
    Ok(events)
}

/// Completion fields win; invoke fields fill the gaps (objects only).
fn merge(invoke: serde_json::Value, completion: serde_json::Value) -> serde_json::Value {
    match (invoke, completion) {
        (serde_json::Value::Object(mut base), serde_json::Value::Object(over)) => {
            base.extend(over);
            serde_json::Value::Object(base)
        }
        (invoke, serde_json::Value::Null) => invoke,
        (_, completion) => completion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    #[test]
    fn completion_inherits_invoke_fields() {
        let text = r#"
{"index":0,"time":1,"process":0,"type":"invoke","f":"allocate","node":1,"value":{"request_id":"r1","network":"n","owner":"a/eth0","ranges":[{"range":"10.1.0.0/28"}]}}

{"index":1,"time":2,"process":0,"type":"ok","f":"allocate","node":1,"value":{"ips":["10.1.0.1"]}}
"#;
        let events = parse_history(text.as_bytes()).unwrap();
        assert_eq!(events.len(), 2);
        let Op::Allocate(a) = &events[1].op else { panic!("not an allocate") };
        assert_eq!(a.owner, "a/eth0");
        assert_eq!(a.ips.as_deref(), Some(&["10.1.0.1".parse().unwrap()][..]));
    }

    #[test]
    fn non_increasing_index_is_rejected() {
        let text = r#"{"index":1,"time":1,"process":"nemesis","type":"info","f":"kill"}
{"index":1,"time":2,"process":"nemesis","type":"info","f":"restart"}"#;
        let err = parse_history(text.as_bytes()).unwrap_err();
        assert!(matches!(err, HistoryError::Malformed { index: 1, .. }));
    }

    #[test]
    fn bad_json_names_the_line() {
        let err = parse_history("\n{oops".as_bytes()).unwrap_err();
        assert!(matches!(err, HistoryError::Json { line: 2, .. }));
    }
}
