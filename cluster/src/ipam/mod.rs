//! The IPAM gRPC service (`ipam.proto`): one file per call, a shared [`Call`](call::Call) for
//! routing, deadlines, writes and linearizable reads, and one error mapping.

pub mod allocate;
pub mod backup;
pub mod call;
pub mod context;
pub mod errors;
pub mod membership;
pub mod query;
pub mod release;
pub mod status;

use std::sync::Arc;

use proto::ipam as pb;
use tonic::{Request, Response, Status};

pub use context::{Context, PeerClients};

/// The service of one node.
#[derive(Clone)]
pub struct IpamService {
    ctx: Arc<Context>,
}

impl IpamService {
    /// The service over `ctx`.
    pub fn new(ctx: Arc<Context>) -> IpamService {
        IpamService { ctx }
    }
}

#[tonic::async_trait]
impl pb::ipam_server::Ipam for IpamService {
    async fn allocate(&self, r: Request<pb::AllocateRequest>) -> Result<Response<pb::AllocateResponse>, Status> {
        allocate::handle(&self.ctx, r).await
    }
    async fn release(&self, r: Request<pb::ReleaseRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        release::release(&self.ctx, r).await
    }
    async fn release_ip(&self, r: Request<pb::ReleaseIpRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        release::release_ip(&self.ctx, r).await
    }
    async fn check(&self, r: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        query::check(&self.ctx, r).await
    }
    async fn gc(&self, r: Request<pb::GcRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        release::gc(&self.ctx, r).await
    }
    async fn status(&self, r: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        status::handle(&self.ctx, r).await
    }
    async fn list_allocations(
        &self,
        r: Request<pb::ListAllocationsRequest>,
    ) -> Result<Response<pb::ListAllocationsResponse>, Status> {
        query::list(&self.ctx, r).await
    }
    async fn who_has(&self, r: Request<pb::WhoHasRequest>) -> Result<Response<pb::WhoHasResponse>, Status> {
        query::who_has(&self.ctx, r).await
    }
    async fn add_learner(&self, r: Request<pb::AddLearnerRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        membership::add_learner(&self.ctx, r).await
    }
    async fn promote(&self, r: Request<pb::PromoteRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        membership::promote(&self.ctx, r).await
    }
    async fn remove_node(&self, r: Request<pb::RemoveNodeRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        membership::remove(&self.ctx, r).await
    }
    type SaveSnapshotStream = backup::ChunkStream;
    async fn save_snapshot(
        &self,
        r: Request<pb::SaveSnapshotRequest>,
    ) -> Result<Response<backup::ChunkStream>, Status> {
        backup::save(&self.ctx, r).await
    }
}
