//! The state as bytes, for Raft snapshots: compact (varints, offsets delta-encoded, hex container
//! ids and UUIDs packed as bytes, repeated names interned) and validated in full when decoded —
//! a corrupt or hostile snapshot yields an error, never a panic or an inconsistent state.

use std::collections::{HashMap, HashSet, VecDeque};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::apply::{ensure_pool, set_blocked_elsewhere};
use super::event::{Reply, MAX_IFNAME, MAX_NAME, MAX_REQUEST_ID};
use super::limits::Limits;
use super::owner::{Allocation, Interner, Sym};
use super::packed::Part;
use super::state::{HistoryEntry, PoolKey, State};

/// Format version written in every snapshot whose allocations all reserve their address across
/// the network (the only kind version 1 knows), so nodes that read only version 1 keep reading it.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Format version written when some allocation was made with overlapping ranges off: version 1
/// followed by a [`Trailer`] listing those allocations. Read by this build, refused by older ones.
pub const SNAPSHOT_VERSION_UNRESERVED: u32 = 2;
/// Format version written once the cluster version is 2 or more ([`crate::format`]): version 2
/// (the trailer always present) followed by an [`Extension`] with the cluster version. Never
/// written while the cluster version is 1, so that members still on release 0.1.0 read every
/// snapshot.
pub const SNAPSHOT_VERSION_CLUSTER: u32 = 3;

/// Why snapshot bytes could not be turned back into a state.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a snapshot of this format.
    #[error("snapshot is not decodable: {0}")]
    Decode(#[from] postcard::Error),
    /// Written by a newer or unknown version.
    #[error(
        "snapshot format version {0} is not supported (this build reads versions {SNAPSHOT_VERSION} to \
         {SNAPSHOT_VERSION_CLUSTER}) — run a newer binary on this node"
    )]
    Version(u32),
    /// Decodable, but breaks an invariant of the state.
    #[error("snapshot is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct Body {
    limits: Limits,
    events_applied: u64,
    names: Vec<String>,
    pools: Vec<PoolRecord>,
    requests: Vec<(String, Reply)>,
    history: Vec<HistoryEntry>,
}

/// What version 2 adds after the body: per pool (its index in `Body::pools`), the offsets of the
/// allocations that do not reserve their address across the network, ascending.
#[derive(Serialize, Deserialize, Default)]
struct Trailer {
    unreserved: Vec<(u32, Vec<u128>)>,
}

/// What version 3 adds after the trailer.
#[derive(Serialize, Deserialize)]
struct Extension {
    cluster_version: u32,
}

/// The snapshot format version `state` is written in.
pub fn version_for(state: &State, has_unreserved: bool) -> u32 {
    if state.cluster_version() >= 2 {
        SNAPSHOT_VERSION_CLUSTER
    } else if has_unreserved {
        SNAPSHOT_VERSION_UNRESERVED
    } else {
        SNAPSHOT_VERSION
    }
}

/// The format version of snapshot bytes, from their header alone.
pub fn peek_version(bytes: &[u8]) -> Result<u32, SnapshotError> {
    Ok(postcard::take_from_bytes::<Header>(bytes)?.0.version)
}

#[derive(Serialize, Deserialize)]
struct PoolRecord {
    network: u32,
    cidr: IpNet,
    allocations: Vec<AllocationRecord>,
}

#[derive(Serialize, Deserialize)]
struct AllocationRecord {
    /// Offset minus the previous record's offset (the first: minus zero).
    offset_delta: u128,
    container_id: Packed,
    ifname: u32,
    pod: Option<(u32, String)>,
    pod_uid: Option<Packed>,
    node: Option<u32>,
    cni_network: u32,
    /// Time minus the previous record's time.
    since_delta: i64,
}

/// A string stored in fewer bytes when it is lowercase hex (container ids) or a UUID (pod UIDs).
#[derive(Serialize, Deserialize)]
enum Packed {
    Text(String),
    Hex(Vec<u8>),
    Uuid([u8; 16]),
}

impl Packed {
    fn from_part(part: Part<'_>) -> Packed {
        match part {
            Part::Text(s) => Packed::Text(s.to_string()),
            Part::Hex(bytes) => Packed::Hex(bytes.to_vec()),
            Part::Uuid(bytes) => Packed::Uuid(*bytes),
        }
    }

    fn as_part(&self) -> Part<'_> {
        match self {
            Packed::Text(s) => Part::Text(s),
            Packed::Hex(bytes) => Part::Hex(bytes),
            Packed::Uuid(bytes) => Part::Uuid(bytes),
        }
    }
}

