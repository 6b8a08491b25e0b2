//! GC (1.1.0): release this node's attachments of this CNI network that are not listed in
//! `cni.dev/valid-attachments`. The node name scopes the sweep, so another node's attachments are
//! never touched.

use ipam::{FieldError, FieldProblem};
use proto::ipam::{GcRequest, Owner};
use serde_json::Value;

use super::require_endpoints;
use crate::client::{request, Cluster};
use crate::error::PluginError;
use crate::request::Request;

/// The key listing the attachments still valid (SPEC.md "GC").
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";

/// Runs GC.
pub async fn gc(req: &Request, cluster: &mut Cluster<'_>) -> Result<(), PluginError> {
    let keep = valid_attachments(&req.raw)?;
    require_endpoints(req)?;
    let message = GcRequest {
        request_id: req.request_id.clone(),
        network_name: req.config.network_name.clone(),
        cni_network: req.config.cni_network.clone(),
        node: req.node.name.clone(),
        keep,
    };
    let reply = cluster
        .call("Gc", |mut client, deadline| {
            let message = message.clone();
            async move { client.gc(request(message, deadline)).await }
        })
        .await?;
    tracing::info!(node = %req.node.name, released = ?reply.released.iter().map(|l| l.ip.as_str()).collect::<Vec<_>>(), "gc");
    Ok(())
}

/// Reads `cni.dev/valid-attachments` (top level, or the first plugin of a list). Required: a
/// missing list must not be read as "nothing is valid".
fn valid_attachments(raw: &Value) -> Result<Vec<Owner>, FieldError> {
    let found = raw.get(VALID_ATTACHMENTS).map(|v| (v, VALID_ATTACHMENTS.to_string())).or_else(|| {
        raw.pointer("/plugins/0")
            .and_then(|p| p.get(VALID_ATTACHMENTS))
            .map(|v| (v, format!("plugins[0].{VALID_ATTACHMENTS}")))
    });
    let Some((value, field)) = found else {
        return Err(FieldError::new(VALID_ATTACHMENTS, "", FieldProblem::Missing));
    };
    let Value::Array(items) = value else {
        return Err(FieldError::new(field, value.to_string(), FieldProblem::WrongType("expected a list".into())));
    };
    let mut keep = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let get =
            |key: &str| {
                item.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| {
                    FieldError::new(format!("{field}[{i}].{key}"), item.to_string(), FieldProblem::Missing)
                })
            };
        keep.push(Owner { container_id: get("containerID")?, ifname: get("ifname")? });
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_valid_attachments() {
        let raw = json!({VALID_ATTACHMENTS: [{"containerID": "c1", "ifname": "eth0"}]});
        assert_eq!(valid_attachments(&raw).unwrap(), vec![Owner { container_id: "c1".into(), ifname: "eth0".into() }]);
        assert_eq!(valid_attachments(&json!({VALID_ATTACHMENTS: []})).unwrap(), vec![]);
        let list = json!({"plugins": [{VALID_ATTACHMENTS: [{"containerID": "c", "ifname": "e"}]}]});
        assert_eq!(valid_attachments(&list).unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(valid_attachments(&json!({})).unwrap_err().field, VALID_ATTACHMENTS);
        assert_eq!(valid_attachments(&json!({VALID_ATTACHMENTS: {}})).unwrap_err().field, VALID_ATTACHMENTS);
        let e = valid_attachments(&json!({VALID_ATTACHMENTS: [{"containerID": "c"}]})).unwrap_err();
        assert_eq!(e.field, format!("{VALID_ATTACHMENTS}[0].ifname"));
    }
}
