//! Talking to the nodes: one lazily connected gRPC channel per node, every call under a
//! client-side deadline, and the classification of answers into definite (the request was or
//! was not applied) and indeterminate (it may have been applied, or may be later).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::lab::node_addr;

/// The outcome of one attempt.
#[derive(Debug)]
pub enum Answer<T> {
    /// OK with the response.
    Ok(T),
    /// A definite refusal: nothing was applied. Carries the `x-whereabouts-error` reason.
    Refused(String),
    /// No definite answer (unavailable, deadline, connection reset, …): may have been applied.
    Unknown(String),
}

/// Classifies a gRPC status: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ALREADY_EXISTS and
/// FAILED_PRECONDITION are definite when a node said them (its `x-whereabouts-error` reason is
/// set, see [`proto::node_reason`]); everything else (UNAVAILABLE, DEADLINE_EXCEEDED, transport
/// errors, even Unknown/Internal on a reset connection, and a definite-looking code the HTTP/2
/// layer made from a stream reset) is indeterminate.
pub fn classify<T>(status: &tonic::Status) -> Answer<T> {
    match (proto::node_reason(status), status.code()) {
        (
            Some(reason),
            Code::InvalidArgument | Code::ResourceExhausted | Code::AlreadyExists | Code::FailedPrecondition,
        ) => Answer::Refused(reason.to_string()),
        (Some(reason), _) => Answer::Unknown(reason.to_string()),
        (None, code) => Answer::Unknown(format!("{code:?} (not from a node): {}", status.message())),
    }
}

/// One channel per node id.
#[derive(Default)]
pub struct Clients {
    channels: Mutex<HashMap<u64, IpamClient<Channel>>>,
}

