//! A small sled 0.34 program for smoke runs on a lazyfs mount, opened as raft-store opens it.
//!
//! `sled_probe write DIR FIRST COUNT [FLUSH_EVERY_MS|none]` opens the database (printing `opened`;
//! recovery may fsync), inserts keys FIRST..FIRST+COUNT, calls `flush()`, prints `flushed`, and then waits (up to 10 minutes) to be killed, so that nothing
//! after the acknowledged flush runs but sled's own periodic flusher thread (every 500 ms by
//! default, as raft-store runs it; `none` turns it off).
//! `sled_probe read DIR` prints how many keys there are and the largest one.

use std::time::Duration;

fn open(dir: &str, flush_every_ms: Option<u64>) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(flush_every_ms)
        .open()
        .expect("open sled")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") if args.len() == 5 || args.len() == 6 => {
            let flush_every_ms = match args.get(5).map(String::as_str) {
                None => Some(500),
                Some("none") => None,
                Some(ms) => Some(ms.parse().expect("FLUSH_EVERY_MS")),
            };
            let db = open(&args[2], flush_every_ms);
            println!("opened");
            let first: u64 = args[3].parse().expect("FIRST");
            let count: u64 = args[4].parse().expect("COUNT");
            for k in first..first + count {
                db.insert(k.to_be_bytes(), vec![7u8; 100]).expect("insert");
            }
            db.flush().expect("flush");
            println!("flushed");
            std::thread::sleep(Duration::from_secs(600));
        }
        Some("read") if args.len() == 3 => {
            let db = open(&args[2], None);
            let last =
                db.last().expect("last").map(|(k, _)| u64::from_be_bytes(k.as_ref().try_into().expect("8 bytes")));
            println!("keys {} last {:?}", db.len(), last);
        }
        _ => {
            eprintln!("usage: sled_probe write DIR FIRST COUNT [FLUSH_EVERY_MS|none] | sled_probe read DIR");
            std::process::exit(2);
        }
    }
}
