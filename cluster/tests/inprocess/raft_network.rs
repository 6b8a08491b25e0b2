//! The Raft network under a slow follower and with stale addresses.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster::raft_net::client::PeerNetwork;
use cluster::raft_net::{CLUSTER_KEY, TARGET_KEY};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Vote};
use proto::raft as pb;
use raft_store::types::TypeConfig;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use testkit::inprocess_cluster::TestCluster;

/// A follower that needs `delay` for every AppendEntries, counting what it receives and what it
/// finished (a request the client gave up on is dropped half-way, not finished).
#[derive(Clone)]
struct SlowFollower {
    delay: Duration,
    received: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl pb::raft_server::Raft for SlowFollower {
    async fn append_entries(
        &self,
        _req: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        self.received.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(pb::AppendEntriesResponse {
            result: Some(pb::append_entries_response::Result::Success(true)),
        }))
    }
    async fn vote(&self, _req: Request<pb::VoteRequest>) -> Result<Response<pb::VoteResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn install_snapshot(
        &self,
        _req: Request<pb::InstallSnapshotRequest>,
    ) -> Result<Response<pb::InstallSnapshotResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn describe(&self, _req: Request<pb::DescribeRequest>) -> Result<Response<pb::DescribeResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn compact(&self, _req: Request<pb::CompactRequest>) -> Result<Response<pb::CompactResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

fn entries_request(n: u64) -> openraft::raft::AppendEntriesRequest<TypeConfig> {
    let log_id = |index| LogId::new(CommittedLeaderId::new(1, 0), index);
    openraft::raft::AppendEntriesRequest {
        vote: Vote::new_committed(1, 0),
        prev_log_id: Some(log_id(0)),
        entries: (1..=n).map(|i| Entry { log_id: log_id(i), payload: EntryPayload::Blank }).collect(),
        leader_commit: Some(log_id(0)),
    }
}

/// Regression: openraft gives each AppendEntries its heartbeat interval (100 ms here) and drops the
/// call when that passes. A follower that needs 250 ms had every request cancelled half-way and the
/// same entries sent again, forever: replication to it never made progress. Now the first request
/// completes on the wire and a later call for the same entries takes its answer.
#[tokio::test]
async fn a_follower_slower_than_the_heartbeat_still_acknowledges_entries_and_nothing_is_cancelled() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let follower =
        SlowFollower { delay: Duration::from_millis(250), received: Arc::default(), finished: Arc::default() };
    let server = pb::raft_server::RaftServer::new(follower.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let mut network = PeerNetwork::new("test", cluster::tls::Transport::Insecure);
    let ttl = Duration::from_millis(100);
    let mut acknowledged = None;
    // As openraft's replication loop does: each attempt bounded by the heartbeat interval.
    for attempt in 0..30 {
        let mut client = network.new_client(1, &BasicNode::new(addr.to_string())).await;
        let call = client.append_entries(entries_request(8), RPCOption::new(ttl));
        if let Ok(Ok(resp)) = tokio::time::timeout(ttl, call).await {
            acknowledged = Some((attempt, resp));
            break;
        }
    }
    let (attempt, resp) = acknowledged.expect("the slow follower's acknowledgment reached the leader");
    assert!(resp.is_success(), "{resp:?}");
    assert!(attempt >= 1, "the first attempt cannot have been answered within 100 ms");
    // Let anything still on the wire end before counting.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(follower.received.load(Ordering::SeqCst), 1, "the entries were sent once, not once per attempt");
    assert_eq!(follower.finished.load(Ordering::SeqCst), 1, "no request was cancelled half-way");
}

/// A message addressed to another node (a stale address book) is refused, not answered.
#[tokio::test]
async fn a_raft_message_for_another_node_is_refused() {
    let c = TestCluster::start(1).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", c.addrs[&0])).unwrap().connect_lazy();
    let mut client = pb::raft_client::RaftClient::new(channel);
    let vote = |target: &str| {
        let mut req = Request::new(pb::VoteRequest {
            vote: Some(pb::Vote { leader_id: Some(pb::LeaderId { term: 99, node_id: 7 }), committed: false }),
            last_log_id: None,
        });
        req.metadata_mut().insert(CLUSTER_KEY, "test".parse().unwrap());
        req.metadata_mut().insert(TARGET_KEY, target.parse().unwrap());
        req
    };
    let err = client.vote(vote("5")).await.expect_err("node 0 must not answer for node 5");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("node 5"), "{err}");
    // The same message for node 0 is answered (the vote itself is refused: its log is behind).
    let resp = client.vote(vote("0")).await.expect("node 0 answers for itself").into_inner();
    assert!(!resp.vote_granted);
}
