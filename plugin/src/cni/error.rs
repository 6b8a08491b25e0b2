//! The CNI error result (SPEC.md "Error") and the well-known codes, as named numbers.

use serde::Serialize;

/// 1: the configuration's version is not supported, or does not allow the command.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// 2: a configuration field is not supported (the message names key and value).
pub const UNSUPPORTED_FIELD: u32 = 2;
/// 4: a required environment variable is missing or invalid (the message names it).
pub const INVALID_ENVIRONMENT: u32 = 4;
/// 5: reading stdin (or writing the result) failed.
pub const IO_FAILURE: u32 = 5;
/// 6: stdin is not JSON.
pub const DECODING_FAILURE: u32 = 6;
/// 7: the network configuration is invalid (the message names the field).
pub const INVALID_CONFIG: u32 = 7;
/// 11: a transient condition (no leader, no quorum, cluster unreachable, budget spent): retry later.
pub const TRY_AGAIN_LATER: u32 = 11;
/// 50 (STATUS): the plugin cannot serve ADD (cluster unreachable, no leader, or a pool exhausted).
pub const NOT_AVAILABLE: u32 = 50;
/// 51 (STATUS): not available and existing containers may lose connectivity. Never returned: an
/// IPAM outage does not affect addresses already configured.
pub const NOT_AVAILABLE_LIMITED_CONNECTIVITY: u32 = 51;
/// 100: no free address left in a range.
pub const POOL_EXHAUSTED: u32 = 100;
/// 101: a requested static address is held by another attachment.
pub const ADDRESS_TAKEN: u32 = 101;
/// 102: the attachment already holds another address in the pool, or an address is held by
/// another owner than expected.
pub const OWNER_CONFLICT: u32 = 102;
/// 103: CHECK found that the cluster does not hold exactly the addresses of `prevResult`.
pub const CHECK_MISMATCH: u32 = 103;
/// 104: the cluster refused the plugin's identity for this call (a plugin certificate acts for
/// its own node only); the message names the node name sent and the certificate's.
pub const PERMISSION_DENIED: u32 = 104;
/// 999: a bug or an unexpected reply.
pub const INTERNAL: u32 = 999;

/// A CNI error result, printed on stdout with a non-zero exit status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    /// The version of the invocation (the newest when it could not be determined).
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// One of the codes above.
    pub code: u32,
    /// Short description.
    pub msg: String,
    /// Longer description; omitted when empty, as libcni does.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_omitted_when_empty() {
        let e = CniError {
            cni_version: "1.1.0".into(),
            code: 7,
            msg: "ipam.range: is required".into(),
            details: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"cniVersion": "1.1.0", "code": 7, "msg": "ipam.range: is required"})
        );
        let e = CniError { details: "more".into(), ..e };
        assert_eq!(serde_json::to_value(&e).unwrap()["details"], "more");
    }
}
