//! `SaveSnapshot`: a consistent backup of the IPAM state, streamed in chunks. The leader confirms
//! its leadership (read index) first; a follower asks the leader how far the log is applied and
//! waits until it applied that far itself, so any node gives a backup holding every write
//! acknowledged before the call.

use std::pin::Pin;

use ipam::snapshot;
use proto::ipam as pb;
use raft_store::{encode_backup, BackupHeader};
use tokio::time::timeout;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use crate::clock::now_ms;

/// Bytes per streamed chunk.
const CHUNK: usize = 1 << 20;

/// The stream of a backup.
pub type ChunkStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

/// Serves `SaveSnapshot`.
pub async fn handle(ctx: &Context, req: Request<pb::SaveSnapshotRequest>) -> Result<Response<ChunkStream>, Status> {
    let call = Call::new(ctx, "save_snapshot", &req);
    call.require_admin()?;
    match call.route()? {
        None => call.read(|_| ()).await?,
        Some(leader) => {
            let status = call
                .forward(&leader, pb::StatusRequest { local: false }, |mut c, r| async move { c.status(r).await })
                .await?
                .into_inner();
            let mut metrics = ctx.raft.metrics();
            let caught_up = metrics.wait_for(|m| m.last_applied.is_some_and(|l| l.index >= status.applied_index));
            timeout(ctx.request_timeout, caught_up)
                .await
                .map_err(|_| call.fail(ServeError::Timeout("catching up with the leader")))?
                .map_err(|e| call.fail(ServeError::Internal(e.to_string())))?;
        }
    }
    let file = ctx.with_machine(|m| {
        let header = BackupHeader {
            format: String::new(),
            version: 0,
            cluster: ctx.cluster.clone(),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            applied_term: m.last_applied.map_or(0, |l| l.leader_id.term),
            taken_at_ms: now_ms(),
            allocations: m.state.allocation_count() as u64,
            data_len: 0,
            crc32: 0,
        };
        encode_backup(header, &snapshot::encode(&m.state))
    });
    tracing::info!(bytes = file.len(), "streaming a backup");
    let chunks: Vec<Result<pb::SnapshotChunk, Status>> =
        file.chunks(CHUNK).map(|c| Ok(pb::SnapshotChunk { data: c.to_vec() })).collect();
    Ok(Response::new(Box::pin(tokio_stream::iter(chunks)) as ChunkStream))
}
