//! Namespace operations: each is applied to the backing directory at once and recorded in the
//! journal with its undo, under the table lock; `fsyncdir` settles them.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use fuser::{FileAttr, FileType};

use crate::change::Change;
use crate::journal::Describe as _;
use crate::node::Node;
use crate::state::{Core, Handle, LazyFs, Listed};
use crate::sys;

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Who asked: new objects get the caller's ownership, as on a local filesystem.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The caller's uid.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
}

fn dedup(mut dirs: Vec<u64>) -> Vec<u64> {
    dirs.sort_unstable();
    dirs.dedup();
    dirs
}

impl LazyFs {
    fn parent(&self, core: &Core, ino: u64) -> io::Result<Arc<Node>> {
        let node = self.node(core, ino)?;
        if node.kind != FileType::Directory {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(node)
    }

    fn new_name(parent: &Node, name: &OsStr) -> io::Result<()> {
        if Self::visible(parent, name) {
            Ok(())
        } else {
            Err(errno(libc::EPERM))
        }
    }

    fn give_to(parent: &Node, name: &OsStr, caller: Caller) {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 && (caller.uid, caller.gid) != (0, 0) {
            if let Err(e) = sys::chown_at(parent.dir(), name, caller.uid, caller.gid) {
                tracing::warn!(?name, error = %e, "could not give a new object to its creator");
            }
        }
    }

    /// Looks `name` up in `parent` and counts one kernel lookup.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        let node = self.lookup_in(&mut core, &p, name)?;
        node.attr()
    }

    /// Finishes a change that made `parent/name`: records it and looks the new object up.
    fn made(&self, core: &mut Core, p: &Arc<Node>, name: &OsStr, change: Change) -> io::Result<Arc<Node>> {
        let st = sys::stat_at(p.dir(), name)?;
        Self::record(core, vec![p.backing_ino], Some(st.st_ino), change);
        self.lookup_in(core, p, name)
    }

