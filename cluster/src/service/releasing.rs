//! The write shared by the calls that free addresses (`Release`, `ReleaseIp`, `Gc`): propose the
//! command, count what was freed, answer with the leases.

use ipam::{Command, Event, Outcome};
use proto::ipam as pb;
use tonic::{Response, Status};

use super::call::Call;
use super::context::Context;
use super::errors::ServeError;
use crate::convert::api as conv;

/// Writes `command` (with the caller's `request_id`) and answers with the leases it freed.
pub async fn free(
    ctx: &Context,
    call: &Call<'_>,
    request_id: String,
    command: Command,
) -> Result<Response<pb::ReleaseResponse>, Status> {
    let event = Event { request_id: conv::request_id(request_id), time_ms: 0, command };
    match call.write(event).await? {
        Outcome::Released(leases) => {
            ctx.metrics.releases.inc_by(leases.len() as u64);
            call.ok(pb::ReleaseResponse { released: leases.iter().map(conv::lease).collect() })
        }
        other => Err(call.fail(ServeError::Internal(format!("release produced {other:?}")))),
    }
}
