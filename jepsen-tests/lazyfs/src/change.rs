//! Namespace changes as recorded in the journal: how to undo each on a cut, what to clean up
//! once it is durable, and the graveyard that keeps removed objects restorable.
//!
//! A removal (`unlink`, `rmdir`, the target of a replacing `rename`) does not delete the backing
//! object: it moves (or, for a replaced non-directory, hard-links) it into the graveyard, a hidden
//! directory at the backing root, so a cut can put it back with its durable content. Once the
//! removal is durable the graveyard entry is deleted for real.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::sys;

/// The graveyard's name at the backing root; hidden from the mount.
pub const GRAVEYARD_NAME: &str = ".lazyfs-graveyard";

/// A directory descriptor shared by the inode table and the journal entries that name it.
pub type DirFd = Arc<OwnedFd>;

/// Where removed objects wait until their removal is durable (see the module docs).
#[derive(Debug)]
pub struct Graveyard {
    dir: OwnedFd,
    next: AtomicU64,
}

/// The name of one object in the graveyard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grave(OsString);

impl Graveyard {
    /// Creates an empty graveyard under `root`. Leftovers of an earlier run (lazyfs itself
    /// crashed) are deleted: what the backing directory held then is taken as durable.
    pub fn create(root: BorrowedFd<'_>) -> io::Result<Self> {
        let name = OsStr::new(GRAVEYARD_NAME);
        sys::remove_tree_at(root, name)?;
        sys::mkdir_at(root, name, 0o700)?;
        let dir = sys::open_at(root, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)?;
        Ok(Graveyard { dir, next: AtomicU64::new(0) })
    }

    fn fresh(&self) -> Grave {
        Grave(format!("g{}", self.next.fetch_add(1, Ordering::Relaxed)).into())
    }

    /// Moves `dir/name` into the graveyard.
    pub fn bury(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Grave> {
        let grave = self.fresh();
        sys::rename_at(dir, name, self.dir.as_fd(), &grave.0, libc::RENAME_NOREPLACE)?;
        Ok(grave)
    }

    /// Hard-links the non-directory `dir/name` into the graveyard, leaving the name in place.
    pub fn bury_link(&self, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Grave> {
        let grave = self.fresh();
        sys::link_at(dir, name, self.dir.as_fd(), &grave.0)?;
        Ok(grave)
    }

    /// Moves a buried object back to `dir/name` (which must be free).
    pub fn exhume(&self, grave: &Grave, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
        sys::rename_at(self.dir.as_fd(), &grave.0, dir, name, libc::RENAME_NOREPLACE)
    }

    /// Deletes a buried object for good.
    pub fn delete(&self, grave: &Grave) -> io::Result<()> {
        sys::remove_tree_at(self.dir.as_fd(), &grave.0)
    }

    /// How many objects are buried.
    pub fn len(&self) -> io::Result<usize> {
        Ok(sys::list_dir(self.dir.as_fd())?.len())
    }

    /// True when nothing is buried.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes the (by then empty) graveyard directory from the backing root.
    pub fn remove(self, root: BorrowedFd<'_>) -> io::Result<()> {
        drop(self.dir);
        sys::remove_tree_at(root, OsStr::new(GRAVEYARD_NAME))
    }
}

/// One applied namespace change and how to take it back.
#[derive(Debug)]
pub enum Change {
    /// `create`, `mknod`, `symlink`, `link`: a new name; undone by unlinking it.
    Created {
        /// The directory holding the new name.
        parent: DirFd,
        /// The new name.
        name: OsString,
    },
    /// `mkdir`: a new directory; undone by removing it with whatever it holds by then.
    MadeDir {
        /// The directory holding the new directory.
        parent: DirFd,
        /// The new directory's name.
        name: OsString,
    },
    /// `unlink`, `rmdir`: the object waits in the graveyard; undone by moving it back.
    Removed {
        /// The directory that held the name.
        parent: DirFd,
        /// The removed name.
        name: OsString,
        /// Where the object waits.
        grave: Grave,
    },
    /// `rename` (plain or `RENAME_NOREPLACE`); undone by renaming back and restoring the
    /// object it replaced, if any.
    Renamed {
        /// The source directory.
        from_dir: DirFd,
        /// The source name.
        from: OsString,
        /// The target directory.
        to_dir: DirFd,
        /// The target name.
        to: OsString,
        /// The replaced target, waiting in the graveyard.
        replaced: Option<Grave>,
    },
    /// `rename` with `RENAME_EXCHANGE`; undone by exchanging again.
    Exchanged {
        /// One directory.
        a_dir: DirFd,
        /// The name in it.
        a: OsString,
        /// The other directory.
        b_dir: DirFd,
        /// The name in it.
        b: OsString,
    },
}

impl Change {
    /// Takes the change back. Called newest first, so each directory is as the change left it.
    pub fn undo(&self, graveyard: &Graveyard) -> io::Result<()> {
        match self {
            Change::Created { parent, name } => sys::unlink_at(parent.as_fd(), name, 0),
            Change::MadeDir { parent, name } => sys::remove_tree_at(parent.as_fd(), name),
            Change::Removed { parent, name, grave } => graveyard.exhume(grave, parent.as_fd(), name),
            Change::Renamed { from_dir, from, to_dir, to, replaced } => {
                sys::rename_at(to_dir.as_fd(), to, from_dir.as_fd(), from, libc::RENAME_NOREPLACE)?;
                match replaced {
                    Some(grave) => graveyard.exhume(grave, to_dir.as_fd(), to),
                    None => Ok(()),
                }
            }
            Change::Exchanged { a_dir, a, b_dir, b } => {
                sys::rename_at(a_dir.as_fd(), a, b_dir.as_fd(), b, libc::RENAME_EXCHANGE)
            }
        }
    }

    /// The directories whose entries the change altered.
    pub fn dirs(&self) -> Vec<&DirFd> {
        match self {
            Change::Created { parent, .. } | Change::MadeDir { parent, .. } | Change::Removed { parent, .. } => {
                vec![parent]
            }
            Change::Renamed { from_dir, to_dir, .. } => vec![from_dir, to_dir],
            Change::Exchanged { a_dir, b_dir, .. } => vec![a_dir, b_dir],
        }
    }

    /// Cleans up after the change became durable: deletes the graveyard entry it kept.
    pub fn settle(&self, graveyard: &Graveyard) -> io::Result<()> {
        match self {
            Change::Removed { grave, .. } | Change::Renamed { replaced: Some(grave), .. } => graveyard.delete(grave),
            _ => Ok(()),
        }
    }
}

impl crate::journal::Describe for Change {
    fn describe(&self) -> String {
        match self {
            Change::Created { name, .. } => format!("create {name:?}"),
            Change::MadeDir { name, .. } => format!("mkdir {name:?}"),
            Change::Removed { name, .. } => format!("remove {name:?}"),
            Change::Renamed { from, to, replaced, .. } => {
                format!("rename {from:?} -> {to:?}{}", if replaced.is_some() { " (replacing)" } else { "" })
            }
            Change::Exchanged { a, b, .. } => format!("exchange {a:?} <-> {b:?}"),
        }
    }
}
