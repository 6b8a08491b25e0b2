//! The echo floor: a tonic server whose one unary method answers with what it was sent, and
//! loadgen clients calling it (one HTTP/2 connection each, TCP_NODELAY, as the bench's).

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::{driver, Client, Extras, FailureKind, Limits, Mix, OpContext, OpKind, Plan, PoolSize, Progress, Setup};
use serde::Serialize;
use tokio::time::{timeout_at, Instant};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use super::SYSTEM_ECHO;

/// The generated client and server.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("floor");
}

/// The report of one echo run (loadgen's shared schema).
pub type Report = loadgen::Report<Failure, EchoExtras>;

/// Why an echo failed (the keys of `error_kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The call returned a status.
    Rpc,
    /// Over the per-operation budget.
    Timeout,
    /// Still in flight at the hard stop.
    CutAtHardStop,
}

impl FailureKind for Failure {
    const ALL: &'static [Failure] = &[Failure::Rpc, Failure::Timeout, Failure::CutAtHardStop];

    fn key(self) -> &'static str {
        match self {
            Failure::Rpc => "rpc",
            Failure::Timeout => "timeout",
            Failure::CutAtHardStop => "cut_at_hard_stop",
        }
    }
}

/// What the echo report adds: the payload size.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EchoExtras {
    /// Bytes sent (and returned) per call.
    pub payload_bytes: usize,
}

impl Extras for EchoExtras {
    fn setup_note(&self) -> String {
        format!(", bare tonic unary echo of {} bytes", self.payload_bytes)
    }

    fn has_conflicts(&self) -> bool {
        false
    }
}

/// The server side: answers every call with its own payload.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoService;

#[tonic::async_trait]
impl pb::echo_server::Echo for EchoService {
    async fn echo(&self, request: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serves the echo on `listener` until the process ends (tonic's defaults, TCP_NODELAY as the
/// nodes set it).
pub async fn serve(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder().add_service(pb::echo_server::EchoServer::new(EchoService)).serve_with_incoming(incoming).await?;
    Ok(())
}

/// What to run against a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent clients, one connection each.
    pub clients: u32,
    /// When to stop.
    pub limits: Limits,
    /// Bytes per call (an AllocateRequest is about 150–250).
    pub payload_bytes: usize,
    /// Labels only: the cell of the side-by-side table this floor belongs to (pools, prefill and
    /// mix of the runs it is compared with; the echo does the same work whatever they are).
    pub pools: u32,
    /// See `pools`.
    pub prefill: u64,
    /// See `pools`.
    pub mix: Mix,
    /// See `pools`.
    pub pool_size: u64,
}

struct EchoClient {
    client: pb::echo_client::EchoClient<Channel>,
    payload: Vec<u8>,
}

impl Client for EchoClient {
    type Owner = ();
    type Failure = Failure;
    const KEEPS_OWNER_OF_FAILED_RELEASE: bool = false;

    fn new_owner(&mut self) {}

    async fn run(&mut self, _op: OpKind, _owner: &(), ctx: OpContext<'_>) -> Result<(), Failure> {
        let request = pb::Payload { data: self.payload.clone() };
        match timeout_at(ctx.deadline, self.client.echo(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => {
                tracing::debug!(%status, "echo failed");
                Err(Failure::Rpc)
            }
            Err(_) if Instant::now() >= ctx.hard_stop => Err(Failure::CutAtHardStop),
            Err(_) => Err(Failure::Timeout),
        }
    }
}

/// Runs the closed loop against the server at `cfg.addr` and reports it.
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    anyhow::ensure!(cfg.clients > 0, "--clients must be > 0");
    let mut clients = Vec::with_capacity(cfg.clients as usize);
    for _ in 0..cfg.clients {
        let channel = Endpoint::from_shared(format!("http://{}", cfg.addr))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect()
            .await?;
        clients.push(EchoClient {
            client: pb::echo_client::EchoClient::new(channel),
            payload: vec![0x5a; cfg.payload_bytes],
        });
    }
    let plan = Plan { mix: cfg.mix, limits: cfg.limits, progress: Progress::Quiet };
    let measured = driver::run(clients, plan).await?.measured;
    let setup = Setup {
        system: SYSTEM_ECHO,
        clients: cfg.clients,
        pools: cfg.pools,
        pool_size: PoolSize::Number(cfg.pool_size),
        prefill: cfg.prefill,
        mix: cfg.mix,
        ipv6: false,
    };
    Ok(Report::new(setup, measured, EchoExtras { payload_bytes: cfg.payload_bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor really calls a server: a short run against one on loopback succeeds on every
    /// operation, and one against nothing fails to start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_echoes_every_call() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        let cfg = Config {
            addr,
            clients: 4,
            limits: Limits::from_flags(Some(400), Some(30.0), 5.0, 5.0).unwrap(),
            payload_bytes: 200,
            pools: 1,
            prefill: 0,
            mix: Mix::new(1, 1).unwrap(),
            pool_size: 4096,
        };
        let report = run(cfg.clone()).await.unwrap();
        assert_eq!((report.ops_ok, report.errors), (400, 0));
        assert_eq!(report.system, SYSTEM_ECHO);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nothing = Config { addr: closed.local_addr().unwrap(), ..cfg };
        drop(closed);
        assert!(run(nothing).await.is_err());
    }
}
