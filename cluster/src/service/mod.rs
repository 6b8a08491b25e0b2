//! The IPAM gRPC service (`ipam.proto`): one file per RPC, named after it, each with a `handle`
//! function; a shared [`Call`](call::Call) for routing, deadlines, writes and linearizable reads;
//! one error mapping ([`errors`]).

pub mod add_learner;
pub mod allocate;
pub mod call;
pub mod check;
pub mod cluster_version;
pub mod context;
pub mod errors;
pub mod gc;
pub mod list_allocations;
pub mod membership_change;
pub mod promote;
pub mod release;
pub mod release_ip;
pub mod releasing;
pub mod remove_node;
pub mod save_snapshot;
pub mod settings;
pub mod status;
pub mod who_has;

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
        release::handle(&self.ctx, r).await
    }
    async fn release_ip(&self, r: Request<pb::ReleaseIpRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        release_ip::handle(&self.ctx, r).await
    }
    async fn check(&self, r: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        check::handle(&self.ctx, r).await
    }
    async fn gc(&self, r: Request<pb::GcRequest>) -> Result<Response<pb::ReleaseResponse>, Status> {
        gc::handle(&self.ctx, r).await
    }
    async fn status(&self, r: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        status::handle(&self.ctx, r).await
    }
    async fn list_allocations(
        &self,
        r: Request<pb::ListAllocationsRequest>,
    ) -> Result<Response<pb::ListAllocationsResponse>, Status> {
        list_allocations::handle(&self.ctx, r).await
    }
    async fn who_has(&self, r: Request<pb::WhoHasRequest>) -> Result<Response<pb::WhoHasResponse>, Status> {
        who_has::handle(&self.ctx, r).await
    }
    async fn add_learner(&self, r: Request<pb::AddLearnerRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        add_learner::handle(&self.ctx, r).await
    }
    async fn promote(&self, r: Request<pb::PromoteRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        promote::handle(&self.ctx, r).await
    }
    async fn remove_node(&self, r: Request<pb::RemoveNodeRequest>) -> Result<Response<pb::MembershipResponse>, Status> {
        remove_node::handle(&self.ctx, r).await
    }
    type SaveSnapshotStream = save_snapshot::ChunkStream;
    async fn save_snapshot(
        &self,
        r: Request<pb::SaveSnapshotRequest>,
    ) -> Result<Response<save_snapshot::ChunkStream>, Status> {
        save_snapshot::handle(&self.ctx, r).await
    }
    async fn settings(&self, r: Request<pb::SettingsRequest>) -> Result<Response<pb::SettingsResponse>, Status> {
        settings::handle(&self.ctx, r).await
    }
    async fn cluster_version(
        &self,
        r: Request<pb::ClusterVersionRequest>,
    ) -> Result<Response<pb::ClusterVersionResponse>, Status> {
        cluster_version::handle(&self.ctx, r).await
    }
}
