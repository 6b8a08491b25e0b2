use proto::ipam as pb;

use testkit::inprocess_cluster::*;

fn alloc_for(container: &str, node: &str) -> pb::AllocateRequest {
    let mut req = allocate(container, "", "10.50.0.0/24");
    req.attachment.as_mut().unwrap().node = node.into();
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_cluster_serves_and_node_identities_stay_on_their_node() {
    let c = TestCluster::start_tls(3).await;
    let leader = c.leader().await;
    let follower = c.other_than(leader);

    // The operator can do anything.
    let ip =
        c.client(leader).allocate(alloc_for("admin-made", "worker-2")).await.unwrap().into_inner().leases[0].ip.clone();
    assert_eq!(ip, "10.50.0.1");

    // A node's plugin, through a follower (forwarded on its behalf): its own node only.
    let mut w1 = c.client_as(follower, "node-worker-1");
    let own = w1.allocate(alloc_for("w1-pod", "")).await.unwrap().into_inner();
    assert_eq!(own.leases[0].ip, "10.50.0.2");
    let held = c.client(leader).who_has(pb::WhoHasRequest { ip: "10.50.0.2".into() }).await.unwrap().into_inner();
    assert_eq!(
        held.holders[0].attachment.as_ref().unwrap().node,
        "worker-1",
        "the node is recorded from the certificate"
    );
    let denied = w1.allocate(alloc_for("spoof", "worker-2")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    // Releasing another node's attachment frees nothing.
    let r = w1.release(release("admin-made", "")).await.unwrap().into_inner();
    assert!(r.released.is_empty(), "worker-1 cannot free worker-2's address");
    let gc = pb::GcRequest {
        request_id: "gc".into(),
        network_name: "".into(),
        cni_network: "test-net".into(),
        node: "worker-2".into(),
        keep: vec![],
    };
    assert_eq!(w1.gc(gc).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    let by_ip = pb::ReleaseIpRequest {
        request_id: "x".into(),
        network_name: "".into(),
        ip: ip.clone(),
        container_id: "admin-made".into(),
        ifname: "eth0".into(),
    };
    assert_eq!(
        w1.release_ip(by_ip).await.unwrap_err().code(),
        tonic::Code::PermissionDenied,
        "release by address is for operators"
    );
    assert_eq!(
        w1.add_learner(pb::AddLearnerRequest { id: 9, addr: "127.0.0.1:1".into() }).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    // Its own attachment it can release.
    let r = w1.release(release("w1-pod", "")).await.unwrap().into_inner();
    assert_eq!(r.released.len(), 1);

    // Without a client certificate there is no connection at all.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", c.addrs[&leader])).unwrap().connect_lazy();
    let err = pb::ipam_client::IpamClient::new(plain).status(pb::StatusRequest { local: true }).await.unwrap_err();
    assert_ne!(err.code(), tonic::Code::Ok);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificates_are_picked_up_without_a_restart() {
    let c = TestCluster::start_tls(3).await;
    let leader = c.leader().await;
    let certs = c.certs.clone().unwrap();
    let before = c.nodes[&leader].ctx.transport.generation();
    // Re-issue the leader's certificate from the same CA (cert-manager rotating it in place).
    let ca_key = std::fs::read_to_string(certs.join("ca-key.pem")).unwrap();
    let (cert, key) = cluster::tls::certs::reissue(
        &ca_key,
        &format!("n{leader}"),
        cluster::tls::identity::ROLE_PEER,
        &["127.0.0.1"],
        1,
    )
    .unwrap();
    std::fs::write(certs.join(format!("peer-n{leader}.pem")), &cert).unwrap();
    std::fs::write(certs.join(format!("peer-n{leader}-key.pem")), &key).unwrap();
    eventually("the node to reload its certificate", || async {
        (c.nodes[&leader].ctx.transport.generation() > before).then_some(())
    })
    .await;
    // New connections work with the new certificate.
    c.client(leader).status(pb::StatusRequest { local: false }).await.unwrap();
    c.shutdown().await;
}

/// Regression: request ids were one table for every caller, so worker-2 sending worker-1's request
/// id got worker-1's remembered reply (its address) instead of an allocation of its own (seen
/// failing before: worker-2 was told it holds 10.50.0.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_remembered_per_caller() {
    let c = TestCluster::start_tls(3).await;
    let leader = c.leader().await;
    let with_id = |container: &str| {
        let mut req = alloc_for(container, "");
        req.request_id = "shared-request-id".into();
        req
    };
    let mut w1 = c.client_as(leader, "node-worker-1");
    let mut w2 = c.client_as(leader, "node-worker-2");
    let first = w1.allocate(with_id("w1-pod")).await.unwrap().into_inner();
    assert_eq!(first.leases[0].ip, "10.50.0.1");
    let again = w1.allocate(with_id("w1-pod")).await.unwrap().into_inner();
    assert_eq!(again.leases, first.leases, "the same caller's retry is answered from memory");
    let other = w2.allocate(with_id("w2-pod")).await.unwrap().into_inner();
    assert_eq!(other.leases[0].ip, "10.50.0.2", "another caller's id is its own");
    let held = c.client(leader).who_has(pb::WhoHasRequest { ip: "10.50.0.2".into() }).await.unwrap().into_inner();
    assert_eq!(held.holders[0].attachment.as_ref().unwrap().container_id, "w2-pod");
}
