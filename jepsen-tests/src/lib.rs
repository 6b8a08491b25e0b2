//! whereabouts-rs chaos suite: the history format ([`history`]), an independent model of the
//! allocation rules ([`model`]), a linearizability search ([`wgl`]) and the checker ([`checker`]).

pub mod checker;
pub mod cli;
pub mod history;
pub mod model;
pub mod wgl;
