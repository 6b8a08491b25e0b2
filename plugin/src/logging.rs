//! Where the plugin logs: `log_file` (appended) or stderr, never stdout (which carries only the
//! CNI result). Levels follow whereabouts' names (`debug`, `verbose`, `error`, `panic`) plus the
//! usual `info`/`warn`/`trace`.

use std::fs::OpenOptions;

use tracing::level_filters::LevelFilter;
use tracing::Dispatch;

use crate::env::SharedWriter;

/// The level used when `log_level` is unset.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::INFO;

/// Maps a `log_level` value; `None` for unknown names (the caller warns and uses the default).
pub fn level(name: &str) -> Option<LevelFilter> {
    Some(match name.to_ascii_lowercase().as_str() {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "verbose" | "info" => LevelFilter::INFO,
        "warn" | "warning" => LevelFilter::WARN,
        "error" | "panic" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        _ => return None,
    })
}

/// A subscriber writing to `log_file` when given and writable, else to `stderr`. Returns the
/// problems met (unknown level, unwritable file) so the caller logs them through it.
pub fn dispatch(log_file: Option<&str>, log_level: Option<&str>, stderr: SharedWriter) -> (Dispatch, Vec<String>) {
    let mut problems = Vec::new();
    let filter = match log_level {
        None => DEFAULT_LEVEL,
        Some(name) => level(name).unwrap_or_else(|| {
            problems.push(format!("log_level {name:?} is unknown; using {DEFAULT_LEVEL}"));
            DEFAULT_LEVEL
        }),
    };
    let writer = match log_file {
        None => stderr,
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => SharedWriter::new(file),
            Err(e) => {
                problems.push(format!("log_file {path:?} cannot be opened ({e}); logging to stderr"));
                stderr
            }
        },
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(move || writer.clone())
        .finish();
    (Dispatch::new(subscriber), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whereabouts_level_names_are_understood() {
        assert_eq!(level("debug"), Some(LevelFilter::DEBUG));
        assert_eq!(level("verbose"), Some(LevelFilter::INFO));
        assert_eq!(level("ERROR"), Some(LevelFilter::ERROR));
        assert_eq!(level("panic"), Some(LevelFilter::ERROR));
        assert_eq!(level("loud"), None);
    }

    #[test]
    fn logs_go_to_the_file_and_bad_files_fall_back() {
        let dir = std::env::temp_dir().join(format!("wb-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("whereabouts.log");
        let (d, problems) = dispatch(file.to_str(), Some("debug"), SharedWriter::new(std::io::sink()));
        assert!(problems.is_empty());
        tracing::dispatcher::with_default(&d, || tracing::debug!("hello file"));
        assert!(std::fs::read_to_string(&file).unwrap().contains("hello file"));
        let (_, problems) = dispatch(Some("/nonexistent/dir/x.log"), Some("loud"), SharedWriter::new(std::io::sink()));
        assert_eq!(problems.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
