//! whereabouts-rs chaos suite: the history format ([`history`]), an independent model of the
//! allocation rules ([`model`]), a linearizability search ([`wgl`]), the checker ([`checker`]),
//! the chaos harness that runs real nodes in network namespaces under faults ([`harness`]) and
//! the deterministic simulation of Raft + the IPAM state machine ([`sim`]); both drive the same
//! client [`workload`].

pub mod checker;
pub mod cli;
pub mod harness;
pub mod history;
pub mod model;
pub mod rng;
pub mod sim;
pub mod wgl;
pub mod workload;
