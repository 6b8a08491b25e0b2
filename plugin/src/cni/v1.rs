//! The IPAM result of CNI 1.0.0 and 1.1.0 (SPEC.md "ADD Success", "Delegated plugins (IPAM)"):
//! `ips` (address with prefix length, gateway; no `interface` index), `routes`, `dns`, no
//! `interfaces`. This is the shape the plugin builds; older shapes are converted from it.

use std::net::IpAddr;

use crate::config::{Dns, Route};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::CniVersion;

/// One address of an IPAM result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with the prefix length of its range.
    pub address: IpNet,
    /// Gateway for this subnet, if one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A 1.x IPAM result. Omissions follow libcni's `types/100`: `ips` and `routes` when empty, `dns`
/// when nothing in it is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamResult {
    /// The version the result is printed in.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Addresses: one per range (request order), then reserved static addresses, then the
    /// configuration's `addresses`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes from the configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS settings from the configuration.
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

impl IpamResult {
    /// An empty result of the newest version.
    pub fn new() -> IpamResult {
        IpamResult {
            cni_version: CniVersion::LATEST.as_str().to_string(),
            ips: Vec::new(),
            routes: Vec::new(),
            dns: Dns::default(),
        }
    }

    /// The same result labelled with `version` (1.0.0 and 1.1.0 share this shape).
    pub fn with_version(&self, version: CniVersion) -> IpamResult {
        IpamResult { cni_version: version.as_str().to_string(), ..self.clone() }
    }
}

impl Default for IpamResult {
    fn default() -> IpamResult {
        IpamResult::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_are_omitted_dns_included() {
        let r = IpamResult {
            ips: vec![IpConfig { address: "10.0.0.2/24".parse().unwrap(), gateway: None }],
            ..IpamResult::new()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v, serde_json::json!({"cniVersion": "1.1.0", "ips": [{"address": "10.0.0.2/24"}]}));
    }

    #[test]
    fn relabelling_keeps_the_content() {
        let r = IpamResult::new().with_version(CniVersion::V1_0_0);
        assert_eq!(r.cni_version, "1.0.0");
    }
}
