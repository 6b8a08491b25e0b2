//! File data across a power cut: only what an fsync or fdatasync of the file wrote survives.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use common::{fsync_dir, write_file, Mount};

/// A mount with `f` created, filled with `content`, fsynced, and its directory fsynced.
fn mount_with_durable_file(content: &[u8]) -> Mount {
    let m = Mount::start(&[]);
    write_file(&m.path("f"), content, Some(false));
    fsync_dir(&m.mnt);
    assert_eq!(m.status().pending_namespace_ops, 0);
    m
}

#[test]
fn write_without_fsync_is_gone_after_a_cut() {
    if !common::can_mount("write_without_fsync_is_gone_after_a_cut") {
        return;
    }
    let m = mount_with_durable_file(b"durable");
    let mut f = OpenOptions::new().append(true).open(m.path("f")).unwrap();
    f.write_all(b" and not").unwrap();
    drop(f);
    assert_eq!(fs::read(m.path("f")).unwrap(), b"durable and not");
    assert_eq!(fs::read(m.backing_path("f")).unwrap(), b"durable", "nothing reaches the backing file before fsync");
    let report = m.cut();
    assert_eq!((report.dropped_files, report.dropped_bytes), (1, 8));
    assert_eq!(fs::read(m.path("f")).unwrap(), b"durable");
    assert_eq!(fs::read(m.backing_path("f")).unwrap(), b"durable");
}

#[test]
fn write_with_fsync_is_kept_after_a_cut() {
    if !common::can_mount("write_with_fsync_is_kept_after_a_cut") {
        return;
    }
    let m = mount_with_durable_file(b"one");
    let f = OpenOptions::new().write(true).open(m.path("f")).unwrap();
    f.write_all_at(b"two", 3).unwrap();
    f.sync_all().unwrap();
    f.write_all_at(b"three", 6).unwrap();
    drop(f);
    let before = m.status();
    assert_eq!((before.fsyncs, before.dirty_files, before.dirty_bytes), (2, 1, 5));
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"onetwo");
}

#[test]
fn write_with_fdatasync_is_kept_after_a_cut() {
    if !common::can_mount("write_with_fdatasync_is_kept_after_a_cut") {
        return;
    }
    let m = mount_with_durable_file(b"");
    let f = OpenOptions::new().write(true).open(m.path("f")).unwrap();
    f.write_all_at(&[9u8; 100_000], 0).unwrap();
    f.sync_data().unwrap();
    drop(f);
    assert_eq!(m.status().fdatasyncs, 1);
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), vec![9u8; 100_000]);
}

#[test]
fn fsync_through_a_read_only_handle_makes_writes_durable() {
    if !common::can_mount("fsync_through_a_read_only_handle_makes_writes_durable") {
        return;
    }
    let m = mount_with_durable_file(b"old");
    fs::write(m.path("f"), b"new!").unwrap();
    fs::File::open(m.path("f")).unwrap().sync_all().unwrap();
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"new!");
}

#[test]
fn overwrite_in_the_middle_then_cut_brings_the_old_bytes_back() {
    if !common::can_mount("overwrite_in_the_middle_then_cut_brings_the_old_bytes_back") {
        return;
    }
    let old: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    let m = mount_with_durable_file(&old);
    let mut f = OpenOptions::new().read(true).write(true).open(m.path("f")).unwrap();
    f.seek(SeekFrom::Start(30_000)).unwrap();
    f.write_all(&[0xAA; 5000]).unwrap();
    let mut now = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut now).unwrap();
    assert_eq!(&now[30_000..35_000], &[0xAA; 5000][..]);
    assert_eq!(&now[..30_000], &old[..30_000]);
    drop(f);
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), old);
}

#[test]
fn truncate_then_cut_brings_the_old_size_and_bytes_back() {
    if !common::can_mount("truncate_then_cut_brings_the_old_size_and_bytes_back") {
        return;
    }
    let m = mount_with_durable_file(b"0123456789");
    let f = OpenOptions::new().write(true).open(m.path("f")).unwrap();
    f.set_len(3).unwrap();
    f.set_len(6).unwrap();
    drop(f);
    assert_eq!(fs::read(m.path("f")).unwrap(), b"012\0\0\0", "a shrink then an extension reads zeros");
    assert_eq!(fs::metadata(m.path("f")).unwrap().len(), 6);
    m.cut();
    assert_eq!(fs::metadata(m.path("f")).unwrap().len(), 10);
    assert_eq!(fs::read(m.path("f")).unwrap(), b"0123456789");
}

#[test]
fn truncate_with_fsync_is_kept_after_a_cut() {
    if !common::can_mount("truncate_with_fsync_is_kept_after_a_cut") {
        return;
    }
    let m = mount_with_durable_file(b"0123456789");
    let f = OpenOptions::new().write(true).truncate(true).open(m.path("f")).unwrap();
    f.write_all_at(b"ab", 4).unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.cut();
    assert_eq!(fs::read(m.path("f")).unwrap(), b"\0\0\0\0ab");
}

#[test]
fn close_does_not_make_data_durable_and_a_remount_keeps_only_fsynced_data() {
    if !common::can_mount("close_does_not_make_data_durable_and_a_remount_keeps_only_fsynced_data") {
        return;
    }
    let mut m = mount_with_durable_file(b"kept");
    fs::write(m.path("f"), b"lost on exit").unwrap();
    assert_eq!(m.status().dirty_files, 1);
    m.remount(); // SIGTERM: the default --on-exit cut drops pending changes
    assert_eq!(fs::read(m.path("f")).unwrap(), b"kept");
    assert_eq!(m.status().fsyncs, 0, "a fresh process counts afresh");
}

#[test]
fn sync_makes_everything_durable() {
    if !common::can_mount("sync_makes_everything_durable") {
        return;
    }
    let m = Mount::start(&[]);
    fs::create_dir(m.path("d")).unwrap();
    fs::write(m.path("d/f"), b"synced by ctl").unwrap();
    let s = m.status();
    assert_eq!((s.dirty_files, s.pending_namespace_ops), (1, 2));
    let report = m.client().sync().unwrap();
    assert_eq!((report.files, report.bytes, report.namespace_ops), (1, 13, 2));
    m.cut();
    assert_eq!(fs::read(m.path("d/f")).unwrap(), b"synced by ctl");
}

#[test]
fn concurrent_writers_keep_exactly_what_each_last_fsynced() {
    if !common::can_mount("concurrent_writers_keep_exactly_what_each_last_fsynced") {
        return;
    }
    let m = Mount::start(&[]);
    for i in 0..4 {
        write_file(&m.path(&format!("w{i}")), b"", Some(false));
    }
    fsync_dir(&m.mnt);
    let durable: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|i| {
                let path = m.path(&format!("w{i}"));
                s.spawn(move || {
                    let f = OpenOptions::new().write(true).open(&path).unwrap();
                    let mut content = Vec::new();
                    let mut durable = Vec::new();
                    for round in 0..150u32 {
                        let chunk = vec![i.wrapping_mul(31).wrapping_add(round as u8); 1 + (round as usize * 7) % 300];
                        f.write_all_at(&chunk, content.len() as u64).unwrap();
                        content.extend_from_slice(&chunk);
                        if round % 3 != 2 {
                            f.sync_data().unwrap();
                            durable = content.clone();
                        }
                    }
                    durable
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(m.status().dirty_files > 0);
    m.cut();
    for (i, expected) in durable.iter().enumerate() {
        assert_eq!(&fs::read(m.path(&format!("w{i}"))).unwrap(), expected, "writer {i}");
    }
    assert_eq!(m.status().fdatasyncs, 400);
}