    /// `mkdir`.
    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32, caller: Caller) -> io::Result<FileAttr> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        Self::new_name(&p, name)?;
        sys::mkdir_at(p.dir(), name, mode & 0o7777)?;
        Self::give_to(&p, name, caller);
        let change = Change::MadeDir { parent: p.fd.clone(), name: name.to_owned() };
        self.made(&mut core, &p, name, change)?.attr()
    }

    /// `mknod` (regular files, fifos, sockets, devices).
    pub fn mknod(&self, parent: u64, name: &OsStr, mode: u32, rdev: u32, caller: Caller) -> io::Result<FileAttr> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        Self::new_name(&p, name)?;
        sys::mknod_at(p.dir(), name, mode, libc::dev_t::from(rdev))?;
        Self::give_to(&p, name, caller);
        let change = Change::Created { parent: p.fd.clone(), name: name.to_owned() };
        self.made(&mut core, &p, name, change)?.attr()
    }

    /// `symlink`.
    pub fn symlink(&self, parent: u64, name: &OsStr, target: &OsStr, caller: Caller) -> io::Result<FileAttr> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        Self::new_name(&p, name)?;
        sys::symlink_at(target, p.dir(), name)?;
        Self::give_to(&p, name, caller);
        let change = Change::Created { parent: p.fd.clone(), name: name.to_owned() };
        self.made(&mut core, &p, name, change)?.attr()
    }

    /// `link`: a new name for an existing object.
    pub fn link(&self, ino: u64, newparent: u64, newname: &OsStr) -> io::Result<FileAttr> {
        let mut core = self.lock();
        let node = self.node(&core, ino)?;
        let p = self.parent(&core, newparent)?;
        Self::new_name(&p, newname)?;
        sys::link_fd(node.dir(), p.dir(), newname)?;
        let change = Change::Created { parent: p.fd.clone(), name: newname.to_owned() };
        self.made(&mut core, &p, newname, change)?.attr()
    }

    /// `create`: makes (or, without `O_EXCL`, opens) a regular file and opens a handle on it.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> io::Result<(FileAttr, u64)> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        Self::new_name(&p, name)?;
        let excl = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW;
        let node = match sys::open_at(p.dir(), name, excl, mode & 0o7777) {
            Ok(fd) => {
                Self::give_to(&p, name, caller);
                let change = Change::Created { parent: p.fd.clone(), name: name.to_owned() };
                let node = self.made(&mut core, &p, name, change)?;
                node.adopt_io(File::from(fd));
                node
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                let node = self.lookup_in(&mut core, &p, name)?;
                match node.kind {
                    FileType::RegularFile => {}
                    FileType::Directory => return Err(errno(libc::EISDIR)),
                    _ => return Err(errno(libc::EEXIST)),
                }
                if flags & libc::O_TRUNC != 0 {
                    node.set_len(0)?;
                }
                node
            }
            Err(e) => return Err(e),
        };
        let fh = Self::open_handle(&mut core, node.ino, Handle::File(node.clone()));
        Ok((node.attr()?, fh))
    }

    /// `unlink`: the object moves to the graveyard until the removal is durable.
    pub fn unlink(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        if !Self::visible(&p, name) {
            return Err(errno(libc::ENOENT));
        }
        let st = sys::stat_at(p.dir(), name)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(errno(libc::EISDIR));
        }
        let grave = Self::graveyard(&core)?.bury(p.dir(), name)?;
        let change = Change::Removed { parent: p.fd.clone(), name: name.to_owned(), grave };
        Self::record(&mut core, vec![p.backing_ino], None, change);
        Ok(())
    }

    /// `rmdir`: the (empty) directory moves to the graveyard. Its removal touches the directory
    /// itself too, so it settles together with the removals of its entries.
    pub fn rmdir(&self, parent: u64, name: &OsStr) -> io::Result<()> {
        let mut core = self.lock();
        let p = self.parent(&core, parent)?;
        if !Self::visible(&p, name) {
            return Err(errno(libc::ENOENT));
        }
        let st = sys::stat_at(p.dir(), name)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(errno(libc::ENOTDIR));
        }
        let dir = sys::open_path_at(p.dir(), name)?;
        if !sys::list_dir(dir.as_fd())?.is_empty() {
            return Err(errno(libc::ENOTEMPTY));
        }
        let grave = Self::graveyard(&core)?.bury(p.dir(), name)?;
        let change = Change::Removed { parent: p.fd.clone(), name: name.to_owned(), grave };
        Self::record(&mut core, dedup(vec![p.backing_ino, st.st_ino]), None, change);
        Ok(())
    }

    /// `rename`, with `RENAME_NOREPLACE` and `RENAME_EXCHANGE` (not `RENAME_WHITEOUT`). A replaced
    /// target moves to the graveyard (a non-directory is hard-linked there first, so the target
    /// name never disappears).
    pub fn rename(&self, parent: u64, name: &OsStr, newparent: u64, newname: &OsStr, flags: u32) -> io::Result<()> {
        let mut core = self.lock();
        let from = self.parent(&core, parent)?;
        let to = self.parent(&core, newparent)?;
        if !Self::visible(&from, name) {
            return Err(errno(libc::ENOENT));
        }
        Self::new_name(&to, newname)?;
        let src = sys::stat_at(from.dir(), name)?;
        let dirs = dedup(vec![from.backing_ino, to.backing_ino]);
        if flags & libc::RENAME_WHITEOUT != 0 {
            return Err(errno(libc::EINVAL));
        }
        if flags & libc::RENAME_EXCHANGE != 0 {
            sys::rename_at(from.dir(), name, to.dir(), newname, libc::RENAME_EXCHANGE)?;
            let change = Change::Exchanged {
                a_dir: from.fd.clone(),
                a: name.to_owned(),
                b_dir: to.fd.clone(),
                b: newname.to_owned(),
            };
            Self::record(&mut core, dirs, None, change);
            return Ok(());
        }
        let target = match sys::stat_at(to.dir(), newname) {
            Ok(st) => Some(st),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let renamed = |replaced| Change::Renamed {
            from_dir: from.fd.clone(),
            from: name.to_owned(),
            to_dir: to.fd.clone(),
            to: newname.to_owned(),
            replaced,
        };
        let Some(target) = target else {
            sys::rename_at(from.dir(), name, to.dir(), newname, libc::RENAME_NOREPLACE)?;
            Self::record(&mut core, dirs, Some(src.st_ino), renamed(None));
            return Ok(());
        };
        if flags & libc::RENAME_NOREPLACE != 0 {
            return Err(errno(libc::EEXIST));
        }
        if target.st_ino == src.st_ino {
            return Ok(()); // two names of one object: rename does nothing
        }
        let src_dir = src.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let target_dir = target.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let graveyard = Self::graveyard(&core)?;
        let (grave, mut dirs) = match (src_dir, target_dir) {
            (false, true) => return Err(errno(libc::EISDIR)),
            (true, false) => return Err(errno(libc::ENOTDIR)),
            (false, false) => {
                let grave = graveyard.bury_link(to.dir(), newname)?;
                if let Err(e) = sys::rename_at(from.dir(), name, to.dir(), newname, 0) {
                    let _ = graveyard.delete(&grave);
                    return Err(e);
                }
                (grave, dirs)
            }
            (true, true) => {
                let victim = sys::open_path_at(to.dir(), newname)?;
                if !sys::list_dir(victim.as_fd())?.is_empty() {
                    return Err(errno(libc::ENOTEMPTY));
                }
                let grave = graveyard.bury(to.dir(), newname)?;
                if let Err(e) = sys::rename_at(from.dir(), name, to.dir(), newname, libc::RENAME_NOREPLACE) {
                    let _ = graveyard.exhume(&grave, to.dir(), newname);
                    return Err(e);
                }
                let mut dirs = dirs;
                dirs.push(target.st_ino);
                (grave, dirs)
            }
        };
        dirs = dedup(dirs);
        Self::record(&mut core, dirs, Some(src.st_ino), renamed(Some(grave)));
        Ok(())
    }

    /// `fsyncdir`: settles the directory's pending changes (see [`crate::journal`]) and fsyncs
    /// the backing directory.
    pub fn fsync_dir(&self, ino: u64) -> io::Result<usize> {
        let mut core = self.lock();
        let node = self.parent(&core, ino)?;
        let settled = core.journal.settle_dir(node.backing_ino);
        Self::settle_all(&core, &settled);
        drop(core);
        let dir = sys::reopen(node.dir(), libc::O_RDONLY | libc::O_DIRECTORY)?;
        sys::sync_fd(dir.as_fd(), false)?;
        Ok(settled.len())
    }

    /// After an fsync of a file with `--durable-create-on-fsync`: settles the change that named
    /// it and those that named its ancestors ([`crate::journal::Journal::settle_named`]).
    pub fn settle_subject(&self, node: &Node) -> usize {
        let mut core = self.lock();
        let settled = core.journal.settle_named(node.backing_ino);
        Self::settle_all(&core, &settled);
        settled.len()
    }

    /// Deletes the graveyard entries of changes that just became durable.
    pub fn settle_all(core: &Core, settled: &[crate::journal::Entry<Change>]) {
        let Some(graveyard) = core.graveyard.as_ref() else { return };
        for entry in settled {
            tracing::debug!(change = %entry.undo.describe(), "namespace change durable");
            if let Err(e) = entry.undo.settle(graveyard) {
                tracing::warn!(change = %entry.undo.describe(), error = %e, "could not delete a graveyard entry");
            }
        }
    }

    /// The entries of a directory, `.` and `..` first, the graveyard left out.
    pub fn list(&self, ino: u64) -> io::Result<Vec<Listed>> {
        let node = {
            let core = self.lock();
            self.parent(&core, ino)?
        };
        let up = if ino == 1 { 1 } else { self.listed_ino(sys::stat_at(node.dir(), OsStr::new(".."))?.st_ino) };
        let mut out = vec![
            Listed { ino, kind: FileType::Directory, name: ".".into() },
            Listed { ino: up, kind: FileType::Directory, name: "..".into() },
        ];
        for entry in sys::list_dir(node.dir())? {
            if !Self::visible(&node, &entry.name) {
                continue;
            }
            let kind = fuser::FileType::from_std(entry.kind).unwrap_or(FileType::RegularFile);
            out.push(Listed { ino: self.listed_ino(entry.ino), kind, name: entry.name });
        }
        Ok(out)
    }
}
