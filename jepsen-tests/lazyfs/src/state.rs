//! The filesystem's shared state: the inode table, the open handles, the namespace journal, the
//! graveyard and the counters, behind one lock.
//!
//! Lock order: the table lock ([`LazyFs::lock`]) before a node's data lock, never the reverse.
//! Reads, writes and file fsyncs take the table lock only to find their node; every namespace
//! change runs entirely under it (so a cut, which holds it, sees no change half-applied).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::change::{Change, Graveyard, GRAVEYARD_NAME};
use crate::journal::Describe as _;
use crate::journal::Journal;
use crate::node::Node;
use crate::sys;

/// How the filesystem treats fsyncs; fixed at mount time except for the delay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// fsync of a file also makes durable the namespace change that named it (its `create`,
    /// `link` or `rename` into place) and those that named its ancestor directories, roughly as
    /// ext4 does in practice (ext4 goes further: it commits every earlier metadata change). Off:
    /// strict POSIX, where only an fsync of the directory does.
    pub durable_create_on_fsync: bool,
    /// Every fsync and fsyncdir sleeps this long first (a slow-disk fault).
    pub fsync_delay: Duration,
}

/// Counts of what the filesystem has seen, for `ctl status`.
#[derive(Debug, Default)]
pub struct Counters {
    /// FUSE fsync requests without datasync.
    pub fsyncs: AtomicU64,
    /// FUSE fsync requests with datasync (fdatasync).
    pub fdatasyncs: AtomicU64,
    /// FUSE fsyncdir requests.
    pub fsyncdirs: AtomicU64,
    /// Power cuts done.
    pub cuts: AtomicU64,
    /// `ctl sync` runs done.
    pub syncs: AtomicU64,
}

/// One entry of a directory listing handed out by `opendir`.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The inode number the kernel sees.
    pub ino: u64,
    /// The entry's type.
    pub kind: fuser::FileType,
    /// The entry's name.
    pub name: std::ffi::OsString,
}

/// An open handle: a file (its node) or a directory listing taken at `opendir`.
#[derive(Debug)]
pub enum Handle {
    /// An open regular file.
    File(Arc<Node>),
    /// An open directory and its entries at open time.
    Dir(Vec<Listed>),
}

/// A node and the kernel's references to it.
#[derive(Debug)]
pub struct Slot {
    /// The node.
    pub node: Arc<Node>,
    /// Lookups not yet forgotten by the kernel.
    pub nlookup: u64,
    /// Open handles on it.
    pub open: u64,
}

/// Everything behind the table lock.
#[derive(Debug)]
pub struct Core {
    /// Known nodes by kernel inode number. A node stays while the kernel knows it, while a handle
    /// is open on it, or while it has dirty data.
    pub nodes: HashMap<u64, Slot>,
    /// Open handles by handle number.
    pub handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Namespace changes not yet durable.
    pub journal: Journal<Change>,
    /// Removed objects kept for undo; `None` once the filesystem is closed.
    pub graveyard: Option<Graveyard>,
}

