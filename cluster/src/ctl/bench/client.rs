//! One bench client: its connections (a home endpoint, the others opened on first use) and one
//! operation — a real Allocate or Release with a fresh request id — optionally retried as the CNI
//! plugin retries: the same request id on the next endpoint (the leader hint first), a short
//! backoff after each round over all of them, until the operation's deadline. A success a
//! follower forwarded names the leader (`x-whereabouts-leader`); a client that follows the leader
//! (the default, as the plugin does) makes that endpoint its home for the next operations.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tokio::time::{timeout_at, Instant};
use tonic::transport::{Channel, Endpoint};

use crate::tls::Transport;
use tonic::{Code, Status};

/// First pause after a failed round over all endpoints; doubles up to [`BACKOFF_CAP`]. Shorter
/// than the plugin's (50 ms → 1 s) so that the time writes resume after a leader change is
/// measured to within tens of milliseconds.
const BACKOFF_START: Duration = Duration::from_millis(10);
const BACKOFF_CAP: Duration = Duration::from_millis(100);
/// Failed attempts printed to stderr (the first few tell what went wrong).
const MAX_REPORTED: u64 = 5;
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// A write the bench sends.
#[derive(Clone, Debug)]
pub enum Op {
    /// CNI ADD.
    Allocate(pb::AllocateRequest),
    /// CNI DEL.
    Release(pb::ReleaseRequest),
}

impl Op {
    fn request_id(&self) -> &str {
        match self {
            Op::Allocate(r) => &r.request_id,
            Op::Release(r) => &r.request_id,
        }
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// RESOURCE_EXHAUSTED.
    Exhausted,
    /// UNAVAILABLE (after the retries, if any).
    Unavailable,
    /// The operation's budget ran out.
    Timeout,
    /// Any other status.
    Other,
    /// Still in flight at the hard stop (duration + grace): the bench loop's verdict on any of
    /// the above, never returned by [`Conn::run`].
    CutAtHardStop,
}

impl Failure {
    fn of(status: &Status) -> Failure {
        match status.code() {
            // A pool really full says so with a reason; without one it is an HTTP/2 reset
            // (ENHANCE_YOUR_CALM), see `proto::node_reason`.
            Code::ResourceExhausted if proto::node_reason(status).is_some() => Failure::Exhausted,
            Code::Unavailable => Failure::Unavailable,
            Code::DeadlineExceeded | Code::Cancelled => Failure::Timeout,
            _ => Failure::Other,
        }
    }
}

/// A successful operation: how many attempts it took and when the last one was sent.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// Unix time (ns) the successful attempt was sent.
    pub attempt_sent_ns: u64,
}

/// Nanoseconds since the Unix epoch (to line the bench up with a script's `date +%s%N`).
pub fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn channel(transport: &Transport, addr: &str) -> anyhow::Result<Endpoint> {
    let ep = transport.endpoint(addr).map_err(anyhow::Error::msg)?;
    Ok(ep.connect_timeout(Duration::from_secs(2)).tcp_nodelay(true))
}

/// A client's connections: one HTTP/2 connection per endpoint it talks to.
pub struct Conn {
    transport: Transport,
    endpoints: Vec<String>,
    home: usize,
    follow_leader: bool,
    clients: Vec<Option<IpamClient<Channel>>>,
}

