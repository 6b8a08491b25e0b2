//! The IPAM result of CNI 0.3.0, 0.3.1 and 0.4.0 (libcni `types/040`): like 1.x, plus a
//! `"version"` (`"4"` or `"6"`) on each IP. Only ever converted from the newest result when
//! printed. A declared mirror of [`v1`]'s types: one module per result shape, as libcni has
//! `types/040` beside `types/100`.

use std::net::IpAddr;

use crate::config::{Dns, Route};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{v1, CniVersion};

/// One address of a 0.3.x/0.4.0 result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `"4"` or `"6"`.
    pub version: String,
    /// Address with prefix length.
    pub address: IpNet,
    /// Gateway for this subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A 0.3.x/0.4.0 IPAM result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamResult {
    /// The version the result is printed in.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Addresses, each with its IP version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS settings.
    #[serde(default)]
    pub dns: Dns,
}

impl IpamResult {
    /// Converts the newest result to the 0.3.x/0.4.0 shape, labelled `version`.
    pub fn from_v1(result: &v1::IpamResult, version: CniVersion) -> IpamResult {
        IpamResult {
            cni_version: version.as_str().to_string(),
            ips: result
                .ips
                .iter()
                .map(|ip| IpConfig {
                    version: if ip.address.addr().is_ipv4() { "4" } else { "6" }.to_string(),
                    address: ip.address,
                    gateway: ip.gateway,
                })
                .collect(),
            routes: result.routes.clone(),
            dns: result.dns.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ip_gets_its_version() {
        let newest = v1::IpamResult {
            ips: vec![
                v1::IpConfig { address: "10.0.0.2/24".parse().unwrap(), gateway: Some("10.0.0.1".parse().unwrap()) },
                v1::IpConfig { address: "fd00::2/64".parse().unwrap(), gateway: None },
            ],
            ..v1::IpamResult::new()
        };
        let old = IpamResult::from_v1(&newest, CniVersion::V0_3_1);
        let v = serde_json::to_value(&old).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cniVersion": "0.3.1", "ips": [
                {"version": "4", "address": "10.0.0.2/24", "gateway": "10.0.0.1"},
                {"version": "6", "address": "fd00::2/64"}], "dns": {}})
        );
    }
}
