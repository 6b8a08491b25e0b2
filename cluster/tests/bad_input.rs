//! Malformed input through the gRPC API of a real 3-node cluster (`whereabouts-node` processes on
//! 127.0.0.1): every case of [`CASES`] gets its exact status code (and the `x-whereabouts-error`
//! reason of `ipam.proto` when the node, not the transport, answers), and the cluster state —
//! every allocation, the pool usage and the membership — is the same afterwards as before.
//!
//! Each case changes one field of a valid request for a fresh owner, so a field that slipped
//! through validation would allocate (or release, or change membership) and be caught by the
//! state comparison. Run: `cargo test -p cluster --test bad_input`.

use std::time::Duration;

use proto::ipam as pb;
use proto::ipam::ipam_client::IpamClient;
use testkit::loopback_cluster::{LoopbackCluster, LoopbackOptions, QUICK_RAFT};
use testkit::requests;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// One request to send: a valid base request changed by a function, or raw bytes.
#[derive(Clone, Copy)]
enum Op {
    Allocate(fn(&mut pb::AllocateRequest)),
    Release(fn(&mut pb::ReleaseRequest)),
    ReleaseIp(fn(&mut pb::ReleaseIpRequest)),
    Check(fn(&mut pb::CheckRequest)),
    Gc(fn(&mut pb::GcRequest)),
    WhoHas(fn() -> String),
    List(fn(&mut pb::ListAllocationsRequest)),
    AddLearner(u64, &'static str),
    Promote(u64),
    RemoveNode(u64),
    /// Raw bytes (a protobuf body, possibly broken) to a method path.
    Raw(&'static str, fn() -> Vec<u8>),
}

/// One malformed input and the one answer it must get.
struct Case {
    name: &'static str,
    op: Op,
    /// The status code (`Code::Ok` for inputs that are odd but harmless, e.g. an unknown owner).
    code: Code,
    /// The `x-whereabouts-error` trailer; `None` when the transport answers (no trailer).
    reason: Option<&'static str>,
    /// Text the status message must contain (the field it names); "" for none.
    mentions: &'static str,
}

const fn case(name: &'static str, op: Op, code: Code, reason: Option<&'static str>, mentions: &'static str) -> Case {
    Case { name, op, code, reason, mentions }
}

const INVALID: Option<&str> = Some("invalid");
const NONE: Option<&str> = None;
const TRANSPORT: Option<&str> = None;

/// Six MiB: over the 4 MiB a node accepts (`proto::MAX_MESSAGE_BYTES`).
fn oversized() -> String {
    "x".repeat(6 << 20)
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- Allocate: size limits and transport ---
    case("allocate: message over 4 MiB", Op::Allocate(|r| r.network_name = oversized()), Code::OutOfRange, TRANSPORT, ""),
    case("allocate: network_name of 254 bytes", Op::Allocate(|r| r.network_name = "n".repeat(254)), Code::InvalidArgument, INVALID, "network_name"),
    case("allocate: network_name with a newline", Op::Allocate(|r| r.network_name = "a\nb".into()), Code::InvalidArgument, INVALID, "network_name"),
    case("allocate: no range and no static ip", Op::Allocate(|r| r.ranges.clear()), Code::InvalidArgument, INVALID, "ranges"),
    case("allocate: 17 ranges (limit 16)", Op::Allocate(|r| r.ranges = (0..17).map(|i| requests::range(&format!("10.90.{i}.0/24"))).collect()), Code::InvalidArgument, INVALID, "ranges"),
    case("allocate: 17 static ips (limit 16)", Op::Allocate(|r| r.static_ips = (100..117).map(|i| format!("10.77.0.{i}/24")).collect()), Code::InvalidArgument, INVALID, "ips"),
    case("allocate: 100000 excludes of garbage", Op::Allocate(|r| r.ranges[0].exclude = vec!["zz".into(); 100_000]), Code::InvalidArgument, INVALID, "ranges[0].exclude[0]"),
    // --- Allocate: ranges ---
    case("allocate: range prefix /33", Op::Allocate(|r| r.ranges[0].range = "10.77.0.0/33".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: range is not a CIDR", Op::Allocate(|r| r.ranges[0].range = "garbage".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: range is empty", Op::Allocate(|r| r.ranges[0].range = String::new()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: range /31 has no usable address", Op::Allocate(|r| r.ranges[0].range = "10.77.0.0/31".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: range /127 has no usable address", Op::Allocate(|r| r.ranges[0].range = "fd00::/127".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: range octet 256", Op::Allocate(|r| r.ranges[0].range = "10.77.0.256/24".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: range with a control character", Op::Allocate(|r| r.ranges[0].range = "10.77.0.0/2\u{7}4".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: START-END with the start outside the network", Op::Allocate(|r| r.ranges[0].range = "10.1.0.5-10.77.0.20/24".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: START-END mixing families", Op::Allocate(|r| r.ranges[0].range = "fd00::1-10.77.0.20/24".into()), Code::InvalidArgument, INVALID, "ranges[0].range"),
    case("allocate: exclude is not a CIDR or address", Op::Allocate(|r| r.ranges[0].exclude = vec!["10.77.0.0/99".into()]), Code::InvalidArgument, INVALID, "ranges[0].exclude[0]"),
    // --- Allocate: static addresses ---
    case("allocate: static ip octet 300", Op::Allocate(|r| r.static_ips = vec!["10.77.0.300/24".into()]), Code::InvalidArgument, INVALID, "static_ips[0]"),
    case("allocate: static ip without a prefix", Op::Allocate(|r| r.static_ips = vec!["10.77.0.9".into()]), Code::InvalidArgument, INVALID, "static_ips[0]"),
    case("allocate: static ip prefix /40", Op::Allocate(|r| r.static_ips = vec!["10.77.0.9/40".into()]), Code::InvalidArgument, INVALID, "static_ips[0]"),
    case("allocate: static ip held by another owner", Op::Allocate(|r| r.static_ips = vec!["10.77.0.1/24".into()]), Code::AlreadyExists, Some("address_taken"), "10.77.0.1"),
    case("allocate: seeded owner asks for another address in its pool", Op::Allocate(|r| { r.static_ips = vec!["10.77.0.60/24".into()]; r.attachment.as_mut().unwrap().container_id = "c-seed-1".into(); }), Code::FailedPrecondition, Some("owner_conflict"), "c-seed-1"),
    // --- Allocate: attachment and ids ---
    case("allocate: attachment missing", Op::Allocate(|r| r.attachment = None), Code::InvalidArgument, INVALID, "attachment"),
    case("allocate: container_id empty", Op::Allocate(|r| r.attachment.as_mut().unwrap().container_id.clear()), Code::InvalidArgument, INVALID, "container_id"),
    case("allocate: container_id of 254 bytes", Op::Allocate(|r| r.attachment.as_mut().unwrap().container_id = "c".repeat(254)), Code::InvalidArgument, INVALID, "container_id"),
    case("allocate: container_id with a NUL", Op::Allocate(|r| r.attachment.as_mut().unwrap().container_id = "c\0x".into()), Code::InvalidArgument, INVALID, "container_id"),
    case("allocate: ifname empty", Op::Allocate(|r| r.attachment.as_mut().unwrap().ifname.clear()), Code::InvalidArgument, INVALID, "ifname"),
    case("allocate: ifname of 16 bytes", Op::Allocate(|r| r.attachment.as_mut().unwrap().ifname = "e".repeat(16)), Code::InvalidArgument, INVALID, "ifname"),
    case("allocate: ifname with a slash", Op::Allocate(|r| r.attachment.as_mut().unwrap().ifname = "eth0/1".into()), Code::InvalidArgument, INVALID, "ifname"),
    case("allocate: ifname '..'", Op::Allocate(|r| r.attachment.as_mut().unwrap().ifname = "..".into()), Code::InvalidArgument, INVALID, "ifname"),
    case("allocate: pod_namespace without pod_name", Op::Allocate(|r| r.attachment.as_mut().unwrap().pod_name.clear()), Code::InvalidArgument, INVALID, "attachment.pod_name"),
    case("allocate: pod_name with an escape character", Op::Allocate(|r| r.attachment.as_mut().unwrap().pod_name = "p\u{1b}[31m".into()), Code::InvalidArgument, INVALID, "pod_name"),
    case("allocate: pod_uid of 300 bytes", Op::Allocate(|r| r.attachment.as_mut().unwrap().pod_uid = "u".repeat(300)), Code::InvalidArgument, INVALID, "pod_uid"),
    case("allocate: node with a DEL character", Op::Allocate(|r| r.attachment.as_mut().unwrap().node = "n\u{7f}".into()), Code::InvalidArgument, INVALID, "node"),
    case("allocate: cni_network of 254 bytes", Op::Allocate(|r| r.attachment.as_mut().unwrap().cni_network = "k".repeat(254)), Code::InvalidArgument, INVALID, "cni_network"),
    case("allocate: request_id of 129 bytes", Op::Allocate(|r| r.request_id = "r".repeat(129)), Code::InvalidArgument, INVALID, "request_id"),
    case("allocate: request_id with a tab", Op::Allocate(|r| r.request_id = "r\t1".into()), Code::InvalidArgument, INVALID, "request_id"),
    // --- Release ---
    case("release: message over 4 MiB", Op::Release(|r| r.container_id = oversized()), Code::OutOfRange, TRANSPORT, ""),
    case("release: container_id empty", Op::Release(|r| r.container_id.clear()), Code::InvalidArgument, INVALID, "container_id"),
    case("release: ifname empty", Op::Release(|r| r.ifname.clear()), Code::InvalidArgument, INVALID, "ifname"),
    case("release: ifname with a colon", Op::Release(|r| r.ifname = "eth0:1".into()), Code::InvalidArgument, INVALID, "ifname"),
    case("release: network_name of 254 bytes", Op::Release(|r| r.network_name = "n".repeat(254)), Code::InvalidArgument, INVALID, "network_name"),
    case("release: request_id with a control character", Op::Release(|r| r.request_id = "\u{2}".into()), Code::InvalidArgument, INVALID, "request_id"),
    case("release: unknown owner in an unknown network", Op::Release(|r| r.network_name = "no-such-network".into()), Code::Ok, NONE, ""),
    // --- ReleaseIp ---
    case("release_ip: ip octet 300", Op::ReleaseIp(|r| r.ip = "10.77.0.300".into()), Code::InvalidArgument, INVALID, "ip"),
    case("release_ip: ip empty", Op::ReleaseIp(|r| r.ip.clear()), Code::InvalidArgument, INVALID, "ip"),
    case("release_ip: ip with a NUL", Op::ReleaseIp(|r| r.ip = "10.77.0.1\0".into()), Code::InvalidArgument, INVALID, "ip"),
    case("release_ip: ip is a CIDR", Op::ReleaseIp(|r| r.ip = "10.77.0.1/24".into()), Code::InvalidArgument, INVALID, "ip"),
    case("release_ip: ip of 1 MiB", Op::ReleaseIp(|r| r.ip = "1".repeat(1 << 20)), Code::InvalidArgument, INVALID, "ip"),
    case("release_ip: held by another owner", Op::ReleaseIp(|r| r.ip = "10.77.0.1".into()), Code::FailedPrecondition, Some("owner_mismatch"), "c-seed-1"),
    case("release_ip: expected container_id empty", Op::ReleaseIp(|r| { r.ip = "10.77.0.1".into(); r.container_id.clear(); }), Code::InvalidArgument, INVALID, "container_id"),
    case("release_ip: unknown network", Op::ReleaseIp(|r| { r.ip = "10.77.0.1".into(); r.network_name = "no-such-network".into(); }), Code::Ok, NONE, ""),
    // --- Check ---
    case("check: message over 4 MiB", Op::Check(|r| r.ifname = oversized()), Code::OutOfRange, TRANSPORT, ""),
    case("check: unknown network", Op::Check(|r| r.network_name = "no-such-network".into()), Code::Ok, NONE, ""),
    // --- Gc ---
    case("gc: node empty", Op::Gc(|r| r.node.clear()), Code::InvalidArgument, INVALID, "node"),
    case("gc: 100001 keep entries (limit 100000)", Op::Gc(|r| r.keep = vec![pb::Owner { container_id: "c".into(), ifname: "e".into() }; 100_001]), Code::InvalidArgument, INVALID, "keep"),
    case("gc: keep entry with an empty ifname", Op::Gc(|r| r.keep = vec![pb::Owner { container_id: "c".into(), ifname: String::new() }]), Code::InvalidArgument, INVALID, "ifname"),
    case("gc: cni_network with a control character", Op::Gc(|r| r.cni_network = "net\u{8}".into()), Code::InvalidArgument, INVALID, "cni_network"),
    case("gc: unknown node", Op::Gc(|r| r.node = "no-such-node".into()), Code::Ok, NONE, ""),
    // --- WhoHas ---
    case("who_has: not an address", Op::WhoHas(|| "not-an-ip".into()), Code::InvalidArgument, INVALID, "ip"),
    case("who_has: empty", Op::WhoHas(String::new), Code::InvalidArgument, INVALID, "ip"),
    case("who_has: IPv6 with a zone", Op::WhoHas(|| "fe80::1%eth0".into()), Code::InvalidArgument, INVALID, "ip"),
    // --- ListAllocations ---
    case("list: bogus cursor", Op::List(|r| r.after = "\u{10ffff}garbage\u{1}".into()), Code::Ok, NONE, ""),
    case("list: cursor of 1 MiB", Op::List(|r| r.after = "z".repeat(1 << 20)), Code::Ok, NONE, ""),
    case("list: limit u32::MAX", Op::List(|r| r.limit = u32::MAX), Code::Ok, NONE, ""),
    case("list: unknown network", Op::List(|r| r.network_name = Some("no-such-network".into())), Code::Ok, NONE, ""),
    // --- Membership ---
    case("add_learner: empty addr", Op::AddLearner(7, ""), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: addr without a port", Op::AddLearner(7, "127.0.0.1"), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: port 0", Op::AddLearner(7, "127.0.0.1:0"), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: port 70000", Op::AddLearner(7, "127.0.0.1:70000"), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: empty host", Op::AddLearner(7, ":7000"), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: id u64::MAX with port 0", Op::AddLearner(u64::MAX, "h:0"), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: host with a newline", Op::AddLearner(7, "bad\nhost:7000"), Code::InvalidArgument, INVALID, "addr"),
    case("add_learner: host with a space", Op::AddLearner(7, "bad host:7000"), Code::InvalidArgument, INVALID, "addr"),
    // At cluster version 2 a learner must say it reads format 2 first: nobody listens at port 1,
    // so the call is refused before openraft sees it (which would change nothing either: AddNodes
    // never overwrites a member).
    case("add_learner: a voter's id with another address", Op::AddLearner(1, "127.0.0.1:1"), Code::FailedPrecondition, Some("precondition"), ""),
    case("promote: unknown id", Op::Promote(99), Code::FailedPrecondition, Some("membership"), ""),
    case("promote: id u64::MAX", Op::Promote(u64::MAX), Code::FailedPrecondition, Some("membership"), ""),
    case("remove_node: unknown id", Op::RemoveNode(99), Code::Ok, NONE, ""),
    // --- Raw protobuf bodies ---
    // tonic-prost maps protobuf decode errors to INTERNAL, as gRPC's status code guide says.
    case("raw: network_name not UTF-8", Op::Raw(ALLOCATE, || vec![0x12, 0x02, 0xff, 0xfe]), Code::Internal, TRANSPORT, ""),
    case("raw: truncated length-delimited field", Op::Raw(ALLOCATE, || vec![0x12, 0x64, b'a', b'b']), Code::Internal, TRANSPORT, ""),
    case("raw: wrong wire type for network_name", Op::Raw(ALLOCATE, || vec![0x10, 0x01]), Code::Internal, TRANSPORT, ""),
    case("raw: varint of 11 bytes", Op::Raw(ALLOCATE, || [vec![0x28], vec![0xff; 10], vec![0x01]].concat()), Code::Internal, TRANSPORT, ""),
    case("raw: only unknown fields", Op::Raw(ALLOCATE, || vec![0xf8, 0x06, 0x01, 0xfa, 0x06, 0x01, b'x']), Code::InvalidArgument, INVALID, "attachment"),
    case("raw: ReleaseIp over 4 MiB of garbage", Op::Raw(RELEASE_IP, || vec![0xab; 5 << 20]), Code::OutOfRange, TRANSPORT, ""),
    case("raw: unknown method", Op::Raw("/whereabouts.ipam.v1.Ipam/Nope", Vec::new), Code::Unimplemented, TRANSPORT, ""),
    case("raw: unknown service", Op::Raw("/whereabouts.ipam.v9.Ipam/Allocate", Vec::new), Code::Unimplemented, TRANSPORT, ""),
];

const ALLOCATE: &str = "/whereabouts.ipam.v1.Ipam/Allocate";
const RELEASE_IP: &str = "/whereabouts.ipam.v1.Ipam/ReleaseIp";

/// A valid allocation for a fresh owner in the seeded pool (what the Allocate cases start from).
fn base_allocate() -> pb::AllocateRequest {
    requests::allocate("", "10.77.0.0/24").container("c-fresh").pod("ns", "fresh").node("n1").cni_network("net").build()
}

/// A valid release of a seeded owner.
fn base_release() -> pb::ReleaseRequest {
    pb::ReleaseRequest {
        request_id: String::new(),
        network_name: String::new(),
        container_id: "c-seed-2".into(),
        ifname: "eth0".into(),
        deferred_ms: 0,
    }
}

/// A guarded release naming an owner that holds nothing (the cases set `ip`).
fn base_release_ip() -> pb::ReleaseIpRequest {
    pb::ReleaseIpRequest {
        request_id: String::new(),
        network_name: String::new(),
        ip: "10.77.0.2".into(),
        container_id: "c-other".into(),
        ifname: "eth0".into(),
    }
}

/// A GC of node n1 keeping nothing: valid, it would free every seeded address of `net` on n1.
fn base_gc() -> pb::GcRequest {
    pb::GcRequest {
        request_id: String::new(),
        network_name: String::new(),
        cni_network: "net".into(),
        node: "n1".into(),
        keep: vec![],
    }
}

/// Sends raw bytes as the body of a unary call.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// `m` as a request with a 10 s deadline.
fn timed<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.set_timeout(Duration::from_secs(10));
    r
}

/// Runs `op` against the node behind `channel`; `Ok(())` when the call succeeded.
async fn run(op: Op, channel: Channel) -> Result<(), Status> {
    let mut c = IpamClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    match op {
        Op::Allocate(f) => {
            let mut m = base_allocate();
            f(&mut m);
            c.allocate(timed(m)).await.map(drop)
        }
        Op::Release(f) => {
            let mut m = base_release();
            f(&mut m);
            c.release(timed(m)).await.map(drop)
        }
        Op::ReleaseIp(f) => {
            let mut m = base_release_ip();
            f(&mut m);
            c.release_ip(timed(m)).await.map(drop)
        }
        Op::Check(f) => {
            let mut m = pb::CheckRequest {
                network_name: String::new(),
                container_id: "c-seed-1".into(),
                ifname: "eth0".into(),
            };
            f(&mut m);
            c.check(timed(m)).await.map(drop)
        }
        Op::Gc(f) => {
            let mut m = base_gc();
            f(&mut m);
            c.gc(timed(m)).await.map(drop)
        }
        Op::WhoHas(ip) => c.who_has(timed(pb::WhoHasRequest { ip: ip() })).await.map(drop),
        Op::List(f) => {
            let mut m = requests::list_all(false).build();
            f(&mut m);
            c.list_allocations(timed(m)).await.map(drop)
        }
        Op::AddLearner(id, addr) => {
            c.add_learner(timed(pb::AddLearnerRequest { id, addr: addr.into() })).await.map(drop)
        }
        Op::Promote(id) => c.promote(timed(pb::PromoteRequest { id, ..Default::default() })).await.map(drop),
        Op::RemoveNode(id) => c.remove_node(timed(pb::RemoveNodeRequest { id })).await.map(drop),
        Op::Raw(path, body) => {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.map_err(|e| Status::unknown(format!("not ready: {e}")))?;
            grpc.unary(timed(body()), PathAndQuery::from_static(path), RawCodec).await.map(drop)
        }
    }
}

/// What the comparison covers: every allocation (all fields), every pool's usage, the members.
#[derive(Debug, PartialEq)]
struct Snapshot {
    allocations: Vec<pb::Allocation>,
    pools: Vec<pb::PoolUsage>,
    members: Vec<pb::Member>,
    count: u64,
}

/// The state, read (linearizably) from whichever node leads now.
async fn snapshot(p: &LoopbackCluster) -> Snapshot {
    for _ in 0..50 {
        let mut c = p.client(p.leader().await);
        if let Ok(s) = read_state(&mut c).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the state could not be read within 50 attempts\n{}", p.logs());
}

async fn read_state(c: &mut IpamClient<Channel>) -> Result<Snapshot, Status> {
    let mut allocations = Vec::new();
    let mut after = String::new();
    loop {
        // Small pages, so that paging itself is exercised.
        let req = requests::list_all(false).page(2, after.clone()).build();
        let page = c.list_allocations(timed(req)).await?.into_inner();
        allocations.extend(page.allocations);
        if page.next.is_empty() {
            break;
        }
        after = page.next;
    }
    let status = c.status(timed(pb::StatusRequest { local: false })).await?.into_inner();
    Ok(Snapshot { allocations, pools: status.pools, members: status.members, count: status.allocations })
}

/// Seeds a few allocations: two dynamic, one dual-stack in another network, one static.
async fn seed(c: &mut IpamClient<Channel>) {
    let mut reqs = Vec::new();
    for (i, pod) in [(1, "p1"), (2, "p2")] {
        let mut r = base_allocate();
        let a = r.attachment.as_mut().unwrap();
        a.container_id = format!("c-seed-{i}");
        a.pod_name = pod.into();
        reqs.push(r);
    }
    let mut dual = base_allocate();
    dual.network_name = "tenant".into();
    dual.ranges = vec![requests::range("10.78.0.0/28"), requests::range("fd00:78::/120")];
    dual.attachment.as_mut().unwrap().container_id = "c-seed-3".into();
    reqs.push(dual);
    let mut fixed = base_allocate();
    fixed.static_ips = vec!["10.77.0.50/24".into()];
    fixed.attachment.as_mut().unwrap().container_id = "c-seed-4".into();
    fixed.attachment.as_mut().unwrap().pod_name = "p4".into();
    reqs.push(fixed);
    for (i, mut r) in reqs.into_iter().enumerate() {
        r.request_id = format!("seed-{i}");
        c.allocate(r).await.expect("seed allocation");
    }
}

fn reason_of(s: &Status) -> Option<String> {
    s.metadata().get(proto::ERROR_REASON_KEY).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Checks one outcome against its case; `Err` describes the mismatch.
fn judge(case: &Case, outcome: &Result<(), Status>) -> Result<(), String> {
    let (code, reason, message) = match outcome {
        Ok(()) => (Code::Ok, None, String::new()),
        Err(s) => (s.code(), reason_of(s), s.message().to_string()),
    };
    if code != case.code {
        return Err(format!("code {code:?}, expected {:?} ({message})", case.code));
    }
    if reason.as_deref() != case.reason {
        return Err(format!("reason {reason:?}, expected {:?} ({message})", case.reason));
    }
    if case.reason.is_some() && message.is_empty() {
        return Err("empty status message".into());
    }
    if !message.contains(case.mentions) {
        return Err(format!("message {message:?} does not name {:?}", case.mentions));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_grpc_requests_get_their_status_and_change_nothing() {
    assert!(CASES.len() >= 50, "the table keeps at least 50 cases");
    let p = LoopbackOptions::new(env!("CARGO_BIN_EXE_whereabouts-node"), 3).args(QUICK_RAFT).start();
    seed(&mut p.client(p.leader().await)).await;
    let mut before = snapshot(&p).await;
    assert_eq!(before.count, 5, "seeded: {before:?}");

    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        // Alternate between the leader and a follower, so forwarding sees every input too.
        let leader = p.leader().await;
        let target = if i % 2 == 0 { leader } else { (leader + 1) % 3 };
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", p.endpoint(target))).unwrap().connect_lazy();
        eprintln!("case {i}: {} (node {target})", case.name);
        let outcome = tokio::time::timeout(Duration::from_secs(30), run(case.op, channel))
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer within 30 s")));
        let verdict = judge(case, &outcome);
        let after = snapshot(&p).await;
        let now = p.leader().await;
        if now != leader {
            failures.push(format!("{}: the leader changed from {leader} to {now}", case.name));
        }
        let unchanged = after == before;
        if let Err(e) = verdict {
            failures.push(format!("{} (sent to node {target}): {e}", case.name));
        }
        if !unchanged {
            failures.push(format!("{}: the state changed\nbefore: {before:?}\nafter: {after:?}", case.name));
            before = after;
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));

    // Every node applied the same log (rejected events included) to the same state.
    let want = before.allocations;
    for id in 0..3u64 {
        let mut c = p.client(id);
        let mut same = false;
        for _ in 0..100 {
            let req = requests::list_all(true).build();
            if c.list_allocations(req).await.expect("local list").into_inner().allocations == want {
                same = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(same, "node {id} did not converge to the leader's allocations");
    }
}
