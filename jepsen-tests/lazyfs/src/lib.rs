//! lazyfs: a power-loss fault filesystem for the chaos suite.
//!
//! A FUSE passthrough over a backing directory that keeps every change not yet made durable by
//! an fsync undoable, and undoes them all on a "power cut" — the way Jepsen's LazyFS is used,
//! with namespace changes covered too. See the crate README for the full semantics and how they
//! compare with a real disk; in short:
//!
//! - **File data** (writes, truncates, size changes) stays in memory, per file, as dirty extents
//!   over the backing file ([`overlay`]); reads see it. `fsync`/`fdatasync` of the file writes it
//!   into the backing file and fsyncs that. `close`, `flush` and `sync_file_range` do not (the
//!   last never reaches FUSE as anything).
//! - **Namespace changes** (create, mknod, mkdir, unlink, rmdir, rename, link, symlink) are applied
//!   to the backing directory at once and journaled per directory ([`journal`], [`change`]);
//!   `fsync` of the directory makes them durable. Strict POSIX: a file created and fsynced in a
//!   directory never fsynced is gone after a cut (unless `--durable-create-on-fsync`).
//! - **Cut** ([`LazyFs::cut`]): drops all dirty data and undoes all pending namespace changes,
//!   newest first, leaving the backing directory as the last fsyncs left it. The processes using
//!   the mount must have been killed first (a cut waits for their handles to close, then refuses).
//! - **Sync** ([`LazyFs::sync_all`]) makes everything durable; **status** reports what is pending.
//!
//! The binary `lazyfs` mounts ([`mount`]) and talks to a mount's control socket ([`control`]).

pub mod change;
pub mod control;
pub mod fuse;
pub mod journal;
pub mod mount;
pub mod namespace;
pub mod node;
pub mod overlay;
pub mod power;
pub mod state;
pub(crate) mod sys;

pub use control::Client;
pub use mount::{MountConfig, Mounted, OnExit};
pub use power::{CutReport, Status, SyncReport};
pub use state::{LazyFs, Options};
