//! A one-node cluster for the Kubernetes tests, and helpers to allocate through its IPAM API.

use std::time::Duration;

use clap::Parser;
use cluster::node::{Node, NodeOptions};
use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A pod as the plugin describes it: namespace, name, uid, node.
#[derive(Clone, Copy)]
pub struct PodSpec<'a> {
    pub ns: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub node: &'a str,
}

/// One running node that leads its own cluster.
pub struct OneNode {
    pub node: Node,
    _dir: tempfile::TempDir,
}

impl OneNode {
    /// Starts a node and waits until it leads (bounded).
    pub async fn start() -> OneNode {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = dir.path().join("data");
        let opts = NodeOptions::try_parse_from([
            "whereabouts-node",
            "--id",
            "0",
            "--listen",
            &addr.to_string(),
            "--initial-cluster",
            &format!("0={addr}"),
            "--data-dir",
            data.to_str().unwrap(),
            "--heartbeat-ms",
            "50",
            "--election-timeout-ms",
            "300",
            "--insecure",
        ])
        .unwrap();
        let node = Node::start_on(opts, listener).await.unwrap();
        let mut m = node.raft.metrics();
        tokio::time::timeout(Duration::from_secs(30), m.wait_for(|m| m.current_leader == Some(0)))
            .await
            .expect("the node leads within 30 s")
            .unwrap();
        OneNode { node, _dir: dir }
    }

    /// A client of its IPAM service.
    pub fn client(&self) -> IpamClient<Channel> {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", self.node.addr)).unwrap().connect_lazy();
        IpamClient::new(ch)
    }

    /// An ADD of `container` (ifname `net1`) in `range` of `network`, for `pod`; returns the address.
    pub async fn add(&self, network: &str, range: &str, container: &str, pod: Option<PodSpec<'_>>) -> String {
        let resp = self.client().allocate(add_request(network, range, container, pod)).await.unwrap();
        resp.into_inner().leases[0].ip.clone()
    }

    /// Many ADDs at once (batched by the leader).
    pub async fn add_many(&self, network: &str, range: &str, prefix: &str, n: usize) {
        let client = self.client();
        let calls = (0..n).map(|i| {
            let mut c = client.clone();
            let req = add_request(network, range, &format!("{prefix}-{i}"), None);
            async move { c.allocate(req).await.unwrap() }
        });
        futures::future::join_all(calls).await;
    }

    /// The holders of `ip` as (network, containerID/ifname).
    pub fn holders(&self, ip: &str) -> Vec<(String, String)> {
        let ip = ip.parse().unwrap();
        self.node.ctx.with_machine(|m| {
            m.state.who_has(&ip).into_iter().map(|v| (v.network, v.attachment.owner.to_string())).collect()
        })
    }

    /// Number of held addresses.
    pub fn count(&self) -> usize {
        self.node.ctx.with_machine(|m| m.state.allocation_count())
    }
}

/// The Allocate request of [`OneNode::add`].
pub fn add_request(network: &str, range: &str, container: &str, pod: Option<PodSpec<'_>>) -> pb::AllocateRequest {
    let p = pod.unwrap_or(PodSpec { ns: "", name: "", uid: "", node: "" });
    pb::AllocateRequest {
        request_id: format!("add-{network}-{container}"),
        network_name: network.into(),
        ranges: vec![pb::RangeSpec { range: range.into(), ..Default::default() }],
        static_ips: vec![],
        enable_overlapping_ranges: None,
        attachment: Some(pb::Attachment {
            container_id: container.into(),
            ifname: "net1".into(),
            pod_namespace: p.ns.into(),
            pod_name: p.name.into(),
            pod_uid: p.uid.into(),
            node: p.node.into(),
            cni_network: "macvlan-conf".into(),
        }),
    }
}
