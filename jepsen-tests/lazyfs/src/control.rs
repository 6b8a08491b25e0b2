//! The control socket: how a test or the chaos harness cuts the power, syncs, reads the status
//! and sets the fsync delay of a running mount.
//!
//! Protocol: one request line per connection (`cut [WAIT_MS]`, `sync`, `status`, `delay MS`), one
//! JSON [`Response`] line back, then the server closes. Requests are served one at a time, so a
//! cut returns only when it is done.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::power::{CutReport, Status, SyncReport};
use crate::state::LazyFs;

/// How long a cut waits for open handles to close unless told otherwise.
pub const DEFAULT_CUT_WAIT: Duration = Duration::from_secs(10);

/// How long either side waits on the socket for one request or response.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest request line accepted.
const MAX_REQUEST: u64 = 256;

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Power cut, waiting up to this long for open handles to close.
    Cut(Duration),
    /// Make everything durable.
    Sync,
    /// Report the pending state and counters.
    Status,
    /// Set the fsync delay.
    Delay(Duration),
}

/// A control response, one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The cut is done.
    Cut(CutReport),
    /// The sync is done.
    Sync(SyncReport),
    /// The status.
    Status(Status),
    /// The delay now in force.
    Delay {
        /// Milliseconds.
        fsync_delay_ms: u64,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// Why a control request failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be reached or broke.
    #[error("control socket {0}: {1}")]
    Io(PathBuf, #[source] io::Error),
    /// The server's answer was not a response.
    #[error("bad response from {0}: {1}")]
    BadResponse(PathBuf, String),
    /// The server refused or failed the request.
    #[error("lazyfs refused: {0}")]
    Refused(String),
}

impl Request {
    /// Parses a request line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let ms = |w: Option<&str>| -> Result<Option<Duration>, String> {
            w.map(|w| w.parse::<u64>().map(Duration::from_millis).map_err(|e| format!("bad milliseconds {w:?}: {e}")))
                .transpose()
        };
        let request = match words.next() {
            Some("cut") => Request::Cut(ms(words.next())?.unwrap_or(DEFAULT_CUT_WAIT)),
            Some("sync") => Request::Sync,
            Some("status") => Request::Status,
            Some("delay") => Request::Delay(ms(words.next())?.ok_or("delay needs milliseconds")?),
            other => return Err(format!("unknown request {other:?}")),
        };
        match words.next() {
            Some(extra) => Err(format!("unexpected {extra:?}")),
            None => Ok(request),
        }
    }

    /// The request line (without the newline).
    pub fn line(&self) -> String {
        match self {
            Request::Cut(wait) => format!("cut {}", wait.as_millis()),
            Request::Sync => "sync".into(),
            Request::Status => "status".into(),
            Request::Delay(d) => format!("delay {}", d.as_millis()),
        }
    }
}

/// Executes one request against the filesystem.
pub fn execute(fs: &LazyFs, request: &Request) -> Response {
    let error = |e: &dyn std::fmt::Display| Response::Error { message: e.to_string() };
    match request {
        Request::Cut(wait) => fs.cut(*wait).map_or_else(|e| error(&e), Response::Cut),
        Request::Sync => fs.sync_all().map_or_else(|e| error(&e), Response::Sync),
        Request::Status => Response::Status(fs.status()),
        Request::Delay(d) => {
            fs.set_fsync_delay(*d);
            tracing::info!(delay_ms = d.as_millis() as u64, "fsync delay set");
            Response::Delay { fsync_delay_ms: d.as_millis() as u64 }
        }
    }
}

/// Binds the control socket at `path` (a stale socket file there is replaced).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

fn serve_one(fs: &LazyFs, stream: UnixStream) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let response = match Request::parse(line.trim()) {
        Ok(request) => execute(fs, &request),
        Err(message) => Response::Error { message },
    };
    let mut out = serde_json::to_string(&response).map_err(io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

/// Serves requests until the listener fails (it is closed when the process exits).
pub fn serve(fs: Arc<LazyFs>, listener: UnixListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = serve_one(&fs, stream) {
                    tracing::warn!(error = %e, "control request failed");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "control socket accept failed; no more control requests");
                return;
            }
        }
    }
}

/// A client of one mount's control socket.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    /// A client for the socket at `path` (nothing is connected until a request).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Client { path: path.into() }
    }

    /// Sends one request and returns the server's response, whatever it is.
    pub fn request(&self, request: &Request) -> Result<Response, ControlError> {
        let io_err = |e| ControlError::Io(self.path.clone(), e);
        let mut stream = UnixStream::connect(&self.path).map_err(io_err)?;
        let wait = if let Request::Cut(wait) = request { *wait } else { Duration::ZERO };
        stream.set_read_timeout(Some(IO_TIMEOUT + wait)).map_err(io_err)?;
        stream.write_all(format!("{}\n", request.line()).as_bytes()).map_err(io_err)?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).map_err(io_err)?;
        serde_json::from_str(line.trim())
            .map_err(|e| ControlError::BadResponse(self.path.clone(), format!("{e}: {line:?}")))
    }

    fn expect<T>(&self, request: &Request, pick: impl FnOnce(Response) -> Option<T>) -> Result<T, ControlError> {
        match self.request(request)? {
            Response::Error { message } => Err(ControlError::Refused(message)),
            other => {
                let text = format!("{other:?}");
                pick(other).ok_or_else(|| ControlError::BadResponse(self.path.clone(), text))
            }
        }
    }

    /// Power cut (waits up to `wait` for handles to close).
    pub fn cut(&self, wait: Duration) -> Result<CutReport, ControlError> {
        self.expect(&Request::Cut(wait), |r| if let Response::Cut(c) = r { Some(c) } else { None })
    }

    /// Makes everything durable.
    pub fn sync(&self) -> Result<SyncReport, ControlError> {
        self.expect(&Request::Sync, |r| if let Response::Sync(s) = r { Some(s) } else { None })
    }

    /// Reads the status.
    pub fn status(&self) -> Result<Status, ControlError> {
        self.expect(&Request::Status, |r| if let Response::Status(s) = r { Some(s) } else { None })
    }

    /// Sets the fsync delay.
    pub fn set_fsync_delay(&self, delay: Duration) -> Result<(), ControlError> {
        self.expect(&Request::Delay(delay), |r| matches!(r, Response::Delay { .. }).then_some(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_round_trip() {
        for r in
            [Request::Cut(Duration::from_millis(250)), Request::Sync, Request::Status, Request::Delay(Duration::ZERO)]
        {
            assert_eq!(Request::parse(&r.line()), Ok(r));
        }
        assert_eq!(Request::parse("cut"), Ok(Request::Cut(DEFAULT_CUT_WAIT)));
        assert!(Request::parse("delay").is_err());
        assert!(Request::parse("cut 5 6").is_err());
        assert!(Request::parse("reboot").is_err());
    }
}
