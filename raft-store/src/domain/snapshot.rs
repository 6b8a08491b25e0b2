//! The state as bytes, for Raft snapshots: compact (varints, offsets delta-encoded, hex container
//! ids and UUIDs packed as bytes, repeated names interned) and validated in full when decoded —
//! a corrupt or hostile snapshot yields an error, never a panic or an inconsistent state.

use std::collections::{HashMap, HashSet, VecDeque};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::apply::{ensure_pool, set_blocked_elsewhere};
use super::event::{Reply, MAX_IFNAME, MAX_NAME, MAX_REQUEST_ID};
use super::owner::{Allocation, Interner, Sym};
use super::state::{HistoryEntry, Limits, PoolKey, State};

/// Format version written in every snapshot.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Why snapshot bytes could not be turned back into a state.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a snapshot of this format.
    #[error("snapshot is not decodable: {0}")]
    Decode(#[from] postcard::Error),
    /// Written by a newer or unknown version.
    #[error("snapshot format version {0} is not supported (this build reads version {SNAPSHOT_VERSION})")]
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
    fn pack(s: &str) -> Packed {
        if let Some(uuid) = parse_uuid(s) {
            return Packed::Uuid(uuid);
        }
        if !s.is_empty()
            && s.len().is_multiple_of(2)
            && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let bytes = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect();
            return Packed::Hex(bytes);
        }
        Packed::Text(s.to_string())
    }

    fn unpack(&self) -> String {
        match self {
            Packed::Text(s) => s.clone(),
            Packed::Hex(bytes) => hex(bytes),
            Packed::Uuid(b) => {
                let h = hex(b);
                format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        write!(s, "{b:02x}").expect("write to String");
        s
    })
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    if digits.len() != 32 || !digits.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Encodes `state`. The same state always gives the same bytes.
pub fn encode(state: &State) -> Vec<u8> {
    let mut networks: Vec<(&Sym, &Vec<IpNet>)> = state.networks.iter().collect();
    networks.sort_by_key(|(sym, _)| **sym);
    let mut pools = Vec::with_capacity(state.pools.len());
    for (network, cidrs) in networks {
        for cidr in cidrs {
            let pool = &state.pools[&PoolKey { network: *network, cidr: *cidr }];
            let (mut prev_offset, mut prev_time) = (0u128, 0u64);
            let allocations = pool
                .offsets()
                .into_iter()
                .map(|offset| {
                    let a = pool.get(offset).expect("listed");
                    let record = AllocationRecord {
                        offset_delta: offset - prev_offset,
                        container_id: Packed::pack(&a.container_id),
                        ifname: a.ifname.0,
                        pod: a.pod.as_ref().map(|(ns, name)| (ns.0, name.to_string())),
                        pod_uid: a.pod_uid.as_deref().map(Packed::pack),
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
    let mut out = postcard::to_stdvec(&Header { version: SNAPSHOT_VERSION }).expect("encode header");
    postcard::to_io(&body, &mut out).expect("encode into a Vec");
    out
}

/// Decodes and validates a snapshot made by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<State, SnapshotError> {
    let (header, rest): (Header, &[u8]) = postcard::take_from_bytes(bytes)?;
    if header.version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version(header.version));
    }
    let body: Body = postcard::from_bytes(rest)?;
    let invalid = |msg: String| SnapshotError::Invalid(msg);

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
    for record in &body.pools {
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
            let allocation = decode_allocation(a, since, &sym)?;
            check_allocation(&state.names, &allocation)?;
            let pool = state.pools.get_mut(&key).expect("created above");
            if offset > super::ip::last_offset(super::ip::host_bits(&record.cidr)) {
                return Err(invalid(format!("offset {offset} is outside pool {}", record.cidr)));
            }
            let duplicate = pool.find_by_container(&allocation.container_id, allocation.ifname).is_some()
                || allocation.pod.as_ref().is_some_and(|(ns, n)| pool.find_by_pod(*ns, n, allocation.ifname).is_some());
            if duplicate {
                return Err(invalid(format!("pool {} holds two addresses for one owner", record.cidr)));
            }
            let ip = pool.ip_at(offset);
            pool.insert(offset, allocation);
            set_blocked_elsewhere(&mut state, network, record.cidr, ip, true);
        }
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
    sym: &impl Fn(u32, &str) -> Result<Sym, SnapshotError>,
) -> Result<Allocation, SnapshotError> {
    Ok(Allocation {
        container_id: a.container_id.unpack().into(),
        ifname: sym(a.ifname, "ifname")?,
        pod: match &a.pod {
            Some((ns, name)) => Some((sym(*ns, "pod namespace")?, name.as_str().into())),
            None => None,
        },
        pod_uid: a.pod_uid.as_ref().map(|p| p.unpack().into()),
        node: a.node.map(|n| sym(n, "node")).transpose()?,
        cni_network: sym(a.cni_network, "cni network")?,
        since_ms,
    })
}

fn check_allocation(names: &Interner, a: &Allocation) -> Result<(), SnapshotError> {
    let too_long = a.container_id.is_empty()
        || a.container_id.len() > MAX_NAME
        || names.name(a.ifname).len() > MAX_IFNAME
        || a.pod.as_ref().is_some_and(|(_, n)| n.len() > MAX_NAME)
        || a.pod_uid.as_ref().is_some_and(|u| u.len() > MAX_NAME);
    if too_long {
        return Err(SnapshotError::Invalid(format!(
            "allocation of {:?} has an empty or oversized field",
            a.container_id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_every_kind_of_string() {
        for s in [
            "",
            "abc",
            "ABCD",
            "0123456789abcdef",
            "0a",
            "0",
            "123e4567-e89b-12d3-a456-426614174000",
            "123E4567-e89b-12d3-a456-426614174000",
            "a-b",
        ] {
            assert_eq!(Packed::pack(s).unpack(), s, "{s}");
        }
        assert!(matches!(Packed::pack("123e4567-e89b-12d3-a456-426614174000"), Packed::Uuid(_)));
        assert!(matches!(Packed::pack(&"ab".repeat(32)), Packed::Hex(_)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(matches!(decode(&[9]), Err(SnapshotError::Version(9))));
        let good = encode(&State::default());
        assert!(decode(&good).is_ok());
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
    }
}
