//! Talking to the cluster: a [`ClientFactory`] opens a gRPC client to one endpoint (the real one
//! over TCP, tests may substitute theirs), and [`Cluster`] runs each call with failover across the
//! endpoints, backoff and leader hints, all inside one [`Budget`]. Any node serves any call
//! (followers forward), so the order of endpoints only matters for speed.

mod budget;
mod failure;
mod request_id;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::config::TlsPaths;
use proto::ipam::ipam_client::IpamClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Response, Status};

pub use budget::{Budget, CONNECT_CAP, DEFAULT_BUDGET};
pub use failure::{ClusterError, Transient};
pub use request_id::{jitter_from, new_request_id};

/// The generated IPAM client over a tonic channel.
pub type IpamGrpc = IpamClient<Channel>;
/// A boxed, sendable future (object-safe async in [`ClientFactory`]).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Opens clients to endpoints. The plugin uses [`TcpFactory`]; tests may map endpoint names to
/// in-process servers or to failures.
pub trait ClientFactory: Send + Sync {
    /// Connects to `endpoint` (`host:port`), with mutual TLS when `tls` is given, giving up after
    /// `timeout`. The error is a human-readable reason; the caller treats it as "unreachable".
    fn connect<'a>(
        &'a self,
        endpoint: &'a str,
        timeout: Duration,
        tls: Option<&'a TlsPaths>,
    ) -> BoxFuture<'a, Result<IpamGrpc, String>>;
}

/// HTTP/2 over TCP to `host:port`: plain, or mutual TLS with the configured files.
pub struct TcpFactory;

fn tls_config(tls: &TlsPaths, host: &str) -> Result<ClientTlsConfig, String> {
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("cannot read {p}: {e}"));
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&tls.ca)?))
        .identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?))
        .domain_name(host.trim_start_matches('[').trim_end_matches(']').to_string()))
}

impl ClientFactory for TcpFactory {
    fn connect<'a>(
        &'a self,
        endpoint: &'a str,
        timeout: Duration,
        tls: Option<&'a TlsPaths>,
    ) -> BoxFuture<'a, Result<IpamGrpc, String>> {
        Box::pin(async move {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut ep = Endpoint::from_shared(format!("{scheme}://{endpoint}"))
                .map_err(|e| format!("bad endpoint {endpoint:?}: {e}"))?
                .connect_timeout(timeout)
                .tcp_nodelay(true);
            if let Some(tls) = tls {
                let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
                ep = ep.tls_config(tls_config(tls, host)?).map_err(|e| error_chain(&e))?;
            }
            let channel = match tokio::time::timeout(timeout, ep.connect()).await {
                Err(_) => return Err(format!("connect timed out after {} ms", timeout.as_millis())),
                Ok(Err(e)) => return Err(error_chain(&e)),
                Ok(Ok(channel)) => channel,
            };
            Ok(IpamClient::new(channel).max_decoding_message_size(proto::MAX_MESSAGE_BYTES))
        })
    }
}

/// `e` and its sources, joined (tonic's top-level message is just "transport error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The cluster as one invocation sees it: endpoints in order, a budget, cached clients.
pub struct Cluster<'f> {
    endpoints: Vec<String>,
    tls: Option<TlsPaths>,
    factory: &'f dyn ClientFactory,
    budget: Budget,
    jitter: f64,
    clients: HashMap<String, IpamGrpc>,
    attempts: u32,
    reached: bool,
    leader: Option<String>,
}

/// Calls every node sends to the leader (forwarding if it is not): a success of one of these
/// without a leader hint was served by the leader itself.
const LEADER_ROUTED: [&str; 4] = ["Allocate", "Release", "Check", "Gc"];

impl<'f> Cluster<'f> {
    /// A cluster reached through `endpoints` (tried in order), within `budget`. `jitter` in
    /// [0.5, 1] scales the backoff (see [`jitter_from`]).
    pub fn new(endpoints: Vec<String>, factory: &'f dyn ClientFactory, budget: Budget, jitter: f64) -> Cluster<'f> {
        Cluster {
            endpoints,
            tls: None,
            factory,
            budget,
            jitter,
            clients: HashMap::new(),
            attempts: 0,
            reached: false,
            leader: None,
        }
    }

    /// The same cluster reached with mutual TLS (`tls_ca`/`tls_cert`/`tls_key` of the configuration).
    pub fn with_tls(mut self, tls: Option<TlsPaths>) -> Cluster<'f> {
        self.tls = tls;
        self
    }

