//! `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`. Reads the Kubernetes pod identity
//! (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`) and whereabouts' `IP=` (comma-separated
//! static addresses) and `GATEWAY=`. Unknown keys are tolerated whether or not `IgnoreUnknown`
//! is set, since runtimes add their own.

use std::net::IpAddr;

use ipam::ip::parse_ip_sloppy;

/// A malformed `CNI_ARGS` (error code 4).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CniArgsError {
    /// A non-empty segment without `=`.
    #[error("CNI_ARGS: {0:?} is not KEY=VALUE")]
    NotAPair(String),
    /// `GATEWAY=` holds something that is not an address.
    #[error("CNI_ARGS: GATEWAY={0:?} is not an IP address")]
    BadGateway(String),
}

/// The parsed `CNI_ARGS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// `K8S_POD_NAMESPACE`.
    pub pod_namespace: String,
    /// `K8S_POD_NAME`.
    pub pod_name: String,
    /// `K8S_POD_UID`.
    pub pod_uid: String,
    /// `IP=`: addresses asked for, as written (resolved against the ranges later).
    pub ips: Vec<String>,
    /// `GATEWAY=`: gateways applied to result addresses whose subnet contains them.
    pub gateways: Vec<IpAddr>,
}

impl CniArgs {
    /// Parses `CNI_ARGS` (empty or absent: nothing).
    pub fn parse(s: &str) -> Result<CniArgs, CniArgsError> {
        let mut args = CniArgs::default();
        for pair in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(CniArgsError::NotAPair(pair.to_string()));
            };
            let list = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
            match key {
                "K8S_POD_NAMESPACE" => args.pod_namespace = value.to_string(),
                "K8S_POD_NAME" => args.pod_name = value.to_string(),
                "K8S_POD_UID" => args.pod_uid = value.to_string(),
                "IP" => args.ips.extend(list().map(str::to_string)),
                "GATEWAY" => {
                    for gw in list() {
                        args.gateways.push(parse_ip_sloppy(gw).ok_or_else(|| CniArgsError::BadGateway(gw.into()))?);
                    }
                }
                _ => {}
            }
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubelet_args_and_tolerates_unknown_keys() {
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;",
        )
        .unwrap();
        assert_eq!((a.pod_namespace.as_str(), a.pod_name.as_str(), a.pod_uid.as_str()), ("ns", "web-0", "u-1"));
        assert!(a.ips.is_empty());
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
        assert_eq!(CniArgs::parse("FOO=bar").unwrap(), CniArgs::default());
    }

    #[test]
    fn reads_static_ips_and_gateways() {
        let a = CniArgs::parse("IP=10.0.0.5/24, fd00::5;GATEWAY=10.0.0.1").unwrap();
        assert_eq!(a.ips, vec!["10.0.0.5/24", "fd00::5"]);
        assert_eq!(a.gateways, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn rejects_malformed_pairs() {
        assert_eq!(CniArgs::parse("K8S_POD_NAME"), Err(CniArgsError::NotAPair("K8S_POD_NAME".into())));
        assert_eq!(CniArgs::parse("GATEWAY=x"), Err(CniArgsError::BadGateway("x".into())));
    }
}
