//! How the benchmark binaries print their reports: text for people, one JSON line for scripts.

use serde::Serialize;

/// Report format (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    /// Lines of text.
    #[default]
    Text,
    /// One JSON document on one line.
    Json,
}

impl Output {
    /// Prints `report`: `text` (which ends with a newline) or its JSON.
    pub fn print<T: Serialize>(self, report: &T, text: impl FnOnce(&T) -> String) -> serde_json::Result<()> {
        match self {
            Output::Text => print!("{}", text(report)),
            Output::Json => println!("{}", serde_json::to_string(report)?),
        }
        Ok(())
    }
}
