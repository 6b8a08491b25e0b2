//! A scripted implementation of the IPAM service. Each RPC first takes the next scripted
//! [`Reply`] from its queue; when the queue is empty it answers like a tiny single-node IPAM
//! (first address of each range, owners remembered so CHECK/DEL/List see them). Every request is
//! recorded for assertions (request ids, ranges, attachments).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use proto::ipam::ipam_server::Ipam;
use proto::ipam::*;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

/// A scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answer with the default behaviour.
    Default,
    /// Fail with this code, message and `x-whereabouts-error` reason (and optional leader hint).
    Fail {
        /// gRPC code.
        code: Code,
        /// Reason trailer ("" for none).
        reason: &'static str,
        /// Leader hint ("" for none).
        leader: String,
    },
    /// Never answer (the client's deadline must fire).
    Hang,
    /// Answer with the default behaviour after a delay.
    Delay(Duration),
}

impl Reply {
    /// A failure with `code` and `reason`.
    pub fn fail(code: Code, reason: &'static str) -> Reply {
        Reply::Fail { code, reason, leader: String::new() }
    }
}

/// Requests seen and replies to give.
#[derive(Default, Debug)]
pub struct MockState {
    /// Scripted replies per RPC name ("Allocate", "Release", "ReleaseIp", "Check", "Gc", "Status",
    /// "ListAllocations").
    pub script: BTreeMap<&'static str, VecDeque<Reply>>,
    /// Allocate requests received.
    pub allocates: Vec<AllocateRequest>,
    /// Release requests received.
    pub releases: Vec<ReleaseRequest>,
    /// Check requests received.
    pub checks: Vec<CheckRequest>,
    /// Gc requests received.
    pub gcs: Vec<GcRequest>,
    /// Status calls received.
    pub statuses: u32,
    /// ListAllocations requests received.
    pub lists: Vec<ListAllocationsRequest>,
    /// What each owner (network, container id, ifname) holds: the default behaviour's state.
    pub held: BTreeMap<(String, String, String), Vec<Lease>>,
    /// Pool usage reported by Status.
    pub pools: Vec<PoolUsage>,
    /// Whether Status reports a leader (default: yes, node 1).
    pub no_leader: bool,
    /// Answer as a follower that forwarded: successes of leader-routed calls name this leader
    /// (`x-whereabouts-leader`), as a real follower's do.
    pub forwarded_to: Option<String>,
}

impl MockState {
    /// Queues `replies` for `rpc`.
    pub fn script(&mut self, rpc: &'static str, replies: impl IntoIterator<Item = Reply>) {
        self.script.entry(rpc).or_default().extend(replies);
    }

    fn next(&mut self, rpc: &'static str) -> Reply {
        self.script.get_mut(rpc).and_then(VecDeque::pop_front).unwrap_or(Reply::Default)
    }
}

/// The mock service; clones share one state.
#[derive(Clone, Default)]
pub struct MockIpam {
    state: Arc<Mutex<MockState>>,
}

impl MockIpam {
    /// A mock with the default behaviour everywhere.
    pub fn new() -> MockIpam {
        MockIpam::default()
    }

    /// The shared state.
    pub fn state(&self) -> Arc<Mutex<MockState>> {
        Arc::clone(&self.state)
    }

    /// Applies the scripted reply for `rpc`: `Ok(())` means "answer with the default".
    async fn scripted(&self, rpc: &'static str) -> Result<(), Status> {
        let reply = self.state.lock().unwrap().next(rpc);
        match reply {
            Reply::Default => Ok(()),
            Reply::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Reply::Hang => std::future::pending().await,
            Reply::Fail { code, reason, leader } => {
                let mut meta = MetadataMap::new();
                if !reason.is_empty() {
                    meta.insert(proto::ERROR_REASON_KEY, reason.parse().expect("ascii"));
                }
                if !leader.is_empty() {
                    meta.insert(proto::LEADER_KEY, leader.parse().expect("ascii"));
                }
                Err(Status::with_metadata(code, format!("mock {rpc}: {reason}"), meta))
            }
        }
    }
}

impl MockIpam {
    /// `msg` as a response, with the leader hint of [`MockState::forwarded_to`] when set.
    fn answer<T>(&self, msg: T) -> Response<T> {
        let mut resp = Response::new(msg);
        if let Some(leader) = self.state.lock().unwrap().forwarded_to.clone() {
            resp.metadata_mut().insert(proto::LEADER_KEY, leader.parse().expect("ascii"));
        }
        resp
    }
}

/// The first usable address of a range spec (its `range_start`, else network + 1).
fn first_address(spec: &RangeSpec) -> Result<(IpAddr, IpNet), Status> {
    let net: IpNet = spec.range.parse().map_err(|_| Status::invalid_argument(format!("range {:?}", spec.range)))?;
    let net = net.trunc();
    let ip = match spec.range_start.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => net.hosts().next().ok_or_else(|| Status::invalid_argument("tiny range"))?,
    };
    Ok((ip, net))
}