impl Conn {
    /// Connects to `endpoints[home]` now (an unreachable endpoint fails the bench before it
    /// starts); the others are opened when a retry or the leader hint first needs them. With
    /// `follow_leader`, the endpoint a forwarded success names becomes the home.
    pub async fn connect(
        transport: &Transport,
        endpoints: &[String],
        home: usize,
        follow_leader: bool,
    ) -> anyhow::Result<Conn> {
        let addr = &endpoints[home];
        let ch =
            channel(transport, addr)?.connect().await.map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))?;
        let mut clients = vec![None; endpoints.len()];
        clients[home] = Some(IpamClient::new(ch));
        Ok(Conn { transport: transport.clone(), endpoints: endpoints.to_vec(), home, follow_leader, clients })
    }

    fn client(&mut self, i: usize) -> Result<IpamClient<Channel>, Status> {
        if let Some(c) = &self.clients[i] {
            return Ok(c.clone());
        }
        let ep = channel(&self.transport, &self.endpoints[i]).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let c = IpamClient::new(ep.connect_lazy());
        self.clients[i] = Some(c.clone());
        Ok(c)
    }

    /// Runs `op` until `deadline`: once, or with `retry` as the plugin does.
    pub async fn run(&mut self, op: &Op, deadline: Instant, retry: bool) -> Result<Done, Failure> {
        let mut attempts = 0u32;
        let mut round = 0u32;
        loop {
            let mut queue: Vec<usize> =
                (0..self.endpoints.len()).map(|k| (self.home + k) % self.endpoints.len()).collect();
            queue.reverse(); // popped from the back: home first
            let mut tried = Vec::new();
            while let Some(i) = queue.pop() {
                tried.push(i);
                attempts += 1;
                let sent = unix_ns();
                let status = match self.attempt(i, op, deadline).await {
                    Ok(leader) => {
                        self.follow(leader.as_deref());
                        return Ok(Done { attempts, attempt_sent_ns: sent });
                    }
                    Err(s) => s,
                };
                let transient = retryable(&status);
                if REPORTED.fetch_add(1, Relaxed) < MAX_REPORTED {
                    let reason = status.metadata().get(proto::ERROR_REASON_KEY).and_then(|v| v.to_str().ok());
                    eprintln!(
                        "bench: {} answered {:?} ({}): {}",
                        self.endpoints[i],
                        status.code(),
                        reason.unwrap_or("-"),
                        status.message()
                    );
                }
                if !retry || !transient || Instant::now() >= deadline {
                    return Err(if Instant::now() >= deadline { Failure::Timeout } else { Failure::of(&status) });
                }
                if let Some(h) = self.position(leader_hint(status.metadata()).as_deref()) {
                    if !tried.contains(&h) {
                        queue.retain(|q| *q != h);
                        queue.push(h);
                    }
                }
            }
            round += 1;
            let jitter = 0.5 + f64::from(u16::from_str_radix(&op.request_id()[..4], 16).unwrap_or(0)) / 131_070.0;
            let pause = BACKOFF_START.saturating_mul(1 << (round - 1).min(4)).min(BACKOFF_CAP).mul_f64(jitter);
            if Instant::now() + pause >= deadline {
                return Err(Failure::Timeout);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// The index of `addr` among the endpoints.
    fn position(&self, addr: Option<&str>) -> Option<usize> {
        addr.and_then(|a| self.endpoints.iter().position(|e| e == a))
    }

    /// Makes the leader a success named the home endpoint, when following it.
    fn follow(&mut self, leader: Option<&str>) {
        if let Some(h) = self.position(leader).filter(|_| self.follow_leader) {
            self.home = h;
        }
    }

    /// One attempt on endpoint `i`; a success returns the leader it names (if forwarded).
    async fn attempt(&mut self, i: usize, op: &Op, deadline: Instant) -> Result<Option<String>, Status> {
        let mut client = self.client(i)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let call = async {
            match op {
                Op::Allocate(r) => {
                    let mut req = tonic::Request::new(r.clone());
                    req.set_timeout(left);
                    client.allocate(req).await.map(|r| leader_hint(r.metadata()))
                }
                Op::Release(r) => {
                    let mut req = tonic::Request::new(r.clone());
                    req.set_timeout(left);
                    client.release(req).await.map(|r| leader_hint(r.metadata()))
                }
            }
        };
        timeout_at(deadline, call).await.unwrap_or_else(|_| Err(Status::deadline_exceeded("op budget spent")))
    }
}

/// Whether the plugin would retry `status` with the same request id: what a node could not
/// serve now, an outcome it does not know yet (DEADLINE_EXCEEDED: the write may still commit,
/// and the retry's request id settles it), and whatever the transport made of a reset stream
/// (no node reason; see `proto::node_reason`). The operation's own budget is checked apart.
fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Cancelled | Code::Unknown | Code::DeadlineExceeded)
        || proto::node_reason(status).is_none()
}

/// The leader address a response or status names (`x-whereabouts-leader`), if any.
fn leader_hint(metadata: &tonic::metadata::MetadataMap) -> Option<String> {
    metadata.get(proto::LEADER_KEY).and_then(|v| v.to_str().ok()).filter(|h| !h.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_reason(code: Code, reason: &str) -> Status {
        let mut s = Status::new(code, "x");
        s.metadata_mut().insert(proto::ERROR_REASON_KEY, reason.parse().unwrap());
        s
    }

    #[test]
    fn an_unknown_outcome_is_retried_like_the_plugin_does() {
        // Regression: a node's DEADLINE_EXCEEDED ("timeout": the write's outcome is not known
        // yet) ended the operation as failed while the plugin retries it with the same id.
        assert!(retryable(&with_reason(Code::DeadlineExceeded, "timeout")));
        assert!(retryable(&with_reason(Code::DeadlineExceeded, "forward_timeout")));
        assert!(retryable(&with_reason(Code::Unavailable, "no_leader")));
        assert!(retryable(&Status::resource_exhausted("h2 ENHANCE_YOUR_CALM, no node reason")));
    }

    #[test]
    fn a_node_refusal_is_final() {
        assert!(!retryable(&with_reason(Code::ResourceExhausted, "exhausted")));
        assert!(!retryable(&with_reason(Code::InvalidArgument, "invalid_argument")));
    }
}
