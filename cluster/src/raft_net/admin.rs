//! One-off calls to a peer's Raft service outside replication: `Describe` (what it knows and
//! runs) and `Compact`. Each call is bounded by its own timeout and opens a lazy connection, so a
//! dead peer costs at most that timeout.

use std::time::Duration;

use proto::raft as pb;

use super::CLUSTER_KEY;
use crate::tls::Transport;

fn client(transport: &Transport, addr: &str) -> Result<pb::raft_client::RaftClient<tonic::transport::Channel>, String> {
    let endpoint = transport.endpoint(addr)?.connect_timeout(Duration::from_millis(500));
    Ok(pb::raft_client::RaftClient::new(endpoint.connect_lazy()))
}

fn request<T>(msg: T, cluster: &str, timeout: Duration) -> Result<tonic::Request<T>, String> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    req.metadata_mut().insert(CLUSTER_KEY, cluster.parse().map_err(|_| format!("cluster name {cluster:?}"))?);
    Ok(req)
}

/// What a peer said about itself.
#[derive(Debug)]
pub enum Described {
    /// Its answer to `Describe`.
    Node(pb::DescribeResponse),
    /// It has no `Describe` (UNIMPLEMENTED): release 0.1.0, which reads and writes log format 1
    /// only and tells nothing of its state.
    Release010,
}

impl Described {
    /// The newest log format the peer reads.
    pub fn format_max(&self) -> u32 {
        match self {
            Described::Node(d) => d.format_max.max(ipam::FORMAT_MIN),
            Described::Release010 => ipam::FORMAT_MIN,
        }
    }

    /// Its answer, if it could give one.
    pub fn into_response(self) -> Option<pb::DescribeResponse> {
        match self {
            Described::Node(d) => Some(d),
            Described::Release010 => None,
        }
    }
}

/// Asks the node at `addr` to describe itself, within `timeout`.
pub async fn describe(
    transport: &Transport,
    cluster: &str,
    addr: &str,
    timeout: Duration,
) -> Result<Described, String> {
    let mut c = client(transport, addr)?;
    let req = request(pb::DescribeRequest {}, cluster, timeout)?;
    match tokio::time::timeout(timeout, c.describe(req)).await {
        Ok(Ok(r)) => Ok(Described::Node(r.into_inner())),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Ok(Described::Release010),
        Ok(Err(s)) => Err(format!("{}: {}", s.code(), s.message())),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Asks the node at `addr` to snapshot and purge its log, within `timeout`.
pub async fn compact(
    transport: &Transport,
    cluster: &str,
    addr: &str,
    timeout: Duration,
) -> Result<pb::CompactResponse, String> {
    let mut c = client(transport, addr)?;
    let req = request(pb::CompactRequest {}, cluster, timeout)?;
    match tokio::time::timeout(timeout, c.compact(req)).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
            Err("it runs a release without Compact (0.1.0); its log is in format 1 anyway".into())
        }
        Ok(Err(s)) => Err(format!("{}: {}", s.code(), s.message())),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}
