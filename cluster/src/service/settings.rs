//! `Settings`: reads or changes the replicated state's limits (admins only). A change is an
//! event through the log, so every replica evicts the same replies and history entries.

use ipam::{Command, Configure, Outcome};
use proto::ipam as pb;
use tonic::{Request, Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;

/// Serves `Settings`.
pub async fn handle(
    ctx: &Context,
    req: Request<pb::SettingsRequest>,
) -> Result<Response<pb::SettingsResponse>, Status> {
    let call = Call::new(ctx, "settings", &req);
    call.require_admin()?;
    if let Some(leader) = call.route()? {
        return call.forward(&leader, req.into_inner(), |mut c, r| async move { c.settings(r).await }).await;
    }
    let msg = req.into_inner();
    let limits = if msg.request_cache.is_none() && msg.history.is_none() {
        call.read(|m| m.state.limits()).await?
    } else {
        let cmd = Configure { request_cache: msg.request_cache, history: msg.history };
        tracing::info!(request_cache = ?cmd.request_cache, history = ?cmd.history, "changing the state's limits");
        match call.write(ipam::Event::new(Command::Configure(cmd), 0)).await? {
            Outcome::Configured(limits) => limits,
            other => return Err(call.fail(ServeError::Internal(format!("settings produced {other:?}")))),
        }
    };
    call.ok(pb::SettingsResponse { request_cache: limits.request_cache as u64, history: limits.history as u64 })
}
