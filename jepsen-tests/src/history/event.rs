//! One line of `history.jsonl`: who did what, when, against which node.
//!
//! The wire shape is [`RawEvent`] (`f` + free `value`); [`Event`] is the typed form built from it.

use serde::{Deserialize, Serialize};

use super::error::OpError;
use super::op::Op;
use super::process::Process;

/// Node id as used by the cluster (`--initial-cluster` ordinal).
pub type NodeId = u64;

/// The `type` of an event: an invocation or one of the three completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation was sent.
    Invoke,
    /// Definitely applied, with the result in `value`.
    Ok,
    /// Definitely not applied.
    Fail,
    /// Unknown (timeout, connection lost): may take effect any time after the invoke, or never.
    Info,
}

impl EventType {
    /// Lower-case name as written in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// The exact wire shape of one history line; `value` is kept as free JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEvent {
    /// 0, 1, 2, … in file order.
    pub index: u64,
    /// Monotonic nanoseconds since the run started.
    pub time: u64,
    /// Client number or `"nemesis"`.
    pub process: Process,
    /// invoke | ok | fail | info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// allocate | release | read for clients; the fault name for the nemesis.
    pub f: String,
    /// Node the client talked to (absent for most nemesis events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// Arguments and, on completion, results.
    #[serde(default)]
    pub value: serde_json::Value,
}

/// A typed history event; serialises to and from the [`RawEvent`] wire shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEvent", into = "RawEvent")]
pub struct Event {
    /// 0, 1, 2, … in file order.
    pub index: u64,
    /// Monotonic nanoseconds since the run started.
    pub time: u64,
    /// Client number or the nemesis.
    pub process: Process,
    /// invoke | ok | fail | info.
    pub kind: EventType,
    /// Node the client talked to.
    pub node: Option<NodeId>,
    /// The operation with its arguments (and results on completion).
    pub op: Op,
}

impl TryFrom<RawEvent> for Event {
    type Error = OpError;

    fn try_from(raw: RawEvent) -> Result<Self, OpError> {
        let op = Op::from_wire(raw.process, &raw.f, raw.value)?;
        Ok(Event { index: raw.index, time: raw.time, process: raw.process, kind: raw.kind, node: raw.node, op })
    }
}

impl From<Event> for RawEvent {
    fn from(ev: Event) -> Self {
        let f = ev.op.f().to_string();
        RawEvent {
            index: ev.index,
            time: ev.time,
            process: ev.process,
            kind: ev.kind,
            f,
            node: ev.node,
            value: ev.op.into_value(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_round_trips() {
        assert_eq!(serde_json::to_string(&Process::Client(3)).unwrap(), "3");
        assert_eq!(serde_json::to_string(&Process::Nemesis).unwrap(), "\"nemesis\"");
        let p: Process = serde_json::from_str("\"nemesis\"").unwrap();
        assert_eq!(p, Process::Nemesis);
        assert!(serde_json::from_str::<Process>("\"bob\"").is_err());
    }

    #[test]
    fn event_round_trips_through_wire_shape() {
        let line = r#"{"index":0,"time":5,"process":1,"type":"invoke","f":"release","node":2,"value":{"network":"n1","ip":"10.1.0.3","owner":"c1/eth0"}}"#;
        let ev: Event = serde_json::from_str(line).unwrap();
        assert!(matches!(ev.op, Op::ReleaseIp(_)));
        let back = serde_json::to_value(&ev).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(line).unwrap());
    }

    #[test]
    fn unknown_client_function_is_rejected() {
        let line = r#"{"index":0,"time":5,"process":1,"type":"invoke","f":"kill","value":{}}"#;
        assert!(serde_json::from_str::<Event>(line).is_err());
    }
}