/// Encodes `state`. The same state always gives the same bytes.
pub fn encode(state: &State) -> Vec<u8> {
    let mut networks: Vec<(&Sym, &Vec<IpNet>)> = state.networks.iter().collect();
    networks.sort_by_key(|(sym, _)| **sym);
    let mut pools = Vec::with_capacity(state.pools.len());
    let mut trailer = Trailer::default();
    for (network, cidrs) in networks {
        for cidr in cidrs {
            let pool = &state.pools[&PoolKey { network: *network, cidr: *cidr }];
            let unreserved: Vec<u128> =
                pool.offsets().into_iter().filter(|o| pool.get(*o).is_some_and(|a| !a.overlap_reserved)).collect();
            if !unreserved.is_empty() {
                trailer.unreserved.push((pools.len() as u32, unreserved));
            }
            let (mut prev_offset, mut prev_time) = (0u128, 0u64);
            let allocations = pool
                .offsets()
                .into_iter()
                .map(|offset| {
                    let a = pool.get(offset).expect("listed");
                    let (container_id, pod_name, pod_uid) = a.packed_parts();
                    let record = AllocationRecord {
                        offset_delta: offset - prev_offset,
                        container_id: Packed::from_part(container_id),
                        ifname: a.ifname.0,
                        pod: a.pod_packed().zip(pod_name).map(|((ns, _), name)| (ns.0, name.unpacked())),
                        pod_uid: pod_uid.map(Packed::from_part),
                        node: a.node.map(|n| n.0),
                        cni_network: a.cni_network.0,
                        since_delta: a.since_ms.wrapping_sub(prev_time) as i64,
                    };
                    (prev_offset, prev_time) = (offset, a.since_ms);
                    record
                })
                .collect();
            pools.push(PoolRecord { network: network.0, cidr: *cidr, allocations });
        }
    }
    let body = Body {
        limits: state.limits,
        events_applied: state.events_applied,
        names: state.names.names().map(String::from).collect(),
        pools,
        requests: state.request_order.iter().map(|id| (id.clone(), state.requests[id].clone())).collect(),
        history: state.history.iter().cloned().collect(),
    };
    let version = version_for(state, !trailer.unreserved.is_empty());
    let mut out = postcard::to_stdvec(&Header { version }).expect("encode header");
    postcard::to_io(&body, &mut out).expect("encode into a Vec");
    if version >= SNAPSHOT_VERSION_UNRESERVED {
        postcard::to_io(&trailer, &mut out).expect("encode into a Vec");
    }
    if version >= SNAPSHOT_VERSION_CLUSTER {
        postcard::to_io(&Extension { cluster_version: state.cluster_version() }, &mut out).expect("encode into a Vec");
    }
    out
}

