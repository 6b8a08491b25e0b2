//! Logging set-up for the binaries: tracing to stderr, text or JSON, filtered by `--log-level`
//! unless `RUST_LOG` is set.

use tracing_subscriber::EnvFilter;

use crate::node::LogFormat;

/// Installs the global subscriber.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
