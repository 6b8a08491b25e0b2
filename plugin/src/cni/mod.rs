//! CNI types by specification version, as libcni's `pkg/types` splits them: [`CniVersion`], one
//! module per result shape ([`v02`] for 0.1.0/0.2.0, [`v04`] for 0.3.0/0.3.1/0.4.0, [`v1`] for
//! 1.0.0/1.1.0), the error result, and `prevResult` reading. The plugin builds a
//! [`v1::IpamResult`] and converts it only when printing ([`print_result`]).

pub mod error;
pub mod prev_result;
pub mod v02;
pub mod v04;
pub mod v1;
pub mod version;

pub use error::CniError;
pub use version::{negotiate, CniVersion, Incompatible, Shape, VersionResult};

/// Prints `result` in the shape and with the `cniVersion` of `version` (pretty JSON, as libcni).
/// Fails only for 0.1.0/0.2.0 when the result has no address.
pub fn print_result(result: &v1::IpamResult, version: CniVersion) -> Result<String, v02::NoAddress> {
    let json = match version.shape() {
        Shape::V1 => serde_json::to_string_pretty(&result.with_version(version)),
        Shape::V04 => serde_json::to_string_pretty(&v04::IpamResult::from_v1(result, version)),
        Shape::V02 => serde_json::to_string_pretty(&v02::IpamResult::from_v1(result, version)?),
    };
    Ok(json.expect("results always serialize"))
}
