//! The ctl's connection to the cluster: tries the endpoints in order and moves on when one cannot
//! be reached or has no leader, so any live node will do.

use std::future::Future;
use std::time::Duration;

use proto::ipam::ipam_client::IpamClient;
use tonic::transport::Channel;

use crate::tls::Transport;
use tonic::{Code, Status};

/// Endpoints, a per-call timeout and the transport (TLS or plain).
pub struct Cluster {
    endpoints: Vec<String>,
    timeout: Duration,
    transport: Transport,
}

impl Cluster {
    /// How this CLI talks to the nodes (for the bench, which opens its own connections).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// A cluster reached through `endpoints` (`host:port`).
    pub fn new(endpoints: Vec<String>, timeout: Duration, transport: Transport) -> Cluster {
        Cluster { endpoints, timeout, transport }
    }

    fn client(&self, addr: &str) -> Result<IpamClient<Channel>, Status> {
        let endpoint = self
            .transport
            .endpoint(addr)
            .map_err(|e| Status::invalid_argument(format!("endpoint {addr:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2));
        Ok(IpamClient::new(endpoint.connect_lazy()).max_decoding_message_size(proto::MAX_MESSAGE_BYTES * 64))
    }

    /// Calls `f` on the first endpoint that answers; UNAVAILABLE moves on to the next one.
    pub async fn call<Req: Clone, Resp, F, Fut>(&self, msg: Req, f: F) -> Result<(String, Resp), Status>
    where
        F: Fn(IpamClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let mut last = Status::unavailable("no endpoint given (use --endpoints)");
        for addr in &self.endpoints {
            let mut req = tonic::Request::new(msg.clone());
            req.set_timeout(self.timeout);
            match f(self.client(addr)?, req).await {
                Ok(resp) => return Ok((addr.clone(), resp.into_inner())),
                Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled) => {
                    last = Status::new(s.code(), format!("{addr}: {}", s.message()));
                }
                Err(s) => return Err(s),
            }
        }
        Err(last)
    }
}