    /// Calls made so far (connect failures included).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// True once a node gave an answer (a reply or a final refusal): the cluster is reachable.
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// The leader as the last success showed it: the address a follower named when it forwarded
    /// the call, or the endpoint that served a leader-routed call itself.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Runs `call` until a node answers or the budget is spent. `call` gets a client and the
    /// deadline for this attempt, and must build the same request each time (same request id).
    /// Transient failures move on to the next endpoint (a leader hint goes first); after each
    /// round over all endpoints the plugin backs off. Final answers return at once.
    pub async fn call<R, F, Fut>(&mut self, rpc: &'static str, mut call: F) -> Result<R, ClusterError>
    where
        F: FnMut(IpamGrpc, Duration) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let mut last: Option<ClusterError> = None;
        let mut answered: Option<ClusterError> = None;
        let mut round = 0u32;
        loop {
            let mut queue: VecDeque<String> = self.endpoints.iter().cloned().collect();
            let mut tried: HashSet<String> = HashSet::new();
            while let Some(endpoint) = queue.pop_front() {
                if self.budget.spent() {
                    return Err(self.spent(last, answered));
                }
                tried.insert(endpoint.clone());
                match self.attempt(&endpoint, rpc, &mut call).await {
                    Ok(reply) => return Ok(reply),
                    Err((e, from_node)) if e.is_transient() => {
                        tracing::debug!(rpc, endpoint, error = %e, "transient failure, trying the next endpoint");
                        self.clients.remove(&endpoint);
                        if let Some(hint) = e.leader_hint().filter(|h| !tried.contains(*h)) {
                            queue.retain(|q| q != hint);
                            queue.push_front(hint.to_string());
                        }
                        if from_node {
                            answered = Some(e.clone());
                        }
                        last = Some(e);
                    }
                    Err((e, _)) => return Err(e),
                }
            }
            round += 1;
            let pause = self.budget.backoff(round, self.jitter);
            if self.budget.spent() || pause >= self.budget.remaining() {
                return Err(self.spent(last, answered));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One call to `endpoint`. A failure comes with `true` when the node itself answered with
    /// it (a gRPC status), `false` when it is ours (connect failure, our deadline).
    async fn attempt<R, F, Fut>(
        &mut self,
        endpoint: &str,
        rpc: &'static str,
        call: &mut F,
    ) -> Result<R, (ClusterError, bool)>
    where
        F: FnMut(IpamGrpc, Duration) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        self.attempts += 1;
        let transient = |kind, message: String| ClusterError::Transient {
            endpoint: endpoint.to_string(),
            kind,
            message,
            leader_hint: None,
        };
        let client = match self.clients.get(endpoint) {
            Some(c) => c.clone(),
            None => {
                let c =
                    self.factory.connect(endpoint, self.budget.connect(), self.tls.as_ref()).await.map_err(|e| {
                        tracing::debug!(rpc, endpoint, error = %e, "connect failed");
                        (transient(Transient::Unreachable, e), false)
                    })?;
                self.clients.insert(endpoint.to_string(), c.clone());
                c
            }
        };
        let deadline = self.budget.per_call();
        match tokio::time::timeout(deadline, call(client, deadline)).await {
            Err(_) => Err((
                transient(Transient::Timeout, format!("{rpc}: no answer within {} ms", deadline.as_millis())),
                false,
            )),
            Ok(Err(status)) => {
                let e = ClusterError::from_status(endpoint, &status);
                self.reached |= !e.is_transient();
                let from_node = status.metadata().contains_key(proto::ERROR_REASON_KEY);
                Err((e, from_node))
            }
            Ok(Ok(response)) => {
                self.reached = true;
                let hint = response.metadata().get(proto::LEADER_KEY).and_then(|v| v.to_str().ok());
                match hint.filter(|h| !h.is_empty()) {
                    Some(h) => self.leader = Some(h.to_string()),
                    None if LEADER_ROUTED.contains(&rpc) => self.leader = Some(endpoint.to_string()),
                    None => {}
                }
                Ok(response.into_inner())
            }
        }
    }

    fn spent(&self, last: Option<ClusterError>, answered: Option<ClusterError>) -> ClusterError {
        let last = last.unwrap_or_else(|| ClusterError::Transient {
            endpoint: String::new(),
            kind: Transient::Timeout,
            message: "the time budget was spent before any call".into(),
            leader_hint: None,
        });
        ClusterError::BudgetSpent {
            budget_ms: self.budget.total().as_millis() as u64,
            attempts: self.attempts,
            answered: answered.filter(|a| *a != last).map(Box::new),
            last: Box::new(last),
        }
    }
}

/// Wraps `message` in a request carrying `deadline` as its gRPC timeout (the node bounds its own
/// work with it).
pub fn request<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(deadline);
    req
}