#[tonic::async_trait]
impl Ipam for MockIpam {
    async fn allocate(&self, request: Request<AllocateRequest>) -> Result<Response<AllocateResponse>, Status> {
        let req = request.into_inner();
        self.state.lock().unwrap().allocates.push(req.clone());
        self.scripted("Allocate").await?;
        let mut leases = Vec::new();
        for spec in &req.ranges {
            let (ip, pool) = first_address(spec)?;
            leases.push(Lease { ip: ip.to_string(), pool: pool.to_string() });
        }
        for s in &req.static_ips {
            let net: IpNet = s.parse().map_err(|_| Status::invalid_argument(format!("static {s:?}")))?;
            match leases.iter_mut().find(|l| l.pool.parse::<IpNet>().is_ok_and(|p| p.contains(&net.addr()))) {
                Some(lease) => lease.ip = net.addr().to_string(),
                None => leases.push(Lease { ip: net.addr().to_string(), pool: net.trunc().to_string() }),
            }
        }
        let a = req.attachment.unwrap_or_default();
        self.state.lock().unwrap().held.insert((req.network_name, a.container_id, a.ifname), leases.clone());
        Ok(self.answer(AllocateResponse { leases }))
    }

    async fn release(&self, request: Request<ReleaseRequest>) -> Result<Response<ReleaseResponse>, Status> {
        let req = request.into_inner();
        self.state.lock().unwrap().releases.push(req.clone());
        self.scripted("Release").await?;
        let key = (req.network_name, req.container_id, req.ifname);
        let released = self.state.lock().unwrap().held.remove(&key).unwrap_or_default();
        Ok(self.answer(ReleaseResponse { released }))
    }

    async fn release_ip(&self, request: Request<ReleaseIpRequest>) -> Result<Response<ReleaseResponse>, Status> {
        let req = request.into_inner();
        self.scripted("ReleaseIp").await?;
        let mut state = self.state.lock().unwrap();
        let key = (req.network_name, req.container_id, req.ifname);
        let mut released = Vec::new();
        if let Some(leases) = state.held.get_mut(&key) {
            leases.retain(|l| {
                let hit = l.ip == req.ip;
                if hit {
                    released.push(l.clone());
                }
                !hit
            });
        }
        Ok(Response::new(ReleaseResponse { released }))
    }

    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let req = request.into_inner();
        self.state.lock().unwrap().checks.push(req.clone());
        self.scripted("Check").await?;
        let state = self.state.lock().unwrap();
        let key = (req.network_name.clone(), req.container_id.clone(), req.ifname.clone());
        let allocations = state
            .held
            .get(&key)
            .into_iter()
            .flatten()
            .map(|l| Allocation {
                network_name: req.network_name.clone(),
                pool: l.pool.clone(),
                ip: l.ip.clone(),
                ..Default::default()
            })
            .collect();
        Ok(Response::new(CheckResponse { allocations }))
    }

    async fn gc(&self, request: Request<GcRequest>) -> Result<Response<ReleaseResponse>, Status> {
        let req = request.into_inner();
        self.state.lock().unwrap().gcs.push(req.clone());
        self.scripted("Gc").await?;
        let mut state = self.state.lock().unwrap();
        let keep: Vec<(String, String)> = req.keep.iter().map(|o| (o.container_id.clone(), o.ifname.clone())).collect();
        let gone: Vec<_> = state
            .held
            .keys()
            .filter(|(net, c, i)| *net == req.network_name && !keep.contains(&(c.clone(), i.clone())))
            .cloned()
            .collect();
        let released = gone.iter().flat_map(|k| state.held.remove(k).unwrap_or_default()).collect();
        Ok(Response::new(ReleaseResponse { released }))
    }

    async fn status(&self, _request: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        self.state.lock().unwrap().statuses += 1;
        self.scripted("Status").await?;
        let state = self.state.lock().unwrap();
        Ok(Response::new(StatusResponse {
            node_id: 1,
            leader_id: if state.no_leader { None } else { Some(1) },
            role: if state.no_leader { "Candidate" } else { "Leader" }.into(),
            pools: state.pools.clone(),
            ..Default::default()
        }))
    }

    async fn list_allocations(
        &self,
        request: Request<ListAllocationsRequest>,
    ) -> Result<Response<ListAllocationsResponse>, Status> {
        let req = request.into_inner();
        self.state.lock().unwrap().lists.push(req.clone());
        self.scripted("ListAllocations").await?;
        let state = self.state.lock().unwrap();
        let allocations = state
            .held
            .iter()
            .filter(|((net, _, _), _)| req.network_name.as_ref().is_none_or(|n| n == net))
            .flat_map(|((net, _, _), leases)| {
                leases.iter().map(move |l| Allocation {
                    network_name: net.clone(),
                    pool: l.pool.clone(),
                    ip: l.ip.clone(),
                    ..Default::default()
                })
            })
            .collect();
        Ok(Response::new(ListAllocationsResponse { allocations, next: String::new() }))
    }

    async fn who_has(&self, _request: Request<WhoHasRequest>) -> Result<Response<WhoHasResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn add_learner(&self, _request: Request<AddLearnerRequest>) -> Result<Response<MembershipResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn promote(&self, _request: Request<PromoteRequest>) -> Result<Response<MembershipResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn remove_node(&self, _request: Request<RemoveNodeRequest>) -> Result<Response<MembershipResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    type SaveSnapshotStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<proto::ipam::SnapshotChunk, Status>> + Send>>;

    async fn save_snapshot(
        &self,
        _request: Request<proto::ipam::SaveSnapshotRequest>,
    ) -> Result<Response<Self::SaveSnapshotStream>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn settings(
        &self,
        _request: Request<proto::ipam::SettingsRequest>,
    ) -> Result<Response<proto::ipam::SettingsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn cluster_version(
        &self,
        _request: Request<proto::ipam::ClusterVersionRequest>,
    ) -> Result<Response<proto::ipam::ClusterVersionResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }
}
