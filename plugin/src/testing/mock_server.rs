//! Serving a [`MockIpam`] on `127.0.0.1:0` in a background thread, and endpoints that fail:
//! one that refuses connections, one that accepts and never answers.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use proto::ipam::ipam_server::IpamServer;

use super::mock_ipam::{MockIpam, MockState};

/// A mock IPAM server on loopback; stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Serves `mock` until dropped.
    pub fn start(mock: MockIpam) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = mock.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                tonic::transport::Server::builder()
                    .add_service(IpamServer::new(mock))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("mock server");
            });
        });
        MockServer { addr, state, stop: Some(stop), thread: Some(thread) }
    }

    /// `127.0.0.1:PORT`, as an endpoint.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// The scripted replies and recorded requests.
    pub fn state(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An endpoint on loopback where nothing listens (connections are refused at once).
pub fn refused_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}

/// Accepts TCP connections and never says a word: a hung node.
pub struct SilentServer {
    addr: SocketAddr,
    _listener: Arc<TcpListener>,
}

impl SilentServer {
    /// Starts listening; accepted connections are kept open until the process ends.
    pub fn start() -> SilentServer {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
        let addr = listener.local_addr().expect("addr");
        let l = Arc::clone(&listener);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in l.incoming() {
                match conn {
                    Ok(c) => held.push(c),
                    Err(_) => return,
                }
            }
        });
        SilentServer { addr, _listener: listener }
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }
}
