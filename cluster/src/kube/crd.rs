//! whereabouts' own custom resources, group `whereabouts.cni.cncf.io/v1alpha1`: `IPPool` and
//! `OverlappingRangeIPReservation`, with the field names whereabouts uses, so that objects written
//! by whereabouts can be read (import) and objects we write are read by whereabouts' tools
//! (`kubectl get ippools`, dashboards). Our copy of the CRDs (`deploy/manifests/crds.yaml`) adds a
//! `status` with `total` and `used` for printer columns; the schema is hand-written there, not
//! derived.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The `app.kubernetes.io/managed-by` value on every object the exporter writes; only objects
/// carrying it are ever deleted by the exporter.
pub const MANAGED_BY: &str = "whereabouts-rs";
/// The label key carrying [`MANAGED_BY`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// `IPPool.spec`: one pool (network name + range) and the addresses held in it.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "whereabouts.cni.cncf.io",
    version = "v1alpha1",
    kind = "IPPool",
    plural = "ippools",
    namespaced,
    schema = "disabled",
    status = "IPPoolStatus"
)]
pub struct IPPoolSpec {
    /// The range's CIDR (`10.0.0.0/24`).
    pub range: String,
    /// Held addresses by decimal offset from the range's network address.
    #[serde(default)]
    pub allocations: BTreeMap<String, IPAllocation>,
}

/// One held address of an `IPPool`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IPAllocation {
    /// The container id of the owner.
    pub id: String,
    /// `namespace/name` of the pod ("" when unknown).
    #[serde(default)]
    pub podref: String,
    /// The interface name of the owner (older whereabouts versions leave it out).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname: String,
    /// `namespace/name` of an IPAMClaim (newer whereabouts); kept when read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipamclaimref: Option<String>,
}

/// `IPPool.status` as the exporter writes it (not in whereabouts' own CRD: the printer columns of
/// our CRD copy show it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IPPoolStatus {
    /// Addresses the allocator may hand out in the CIDR, in decimal (may exceed 64 bits).
    pub total: String,
    /// Addresses held.
    pub used: u64,
}

/// `OverlappingRangeIPReservation.spec`: who holds one address across the ranges of a network.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "whereabouts.cni.cncf.io",
    version = "v1alpha1",
    kind = "OverlappingRangeIPReservation",
    plural = "overlappingrangeipreservations",
    namespaced,
    schema = "disabled"
)]
pub struct OverlappingRangeIPReservationSpec {
    /// The container id of the owner.
    #[serde(default)]
    pub containerid: String,
    /// `namespace/name` of the pod.
    pub podref: String,
    /// The interface name of the owner.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn whereabouts_objects_deserialize() {
        let yaml = r#"
apiVersion: whereabouts.cni.cncf.io/v1alpha1
kind: IPPool
metadata: {name: 10.0.0.0-24, namespace: kube-system}
spec:
  range: 10.0.0.0/24
  allocations:
    "1": {id: abc, podref: default/a}
    "2": {id: def, podref: default/b, ifname: net1}
"#;
        let pool: IPPool = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(pool.spec.allocations["2"].ifname, "net1");
        assert_eq!(pool.spec.allocations["1"].ifname, "");
        assert_eq!(IPPool::plural(&()), "ippools");
        assert_eq!(IPPool::api_version(&()), "whereabouts.cni.cncf.io/v1alpha1");
        assert_eq!(OverlappingRangeIPReservation::plural(&()), "overlappingrangeipreservations");
    }
}
