//! The FUSE face of [`LazyFs`]: request decoding and replies, nothing else.
//!
//! Entries and attributes are given a zero TTL and files are opened without `FOPEN_KEEP_CACHE`,
//! so after a cut the kernel asks again instead of serving names, sizes or pages it cached from
//! before (the callers have been killed, so every file is reopened and its page cache dropped).

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenAccMode, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::namespace::Caller;
use crate::state::{Handle, LazyFs};
use crate::sys;

const TTL: Duration = Duration::ZERO;

/// The filesystem handed to `fuser`: a shared [`LazyFs`] (the control server holds it too).
#[derive(Debug, Clone)]
pub struct Fuse(pub Arc<LazyFs>);

fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid() }
}

fn err(e: io::Error) -> Errno {
    Errno::from(e)
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        Some(TimeOrNow::Now) => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: i64::from(d.subsec_nanos()) }
        }
    }
}

impl Fuse {
    fn entry(reply: ReplyEntry, result: io::Result<fuser::FileAttr>) {
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn empty(reply: ReplyEmpty, result: io::Result<()>) {
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn node(&self, ino: INodeNo) -> io::Result<Arc<crate::node::Node>> {
        let core = self.0.lock();
        self.0.node(&core, ino.0)
    }

    fn setattr_inner(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        ids: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> io::Result<fuser::FileAttr> {
        let node = self.node(ino)?;
        if let Some(size) = size {
            match node.kind {
                FileType::RegularFile => node.set_len(size)?,
                FileType::Directory => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
                _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
            }
        }
        if let Some(mode) = mode {
            if node.kind != FileType::Symlink {
                sys::chmod_fd(node.dir(), mode & 0o7777)?;
            }
        }
        if ids.0.is_some() || ids.1.is_some() {
            sys::chown_fd(node.dir(), ids.0.unwrap_or(u32::MAX), ids.1.unwrap_or(u32::MAX))?;
        }
        if (times.0.is_some() || times.1.is_some()) && node.kind != FileType::Symlink {
            sys::utimens_fd(node.dir(), &[timespec(times.0), timespec(times.1)])?;
        }
        node.attr()
    }

    fn fsync_inner(&self, ino: INodeNo, datasync: bool) -> io::Result<()> {
        let counter = if datasync { &self.0.counters.fdatasyncs } else { &self.0.counters.fsyncs };
        counter.fetch_add(1, Ordering::Relaxed);
        let delay = self.0.fsync_delay();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let node = self.node(ino)?;
        let wb = node.writeback(datasync)?;
        tracing::trace!(ino = ino.0, datasync, bytes = wb.bytes, "fsync");
        if self.0.durable_create_on_fsync() {
            self.0.settle_subject(&node);
        }
        Ok(())
    }
}

impl Filesystem for Fuse {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        Self::entry(reply, self.0.lookup(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.0.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino).and_then(|n| n.attr()) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(err(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.setattr_inner(ino, mode, (uid, gid), size, (atime, mtime)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(err(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.node(ino).and_then(|n| sys::read_link_fd(n.dir())) {
            Ok(target) => reply.data(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str())),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        Self::entry(reply, self.0.mknod(parent.0, name, mode, rdev, caller(req)));
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        Self::entry(reply, self.0.mkdir(parent.0, name, mode, caller(req)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::empty(reply, self.0.unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::empty(reply, self.0.rmdir(parent.0, name));
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        Self::entry(reply, self.0.symlink(parent.0, link_name, target.as_os_str(), caller(req)));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        Self::empty(reply, self.0.rename(parent.0, name, newparent.0, newname, flags.bits()));
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        Self::entry(reply, self.0.link(ino.0, newparent.0, newname));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| {
            let mut core = self.0.lock();
            let node = self.0.node(&core, ino.0)?;
            if node.kind != FileType::RegularFile {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            if flags.0 & libc::O_TRUNC != 0 && flags.acc_mode() != OpenAccMode::O_RDONLY {
                node.set_len(0)?;
            }
            Ok(LazyFs::open_handle(&mut core, ino.0, Handle::File(node)))
        })();
        match result {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(err(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.file_handle(fh.0).and_then(|n| n.read(offset, size)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(err(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.0.file_handle(fh.0).and_then(|n| n.write(offset, data)) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(err(e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok(); // close() makes nothing durable
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.0.release(ino.0, fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        Self::empty(reply, self.fsync_inner(ino, datasync));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let result = self.0.list(ino.0).map(|entries| {
            let mut core = self.0.lock();
            LazyFs::open_handle(&mut core, ino.0, Handle::Dir(entries))
        });
        match result {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(err(e)),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let core = self.0.lock();
        let Some(Handle::Dir(entries)) = core.handles.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.0.release(ino.0, fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.0.counters.fsyncdirs.fetch_add(1, Ordering::Relaxed);
        let delay = self.0.fsync_delay();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Self::empty(reply, self.0.fsync_dir(ino.0).map(drop));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match sys::statvfs_fd(self.0.root().dir()) {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(err(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.0.create(parent.0, name, mode, flags, caller(req)) {
            Ok((attr, fh)) => reply.created(&TTL, &attr, Generation(0), FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(err(e)),
        }
    }

    // Extended attributes are not modelled: ENOSYS makes the kernel stop asking (it would
    // otherwise ask for `security.capability` on every write).
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.0.file_handle(fh.0).and_then(|node| match mode {
            0 => {
                let end = offset.saturating_add(length);
                if end > node.size()? {
                    node.set_len(end)?;
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        });
        Self::empty(reply, result);
    }
}
