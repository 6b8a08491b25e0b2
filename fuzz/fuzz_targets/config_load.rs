//! The CNI configuration parser (`plugin::config::load`): stdin, then optionally (after a NUL
//! byte) a flat file that every candidate path returns. Never panics; whatever it accepts is
//! bounded and its ranges survive the trip to the node unchanged.

#![no_main]

use std::io;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use plugin::config::{load, FileSource};

struct OneFile<'a>(Option<&'a [u8]>);

impl FileSource for OneFile<'_> {
    fn read(&self, _path: &Path) -> io::Result<Option<Vec<u8>>> {
        Ok(self.0.map(<[u8]>::to_vec))
    }
}

fuzz_target!(|data: &[u8]| {
    let (stdin, flat) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    match load(stdin, &OneFile(flat)) {
        Ok(loaded) => whereabouts_fuzz::check_config(&loaded.config),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
