//! The simulation's state-machine safety oracle: every node's state machine
//! ([`testkit::mem_state_machine::MemSm`]) reports what it applies here, and the oracle checks it
//! as it happens — one log id per index everywhere, and one reply per request id everywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ipam::Reply;
use raft_store::types::typ;
use testkit::mem_state_machine::ApplyObserver;

/// What every node applied, for state-machine safety; shared by every node's machine.
#[derive(Debug, Default)]
pub struct Oracle(Mutex<Seen>);

#[derive(Debug, Default)]
struct Seen {
    by_index: HashMap<u64, typ::LogId>,
    replies: HashMap<String, String>,
    violations: Vec<String>,
}

impl Oracle {
    /// A fresh oracle to share between nodes.
    pub fn shared() -> Arc<Oracle> {
        Arc::new(Oracle::default())
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Violations found while applying, in the order found.
    pub fn violations(&self) -> Vec<String> {
        self.seen().violations.clone()
    }
}

impl ApplyObserver for Oracle {
    fn applied(&self, node: u64, log_id: typ::LogId) {
        let mut seen = self.seen();
        let first = *seen.by_index.entry(log_id.index).or_insert(log_id);
        if first != log_id {
            seen.violations.push(format!(
                "state-machine safety: node {node} applied {log_id} at index {}, another node {first}",
                log_id.index
            ));
        }
    }

    fn replied(&self, node: u64, request_id: &str, reply: &Reply) {
        let reply = format!("{reply:?}");
        let mut seen = self.seen();
        let first = seen.replies.entry(request_id.to_string()).or_insert_with(|| reply.clone()).clone();
        if first != reply {
            seen.violations.push(format!(
                "replies: node {node} answered request {request_id} with {reply}, another node with {first}"
            ));
        }
    }
}
