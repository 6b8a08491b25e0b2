//! The keys whereabouts-rs adds to the `ipam` section: where the cluster is (`endpoints`, TLS
//! files), how long an invocation may take (`timeout_seconds`), which node the plugin acts for
//! (`node_name`), how DEL behaves when the cluster cannot be reached (`strict_del`) and where the
//! plugin keeps what it must remember between invocations (`state_dir`).

use serde::{Deserialize, Serialize};

use super::json::Obj;
use ipam::{FieldError, FieldProblem};

/// PEM files of the plugin's TLS identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPaths {
    /// CA bundle that signs the cluster's certificates.
    pub ca: String,
    /// The plugin's certificate (O=whereabouts:node, CN=the Kubernetes node name).
    pub cert: String,
    /// Its key.
    pub key: String,
}

/// Everything about reaching the cluster, read from the `ipam` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterKeys {
    /// `endpoints`: `host:port` of cluster nodes.
    pub endpoints: Vec<String>,
    /// `timeout_seconds`: the plugin's total time budget.
    pub timeout_seconds: Option<f64>,
    /// `tls_ca`, `tls_cert`, `tls_key` (all three, or none for a cluster on plain TCP).
    pub tls: Option<TlsPaths>,
    /// `node_name`: the node this plugin acts for, overriding the certificate, `NODE_NAME` and
    /// the host name.
    pub node_name: Option<String>,
    /// `strict_del`: DEL fails (code 11) when the cluster cannot be reached, instead of succeeding
    /// and delivering the release later.
    pub strict_del: bool,
    /// `state_dir`: where DELs that could not be delivered wait.
    pub state_dir: Option<String>,
}

impl ClusterKeys {
    /// Reads every key strictly: a bad value is an error naming it.
    pub(crate) fn parse(ipam: &Obj) -> Result<ClusterKeys, FieldError> {
        Ok(ClusterKeys {
            endpoints: parse_endpoints(ipam)?,
            timeout_seconds: parse_timeout(ipam)?,
            tls: parse_tls(ipam)?,
            node_name: non_empty(ipam.string("node_name")?),
            strict_del: ipam.bool("strict_del")?.unwrap_or(false),
            state_dir: non_empty(ipam.string("state_dir")?),
        })
    }

    /// Reads each key on its own, replacing a bad one by its default and reporting it (DEL must
    /// complete whatever else is wrong): the errors met, in key order.
    pub(crate) fn parse_leniently(ipam: &Obj) -> (ClusterKeys, Vec<FieldError>) {
        fn keep<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
            r.map_err(|e| errors.push(e)).ok()
        }
        let mut errors = Vec::new();
        let e = &mut errors;
        let endpoints = keep(e, lenient_endpoints(ipam)).unwrap_or_default();
        let timeout_seconds = keep(e, parse_timeout(ipam)).flatten();
        let tls = keep(e, parse_tls(ipam)).flatten();
        let node_name = keep(e, ipam.string("node_name")).flatten().filter(|s| !s.is_empty());
        let strict_del = keep(e, ipam.bool("strict_del")).flatten().unwrap_or(false);
        let state_dir = keep(e, ipam.string("state_dir")).flatten().filter(|s| !s.is_empty());
        (ClusterKeys { endpoints, timeout_seconds, tls, node_name, strict_del, state_dir }, errors)
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn valid_endpoint(e: &str) -> bool {
    e.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) && !host.contains('/'))
}

fn parse_endpoints(ipam: &Obj) -> Result<Vec<String>, FieldError> {
    let endpoints = ipam.strings("endpoints")?;
    for (i, e) in endpoints.iter().enumerate() {
        if !valid_endpoint(e) {
            let field = format!("{}[{i}]", ipam.field("endpoints"));
            return Err(FieldError::new(field, e, FieldProblem::Invalid("expected host:port".into())));
        }
    }
    Ok(endpoints)
}

/// The valid endpoints (an error only when the list itself is unreadable).
fn lenient_endpoints(ipam: &Obj) -> Result<Vec<String>, FieldError> {
    let endpoints: Vec<String> = ipam
        .array("endpoints")?
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|e| valid_endpoint(e))
        .map(str::to_string)
        .collect();
    Ok(endpoints)
}

fn parse_tls(ipam: &Obj) -> Result<Option<TlsPaths>, FieldError> {
    let get = |k: &str| ipam.string(k).map(non_empty);
    match (get("tls_ca")?, get("tls_cert")?, get("tls_key")?) {
        (None, None, None) => Ok(None),
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsPaths { ca, cert, key })),
        (ca, cert, _) => {
            let missing = if ca.is_none() {
                "tls_ca"
            } else if cert.is_none() {
                "tls_cert"
            } else {
                "tls_key"
            };
            let problem = FieldProblem::Invalid("tls_ca, tls_cert and tls_key go together".into());
            Err(FieldError::new(ipam.field(missing), "", problem))
        }
    }
}

fn parse_timeout(ipam: &Obj) -> Result<Option<f64>, FieldError> {
    let Some(t) = ipam.number("timeout_seconds")? else {
        return Ok(None);
    };
    if !(t > 0.0 && t <= 600.0) {
        let problem = FieldProblem::Invalid("must be more than 0 and at most 600 seconds".into());
        return Err(FieldError::new(ipam.field("timeout_seconds"), t.to_string(), problem));
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_parsing_names_the_bad_key() {
        let v = json!({"endpoints": ["a:1", "nope"]});
        assert_eq!(ClusterKeys::parse(&Obj::new(&v, "ipam").unwrap()).unwrap_err().field, "ipam.endpoints[1]");
        let v = json!({"strict_del": "yes"});
        assert_eq!(ClusterKeys::parse(&Obj::new(&v, "ipam").unwrap()).unwrap_err().field, "ipam.strict_del");
        let v = json!({"node_name": "worker-1", "strict_del": true, "state_dir": "/run/wb"});
        let k = ClusterKeys::parse(&Obj::new(&v, "ipam").unwrap()).unwrap();
        assert_eq!(
            (k.node_name.as_deref(), k.strict_del, k.state_dir.as_deref()),
            (Some("worker-1"), true, Some("/run/wb"))
        );
    }

    #[test]
    fn lenient_parsing_keeps_what_is_usable() {
        let v = json!({"endpoints": ["a:1", "nope", 7, "b:2"], "timeout_seconds": -1, "tls_ca": "/ca",
                       "strict_del": true});
        let (k, errors) = ClusterKeys::parse_leniently(&Obj::new(&v, "ipam").unwrap());
        assert_eq!(k.endpoints, ["a:1", "b:2"]);
        assert_eq!((k.timeout_seconds, k.tls, k.strict_del), (None, None, true));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["ipam.timeout_seconds", "ipam.tls_cert"]);
    }
}