impl Clients {
    /// The client of node `id`.
    pub fn get(&self, id: u64) -> IpamClient<Channel> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id)
            .or_insert_with(|| {
                let endpoint = Endpoint::from_shared(format!("http://{}", node_addr(id)))
                    .expect("a valid URI")
                    .connect_timeout(Duration::from_millis(500))
                    .tcp_nodelay(true);
                IpamClient::new(endpoint.connect_lazy())
            })
            .clone()
    }

    /// Runs one call against node `id` with a client-side deadline (also sent as `grpc-timeout`).
    pub async fn call<T, Req, F, Fut>(&self, id: u64, timeout: Duration, msg: Req, f: F) -> Answer<T>
    where
        F: FnOnce(IpamClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout);
        match tokio::time::timeout(timeout + Duration::from_millis(200), f(self.get(id), req)).await {
            Err(_) => Answer::Unknown("client deadline".into()),
            Ok(Ok(resp)) => Answer::Ok(resp.into_inner()),
            Ok(Err(status)) => classify(&status),
        }
    }

    /// Node `id`'s own view (`Status` with `local: true`), `None` if it does not answer quickly.
    pub async fn local_status(&self, id: u64) -> Option<pb::StatusResponse> {
        let msg = pb::StatusRequest { local: true };
        match self.call(id, Duration::from_millis(700), msg, |mut c, r| async move { c.status(r).await }).await {
            Answer::Ok(s) => Some(s),
            _ => None,
        }
    }

    /// The cluster version and every member's formats, as node `id` reports them
    /// (`ClusterVersion` without a change; release 0.1.0 answers UNIMPLEMENTED).
    pub async fn cluster_version(&self, id: u64) -> Answer<pb::ClusterVersionResponse> {
        let msg = pb::ClusterVersionRequest { set: None, compact: false };
        self.call(id, Duration::from_secs(5), msg, |mut c, r| async move { c.cluster_version(r).await }).await
    }

    /// Asks `ids` in turn for the cluster version (see [`Clients::cluster_version`]); returns
    /// the version of the first answer and, as recorded in the history, the answer (who answered,
    /// the version, `downgrade_ready`, each member's release and the newest formats in its log
    /// and snapshot) or every node's error.
    pub async fn versions(&self, ids: &[u64]) -> (Option<u32>, serde_json::Value) {
        let mut errors = serde_json::Map::new();
        for id in ids {
            match self.cluster_version(*id).await {
                Answer::Ok(r) => {
                    let members: Vec<serde_json::Value> = r
                        .members
                        .iter()
                        .map(|m| {
                            serde_json::json!({"id": m.id, "reachable": m.reachable, "binary_version": m.binary_version,
                                "newest_log_format": m.newest_log_format, "snapshot_format": m.snapshot_format,
                                "error": m.error})
                        })
                        .collect();
                    let value = serde_json::json!({"asked": id, "cluster_version": r.cluster_version,
                        "downgrade_ready": r.downgrade_ready, "members": members});
                    return (Some(r.cluster_version), value);
                }
                Answer::Refused(e) | Answer::Unknown(e) => {
                    errors.insert(id.to_string(), e.into());
                }
            }
        }
        (None, serde_json::json!({ "errors": errors }))
    }

    /// The leader among `ids`: a node that says it leads, with the highest term.
    pub async fn leader(&self, ids: &[u64]) -> Option<u64> {
        let mut best: Option<(u64, u64)> = None;
        for id in ids {
            if let Some(s) = self.local_status(*id).await {
                if s.role == "Leader" && best.is_none_or(|(t, _)| s.term > t) {
                    best = Some((s.term, *id));
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// A node's whole state machine (`ListAllocations`, `local` or linearizable), every page.
    pub async fn all_allocations(&self, id: u64, local: bool) -> Answer<Vec<pb::Allocation>> {
        let mut out = Vec::new();
        let mut after = String::new();
        for _ in 0..1_000 {
            let msg = pb::ListAllocationsRequest { network_name: None, limit: 10_000, after: after.clone(), local };
            let page =
                self.call(id, Duration::from_secs(5), msg, |mut c, r| async move { c.list_allocations(r).await }).await;
            match page {
                Answer::Ok(p) => {
                    out.extend(p.allocations);
                    if p.next.is_empty() {
                        return Answer::Ok(out);
                    }
                    after = p.next;
                }
                Answer::Refused(e) => return Answer::Refused(e),
                Answer::Unknown(e) => return Answer::Unknown(e),
            }
        }
        Answer::Unknown("too many pages".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    #[test]
    fn definite_and_indeterminate_statuses() {
        let mut s = tonic::Status::resource_exhausted("full");
        s.metadata_mut().insert(proto::ERROR_REASON_KEY, MetadataValue::from_static("exhausted"));
        assert!(matches!(classify::<()>(&s), Answer::Refused(r) if r == "exhausted"));
        assert!(matches!(classify::<()>(&tonic::Status::unavailable("x")), Answer::Unknown(_)));
        assert!(matches!(classify::<()>(&tonic::Status::internal("reset")), Answer::Unknown(_)));
        assert!(matches!(classify::<()>(&tonic::Status::deadline_exceeded("slow")), Answer::Unknown(_)));
        let mut s = tonic::Status::failed_precondition("owner");
        s.metadata_mut().insert(proto::ERROR_REASON_KEY, MetadataValue::from_static("owner_mismatch"));
        assert!(matches!(classify::<()>(&s), Answer::Refused(r) if r == "owner_mismatch"));
    }

    /// Regression (the duplicate address of the seed-2002 long run): a paused node resumed with
    /// more than 20 reset streams waiting on one connection and tore it down with
    /// ENHANCE_YOUR_CALM; tonic made that RESOURCE_EXHAUSTED, the client took it for a definite
    /// refusal of two releases the old leader had already appended, and the checker then saw
    /// their addresses given again. Seen failing before the fix (both were `Refused`).
    #[test]
    fn definite_looking_codes_from_the_transport_are_indeterminate() {
        // As tonic builds them from HTTP/2 resets (`Status::from_h2_error`): no reason metadata.
        let calm = tonic::Status::resource_exhausted("h2 protocol error: stream error received: ENHANCE_YOUR_CALM");
        assert!(matches!(classify::<()>(&calm), Answer::Unknown(e) if e.contains("ResourceExhausted")));
        let security = tonic::Status::permission_denied("h2 protocol error: INADEQUATE_SECURITY");
        assert!(matches!(classify::<()>(&security), Answer::Unknown(_)));
        for code in [tonic::Code::InvalidArgument, tonic::Code::AlreadyExists, tonic::Code::FailedPrecondition] {
            assert!(matches!(classify::<()>(&tonic::Status::new(code, "x")), Answer::Unknown(_)), "{code:?}");
        }
    }
}
