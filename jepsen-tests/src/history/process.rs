//! Who issued an event of the history: a numbered client or the nemesis; written as the client's
//! number or the string `"nemesis"`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::OpError;

/// Who issued an event: a numbered client, or the fault injector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client; each has at most one outstanding operation.
    Client(u64),
    /// The nemesis (fault injector), written as the string `"nemesis"`.
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => s.serialize_u64(*n),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Num(u64),
            Str(String),
        }
        match Wire::deserialize(d)? {
            Wire::Num(n) => Ok(Process::Client(n)),
            Wire::Str(s) if s == "nemesis" => Ok(Process::Nemesis),
            Wire::Str(s) => Err(serde::de::Error::custom(OpError::BadProcess(s))),
        }
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(n) => write!(f, "p{n}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}
