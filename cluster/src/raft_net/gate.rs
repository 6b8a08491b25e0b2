//! Whether this node's Raft service takes part in Raft yet. A node with an empty data directory
//! keeps it closed until it knows whether it bootstraps or rejoins (see `node::bootstrap`): it
//! must not vote or acknowledge anything under an identity whose state may have been lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared between the Raft service (which refuses Raft while it is closed) and the bootstrap.
#[derive(Clone, Debug)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    /// A gate that is open (`true`) or still deciding (`false`).
    pub fn new(open: bool) -> Gate {
        Gate(Arc::new(AtomicBool::new(open)))
    }

    /// True once the node takes part in Raft.
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Lets the node take part in Raft (never closed again).
    pub fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