/// Decodes and validates a snapshot made by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<State, SnapshotError> {
    let (header, rest): (Header, &[u8]) = postcard::take_from_bytes(bytes)?;
    if !(SNAPSHOT_VERSION..=SNAPSHOT_VERSION_CLUSTER).contains(&header.version) {
        return Err(SnapshotError::Version(header.version));
    }
    let (body, rest): (Body, &[u8]) = postcard::take_from_bytes(rest)?;
    let invalid = |msg: String| SnapshotError::Invalid(msg);
    let mut unreserved: HashSet<(usize, u128)> = HashSet::new();
    let mut cluster_version = 0;
    if header.version >= SNAPSHOT_VERSION_UNRESERVED {
        let (trailer, rest): (Trailer, &[u8]) = postcard::take_from_bytes(rest)?;
        if header.version >= SNAPSHOT_VERSION_CLUSTER {
            let extension: Extension = postcard::from_bytes(rest)?;
            if !crate::format::is_supported(extension.cluster_version) || extension.cluster_version < 2 {
                return Err(invalid(format!(
                    "a version {SNAPSHOT_VERSION_CLUSTER} snapshot names cluster version {}",
                    extension.cluster_version
                )));
            }
            cluster_version = extension.cluster_version;
        }
        for (pool, offsets) in trailer.unreserved {
            if pool as usize >= body.pools.len() {
                return Err(invalid(format!("the unreserved list names pool #{pool}, which does not exist")));
            }
            unreserved.extend(offsets.into_iter().map(|o| (pool as usize, o)));
        }
    }

    let mut seen = HashSet::new();
    for name in &body.names {
        if name.len() > MAX_NAME || !seen.insert(name.as_str()) {
            return Err(invalid(format!("name table entry {name:?} is too long or repeated")));
        }
    }
    let names = Interner::from_names(body.names.clone());
    let sym = |id: u32, what: &str| -> Result<Sym, SnapshotError> {
        ((id as usize) < body.names.len())
            .then_some(Sym(id))
            .ok_or_else(|| invalid(format!("{what} refers to unknown name #{id}")))
    };

    let mut state = State::new(body.limits);
    state.names = names;
    state.events_applied = body.events_applied;
    state.cluster_version = cluster_version;
    let mut marked = 0usize;
    for (index, record) in body.pools.iter().enumerate() {
        let network = sym(record.network, "pool network")?;
        if record.cidr != record.cidr.trunc() {
            return Err(invalid(format!("pool {} has host bits set", record.cidr)));
        }
        if !ensure_pool(&mut state, network, record.cidr) {
            return Err(invalid(format!("pool {} of network #{} appears twice", record.cidr, network.0)));
        }
        let key = PoolKey { network, cidr: record.cidr };
        let (mut offset, mut since) = (0u128, 0u64);
        for (i, a) in record.allocations.iter().enumerate() {
            if i > 0 && a.offset_delta == 0 {
                return Err(invalid(format!("pool {} repeats an offset", record.cidr)));
            }
            offset = offset.checked_add(a.offset_delta).ok_or_else(|| invalid("offset overflows".into()))?;
            since = since.wrapping_add(a.since_delta as u64);
            let reserved = !unreserved.contains(&(index, offset));
            marked += usize::from(!reserved);
            let allocation = decode_allocation(a, since, reserved, &sym)?;
            check_allocation(&state.names, &allocation)?;
            let pool = state.pools.get_mut(&key).expect("created above");
            if offset > super::ip::last_offset(super::ip::host_bits(&record.cidr)) {
                return Err(invalid(format!("offset {offset} is outside pool {}", record.cidr)));
            }
            // Pods without a namespace (podman) do not identify an attachment: two may share a name.
            let keyed_pod = allocation.pod_packed().filter(|_| !allocation.has_namespaceless_pod(&state.names));
            let duplicate = pool.find_by_container_packed(allocation.container_packed(), allocation.ifname).is_some()
                || keyed_pod.is_some_and(|(ns, n)| pool.find_by_pod_packed(ns, n, allocation.ifname).is_some());
            if duplicate {
                return Err(invalid(format!("pool {} holds two addresses for one owner", record.cidr)));
            }
            let ip = pool.ip_at(offset);
            pool.insert(offset, allocation);
            if reserved {
                set_blocked_elsewhere(&mut state, network, record.cidr, ip, true);
            }
        }
    }
    if marked != unreserved.len() {
        return Err(invalid("the unreserved list names offsets no allocation holds".into()));
    }
    let mut requests = HashMap::new();
    let mut order = VecDeque::new();
    for (id, reply) in body.requests {
        if id.len() > MAX_REQUEST_ID || requests.insert(id.clone(), reply).is_some() {
            return Err(invalid(format!("request id {id:?} is too long or repeated")));
        }
        order.push_back(id);
    }
    state.requests = requests;
    state.request_order = order;
    state.history = body.history.into();
    Ok(state)
}

fn decode_allocation(
    a: &AllocationRecord,
    since_ms: u64,
    overlap_reserved: bool,
    sym: &impl Fn(u32, &str) -> Result<Sym, SnapshotError>,
) -> Result<Allocation, SnapshotError> {
    let container_id = a.container_id.as_part();
    let pod_uid = a.pod_uid.as_ref().map(Packed::as_part);
    let too_long = container_id.unpacked_len() == 0
        || container_id.unpacked_len() > MAX_NAME
        || a.pod.as_ref().is_some_and(|(_, n)| n.len() > MAX_NAME)
        || pod_uid.is_some_and(|u| u.unpacked_len() > MAX_NAME);
    if too_long {
        return Err(SnapshotError::Invalid(format!(
            "allocation of {:?} has an empty or oversized field",
            container_id.unpacked()
        )));
    }
    let pod = match &a.pod {
        Some((ns, name)) => Some((sym(*ns, "pod namespace")?, Part::Text(name))),
        None => None,
    };
    Ok(Allocation::from_parts(
        container_id,
        sym(a.ifname, "ifname")?,
        pod,
        pod_uid,
        a.node.map(|n| sym(n, "node")).transpose()?,
        sym(a.cni_network, "cni network")?,
        since_ms,
        overlap_reserved,
    ))
}

fn check_allocation(names: &Interner, a: &Allocation) -> Result<(), SnapshotError> {
    if names.name(a.ifname).len() > MAX_IFNAME {
        return Err(SnapshotError::Invalid(format!(
            "allocation of {:?} has an empty or oversized field",
            a.container_id()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