/// The lazy filesystem: a passthrough over a backing directory that keeps un-fsynced changes
/// undoable (see the crate docs for the semantics).
#[derive(Debug)]
pub struct LazyFs {
    root: Arc<Node>,
    root_dev: u64,
    core: Mutex<Core>,
    /// What has been seen so far.
    pub counters: Counters,
    fsync_delay_ms: AtomicU64,
    durable_create_on_fsync: bool,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl LazyFs {
    /// Opens the backing directory and creates its graveyard. Everything the directory holds
    /// now is taken as durable.
    pub fn open(backing: &Path, options: &Options) -> io::Result<Self> {
        let root_fd = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(backing)
            .map(std::os::fd::OwnedFd::from)?;
        let st = sys::stat_fd(root_fd.as_fd())?;
        let graveyard = Graveyard::create(root_fd.as_fd())?;
        let root = Arc::new(Node::new(1, st.st_ino, st.st_mode, Arc::new(root_fd)));
        let mut nodes = HashMap::new();
        nodes.insert(1, Slot { node: root.clone(), nlookup: 1, open: 0 });
        Ok(LazyFs {
            root,
            root_dev: st.st_dev,
            core: Mutex::new(Core {
                nodes,
                handles: HashMap::new(),
                next_fh: 1,
                journal: Journal::default(),
                graveyard: Some(graveyard),
            }),
            counters: Counters::default(),
            fsync_delay_ms: AtomicU64::new(options.fsync_delay.as_millis().min(u128::from(u64::MAX)) as u64),
            durable_create_on_fsync: options.durable_create_on_fsync,
        })
    }

    /// Takes the table lock.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The root node.
    pub fn root(&self) -> &Arc<Node> {
        &self.root
    }

    /// Whether fsync of a file also settles the change that named it.
    pub fn durable_create_on_fsync(&self) -> bool {
        self.durable_create_on_fsync
    }

    /// The current fsync delay.
    pub fn fsync_delay(&self) -> Duration {
        Duration::from_millis(self.fsync_delay_ms.load(Ordering::Relaxed))
    }

    /// Sets the fsync delay (the slow-disk fault); zero turns it off.
    pub fn set_fsync_delay(&self, delay: Duration) {
        self.fsync_delay_ms.store(delay.as_millis().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    /// Whether `parent/name` is a name the mount shows (the graveyard is hidden).
    pub fn visible(parent: &Node, name: &OsStr) -> bool {
        !(parent.ino == 1 && name == GRAVEYARD_NAME)
    }

    /// The node the kernel calls `ino`.
    pub fn node(&self, core: &Core, ino: u64) -> io::Result<Arc<Node>> {
        core.nodes.get(&ino).map(|s| s.node.clone()).ok_or_else(|| errno(libc::ENOENT))
    }

    /// The kernel inode number of a backing inode.
    fn kernel_ino(&self, backing_ino: u64) -> io::Result<u64> {
        match backing_ino {
            b if b == self.root.backing_ino => Ok(1),
            1 => Err(errno(libc::EIO)), // would collide with the root's number
            b => Ok(b),
        }
    }

    /// The kernel inode number `readdir` reports for a backing entry.
    pub fn listed_ino(&self, backing_ino: u64) -> u64 {
        self.kernel_ino(backing_ino).unwrap_or(backing_ino)
    }

    /// Finds `parent/name` in the backing directory and counts one kernel lookup of it.
    pub fn lookup_in(&self, core: &mut Core, parent: &Node, name: &OsStr) -> io::Result<Arc<Node>> {
        if !Self::visible(parent, name) {
            return Err(errno(libc::ENOENT));
        }
        let st = sys::stat_at(parent.dir(), name)?;
        if st.st_dev != self.root_dev {
            tracing::warn!(?name, "entry on another filesystem than the backing root; refused");
            return Err(errno(libc::EXDEV));
        }
        let ino = self.kernel_ino(st.st_ino)?;
        if let Some(slot) = core.nodes.get_mut(&ino) {
            slot.nlookup += 1;
            return Ok(slot.node.clone());
        }
        let fd = sys::open_path_at(parent.dir(), name)?;
        let st2 = sys::stat_fd(fd.as_fd())?;
        if st2.st_ino != st.st_ino {
            return Err(errno(libc::EAGAIN)); // replaced between stat and open: not by us
        }
        let node = Arc::new(Node::new(ino, st.st_ino, st.st_mode, Arc::new(fd)));
        core.nodes.insert(ino, Slot { node: node.clone(), nlookup: 1, open: 0 });
        Ok(node)
    }

    /// The kernel forgot `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut core = self.lock();
        if let Some(slot) = core.nodes.get_mut(&ino) {
            slot.nlookup = slot.nlookup.saturating_sub(n);
        }
        Self::sweep_one(&mut core, ino);
    }

    /// Drops `ino` from the table when nothing needs it any more: the kernel forgot it, no handle
    /// is open, and it has no dirty data — or its dirty data can never be reached again (the
    /// file has no name left, not even in the graveyard).
    pub fn sweep_one(core: &mut Core, ino: u64) {
        let unused = core.nodes.get(&ino).is_some_and(|s| {
            ino != 1
                && s.nlookup == 0
                && s.open == 0
                && (s.node.dirty_bytes().is_none() || sys::stat_fd(s.node.dir()).is_ok_and(|st| st.st_nlink == 0))
        });
        if unused {
            core.nodes.remove(&ino);
        }
    }

    /// Drops every node nothing needs any more.
    pub fn sweep(core: &mut Core) {
        let inos: Vec<u64> = core.nodes.keys().copied().collect();
        for ino in inos {
            Self::sweep_one(core, ino);
        }
    }

    /// Registers an open handle and returns its number.
    pub fn open_handle(core: &mut Core, ino: u64, handle: Handle) -> u64 {
        let fh = core.next_fh;
        core.next_fh += 1;
        if let Some(slot) = core.nodes.get_mut(&ino) {
            slot.open += 1;
        }
        core.handles.insert(fh, handle);
        fh
    }

    /// Closes a handle.
    pub fn release(&self, ino: u64, fh: u64) {
        let mut core = self.lock();
        if core.handles.remove(&fh).is_some() {
            if let Some(slot) = core.nodes.get_mut(&ino) {
                slot.open = slot.open.saturating_sub(1);
            }
        }
        Self::sweep_one(&mut core, ino);
    }

    /// The node behind an open file handle.
    pub fn file_handle(&self, fh: u64) -> io::Result<Arc<Node>> {
        match self.lock().handles.get(&fh) {
            Some(Handle::File(node)) => Ok(node.clone()),
            Some(Handle::Dir(_)) => Err(errno(libc::EISDIR)),
            None => Err(errno(libc::EBADF)),
        }
    }

    /// Records a namespace change just applied to the backing directory.
    pub fn record(core: &mut Core, dirs: Vec<u64>, subject: Option<u64>, change: Change) {
        tracing::debug!(change = %change.describe(), ?dirs, "namespace change pending");
        core.journal.record(crate::journal::Entry { dirs, subject, undo: change });
    }

    /// The graveyard, or EIO once the filesystem is closed.
    pub fn graveyard(core: &Core) -> io::Result<&Graveyard> {
        core.graveyard.as_ref().ok_or_else(|| errno(libc::EIO))
    }
}
