//! Builders of the gRPC requests tests send, so that a test names only the fields it cares about
//! and a new field of `ipam.proto` is defaulted in one place:
//!
//! ```
//! let req = testkit::requests::allocate("tenant", "10.30.0.0/24").container("c1").cni_network("n").build();
//! assert_eq!(req.attachment.unwrap().ifname, "eth0");
//! ```

use proto::ipam as pb;

/// A range by its CIDR (or `START-END/PREFIX`), without start, end or excludes.
pub fn range(cidr: &str) -> pb::RangeSpec {
    pb::RangeSpec { range: cidr.into(), ..Default::default() }
}

/// An allocation in `network` (`""`: the default network) from `range`, for container `""` on
/// `eth0`; see [`Allocate`] for the rest.
pub fn allocate(network: &str, range: &str) -> Allocate {
    Allocate::new(network).ranges([self::range(range)])
}

/// Builds a [`pb::AllocateRequest`]. Starts with no range, no static address, no request id,
/// overlapping ranges at their default, and an attachment with only `ifname` `eth0` set.
#[derive(Debug, Clone)]
pub struct Allocate(pb::AllocateRequest);

impl Allocate {
    /// An allocation in `network` with no range yet.
    pub fn new(network: &str) -> Allocate {
        Allocate(pb::AllocateRequest {
            network_name: network.into(),
            attachment: Some(pb::Attachment { ifname: "eth0".into(), ..Default::default() }),
            ..Default::default()
        })
    }

    fn attachment(&mut self) -> &mut pb::Attachment {
        self.0.attachment.get_or_insert_with(Default::default)
    }

    /// The request id (every retry of one request reuses it).
    pub fn request_id(mut self, id: impl Into<String>) -> Allocate {
        self.0.request_id = id.into();
        self
    }

    /// Replaces the ranges (one address from each, or none).
    pub fn ranges(mut self, ranges: impl IntoIterator<Item = pb::RangeSpec>) -> Allocate {
        self.0.ranges = ranges.into_iter().collect();
        self
    }

    /// Replaces the static addresses (`10.0.0.5/24`).
    pub fn static_ips<S: Into<String>>(mut self, ips: impl IntoIterator<Item = S>) -> Allocate {
        self.0.static_ips = ips.into_iter().map(Into::into).collect();
        self
    }

    /// `enable_overlapping_ranges`.
    pub fn overlapping(mut self, enabled: bool) -> Allocate {
        self.0.enable_overlapping_ranges = Some(enabled);
        self
    }

    /// The container id of the attachment.
    pub fn container(mut self, id: impl Into<String>) -> Allocate {
        self.attachment().container_id = id.into();
        self
    }

    /// The interface name of the attachment (default `eth0`).
    pub fn ifname(mut self, ifname: impl Into<String>) -> Allocate {
        self.attachment().ifname = ifname.into();
        self
    }

    /// The pod of the attachment (namespace and name).
    pub fn pod(mut self, namespace: impl Into<String>, name: impl Into<String>) -> Allocate {
        let a = self.attachment();
        a.pod_namespace = namespace.into();
        a.pod_name = name.into();
        self
    }

    /// The pod UID of the attachment.
    pub fn pod_uid(mut self, uid: impl Into<String>) -> Allocate {
        self.attachment().pod_uid = uid.into();
        self
    }

    /// The node of the attachment.
    pub fn node(mut self, node: impl Into<String>) -> Allocate {
        self.attachment().node = node.into();
        self
    }

    /// The CNI network `name` of the attachment.
    pub fn cni_network(mut self, name: impl Into<String>) -> Allocate {
        self.attachment().cni_network = name.into();
        self
    }

    /// The request.
    pub fn build(self) -> pb::AllocateRequest {
        self.0
    }
}

/// Every allocation of every network in one page (`limit` 0), `local` or linearizable; see
/// [`ListAll`].
pub fn list_all(local: bool) -> ListAll {
    ListAll(pb::ListAllocationsRequest { network_name: None, limit: 0, after: String::new(), local })
}

/// Builds a [`pb::ListAllocationsRequest`].
#[derive(Debug, Clone)]
pub struct ListAll(pb::ListAllocationsRequest);

impl ListAll {
    /// Only network `name` (`""`: the default network).
    pub fn network(mut self, name: &str) -> ListAll {
        self.0.network_name = Some(name.into());
        self
    }

    /// Pages of at most `limit` allocations (0: no limit), after cursor `after`.
    pub fn page(mut self, limit: u32, after: impl Into<String>) -> ListAll {
        self.0.limit = limit;
        self.0.after = after.into();
        self
    }

    /// The request.
    pub fn build(self) -> pb::ListAllocationsRequest {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_carries_exactly_what_was_set() {
        let req = allocate("tenant", "10.30.0.0/24")
            .request_id("r-1")
            .container("c1")
            .pod("ns", "p")
            .node("n1")
            .cni_network("net")
            .build();
        assert_eq!(req.network_name, "tenant");
        assert_eq!(req.request_id, "r-1");
        assert_eq!(req.ranges, vec![range("10.30.0.0/24")]);
        assert!(req.static_ips.is_empty());
        assert_eq!(req.enable_overlapping_ranges, None);
        let a = req.attachment.expect("attachment");
        assert_eq!(
            a,
            pb::Attachment {
                container_id: "c1".into(),
                ifname: "eth0".into(),
                pod_namespace: "ns".into(),
                pod_name: "p".into(),
                pod_uid: String::new(),
                node: "n1".into(),
                cni_network: "net".into(),
            }
        );
        let two = Allocate::new("d").ranges([range("10.0.0.0/28"), range("fd00::/124")]).ifname("net1").build();
        assert_eq!(two.ranges.len(), 2);
        assert_eq!(two.attachment.expect("attachment").ifname, "net1");
    }

    #[test]
    fn a_listing_defaults_to_everything_in_one_page() {
        let all = list_all(true).build();
        assert_eq!((all.network_name, all.limit, all.after.as_str(), all.local), (None, 0, "", true));
        let paged = list_all(false).network("").page(2, "x").build();
        assert_eq!((paged.network_name.as_deref(), paged.limit, paged.after.as_str()), (Some(""), 2, "x"));
    }
}
