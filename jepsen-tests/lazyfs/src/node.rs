//! One backing object as the mount knows it: an `O_PATH` descriptor that pins the backing inode,
//! and, for a regular file, its un-fsynced data ([`Overlay`]).
//!
//! Reads and writes of a file go through one shared read-write descriptor of the backing file
//! (opened on first use), whatever the mode of the caller's handle: the kernel already enforces
//! that mode, and an fsync through a read-only handle must still be able to write the overlay.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use crate::change::DirFd;
use crate::overlay::Overlay;
use crate::sys;

/// A backing object known to the mount.
#[derive(Debug)]
pub struct Node {
    /// The inode number the kernel knows (1 for the root, the backing inode number otherwise).
    pub ino: u64,
    /// The backing inode number (the journal's directory key).
    pub backing_ino: u64,
    /// What kind of object it is (fixed for an inode's life).
    pub kind: FileType,
    /// The `O_PATH` descriptor pinning the backing inode.
    pub fd: DirFd,
    data: Mutex<FileData>,
}

#[derive(Debug, Default)]
struct FileData {
    io: Option<File>,
    overlay: Option<Overlay>,
}

/// What an fsync of one file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writeback {
    /// Dirty bytes written to the backing file.
    pub bytes: u64,
    /// Whether there was anything to write (and so the backing file was fsynced).
    pub was_dirty: bool,
}

/// The file type of a `st_mode`.
pub fn kind_of(mode: libc::mode_t) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn time(sec: i64, nsec: i64) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::from_nanos(nsec as u64)
    }
}

impl Node {
    /// A node for a backing object whose `O_PATH` descriptor and `st_mode` the caller has.
    pub fn new(ino: u64, backing_ino: u64, mode: libc::mode_t, fd: DirFd) -> Self {
        Node { ino, backing_ino, kind: kind_of(mode), fd, data: Mutex::new(FileData::default()) }
    }

    /// The `O_PATH` descriptor, for `*at` calls relative to a directory node.
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn lock(&self) -> MutexGuard<'_, FileData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the node a read-write descriptor the caller already has (a fresh `create`).
    pub fn adopt_io(&self, file: File) {
        let mut d = self.lock();
        if d.io.is_none() {
            d.io = Some(file);
        }
    }

    fn io<'a>(&self, d: &'a mut FileData) -> io::Result<&'a File> {
        if d.io.is_none() {
            let fd =
                sys::reopen(self.fd.as_fd(), libc::O_RDWR).or_else(|_| sys::reopen(self.fd.as_fd(), libc::O_RDONLY))?;
            d.io = Some(File::from(fd));
        }
        Ok(d.io.as_ref().expect("just set"))
    }

    fn overlay<'a>(&self, d: &'a mut FileData) -> io::Result<&'a mut Overlay> {
        if d.overlay.is_none() {
            let len = self.io(d)?.metadata()?.len();
            d.overlay = Some(Overlay::new(len));
        }
        Ok(d.overlay.as_mut().expect("just set"))
    }

    /// The attributes the kernel sees: the backing object's, with the logical size of a dirty file.
    pub fn attr(&self) -> io::Result<FileAttr> {
        let st = sys::stat_fd(self.fd.as_fd())?;
        let size = self.lock().overlay.as_ref().map_or(st.st_size as u64, Overlay::size);
        Ok(FileAttr {
            ino: INodeNo(self.ino),
            size,
            blocks: (st.st_blocks as u64).max(size.div_ceil(512)),
            atime: time(st.st_atime, st.st_atime_nsec),
            mtime: time(st.st_mtime, st.st_mtime_nsec),
            ctime: time(st.st_ctime, st.st_ctime_nsec),
            crtime: UNIX_EPOCH,
            kind: self.kind,
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: st.st_blksize as u32,
            flags: 0,
        })
    }

    /// Reads up to `len` bytes at `offset` of the logical content.
    pub fn read(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let mut d = self.lock();
        let (buf_len, backing) = match &d.overlay {
            Some(o) => (o.read_len(offset, u64::from(len)), o.backing_range(offset, u64::from(len))),
            None => (u64::from(len), Some((offset, offset + u64::from(len)))),
        };
        let mut buf = vec![0u8; buf_len as usize];
        let mut got = 0usize;
        if let Some((lo, hi)) = backing {
            let file = self.io(&mut d)?;
            let want = (hi - lo) as usize;
            while got < want {
                match file.read_at(&mut buf[got..want], lo + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        match &d.overlay {
            Some(o) => o.apply_to(offset, &mut buf),
            None => buf.truncate(got),
        }
        Ok(buf)
    }

    /// Records a write; nothing reaches the backing file until an fsync.
    pub fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut d = self.lock();
        self.overlay(&mut d)?.write(offset, data);
        Ok(())
    }

    /// Records a size change; nothing reaches the backing file until an fsync.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        let mut d = self.lock();
        self.overlay(&mut d)?.set_len(len);
        Ok(())
    }

    /// The logical size of a regular file (what `fallocate` extends from).
    pub fn size(&self) -> io::Result<u64> {
        let mut d = self.lock();
        Ok(self.overlay(&mut d)?.size())
    }

    /// Dirty bytes held in memory, or `None` when the file has no pending changes.
    pub fn dirty_bytes(&self) -> Option<u64> {
        let d = self.lock();
        d.overlay.as_ref().filter(|o| !o.is_clean()).map(Overlay::dirty_bytes)
    }

    /// fsync/fdatasync: writes the overlay into the backing file, syncs it, and drops the overlay.
    /// A clean file is not synced again (the backing file already holds what is durable).
    pub fn writeback(&self, data_only: bool) -> io::Result<Writeback> {
        let mut d = self.lock();
        let Some(overlay) = d.overlay.take() else {
            return Ok(Writeback { bytes: 0, was_dirty: false });
        };
        if overlay.is_clean() {
            return Ok(Writeback { bytes: 0, was_dirty: false });
        }
        let result = (|| {
            let file = self.io(&mut d)?;
            let plan = overlay.writeback_plan();
            if let Some(len) = plan.truncate_to {
                file.set_len(len)?;
            }
            let mut bytes = 0;
            for (offset, data) in &plan.extents {
                file.write_all_at(data, *offset)?;
                bytes += data.len() as u64;
            }
            if let Some(len) = plan.final_len {
                file.set_len(len)?;
            }
            sys::sync_fd(file.as_fd(), data_only)?;
            Ok(Writeback { bytes, was_dirty: true })
        })();
        if result.is_err() {
            // Keep the logical content readable; the backing file may be half-written now.
            d.overlay = Some(overlay);
        }
        result
    }

    /// The power cut for this file: drops the overlay. Returns the dirty bytes dropped, or
    /// `None` when the file was clean. The read-write descriptor is closed too (no handle is open).
    pub fn drop_dirty(&self) -> Option<u64> {
        let mut d = self.lock();
        d.io = None;
        d.overlay.take().filter(|o| !o.is_clean()).map(|o| o.dirty_bytes())
    }
}
