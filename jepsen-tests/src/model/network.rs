//! The sequential specification of one network: lowest-free allocation, idempotent per owner,
//! all-or-nothing across ranges, request ids applied at most once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::range::Range;
use crate::wgl::Model;

/// Interned owner string (per network).
pub type OwnerId = u32;
/// Interned pool (range CIDR) of one network.
pub type PoolId = u32;
/// Interned request id; only ids that occur more than once in the history need one.
pub type ReqId = u32;

/// What an operation returns in the model (and, for definite operations, what was observed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Observation {
    /// Allocate succeeded: one address per range, request order.
    Allocated(Vec<IpAddr>),
    /// Allocate failed because some range had no free address; nothing changed.
    Exhausted,
    /// A release (always succeeds).
    Released,
    /// Addresses held by one owner.
    Owned(BTreeSet<IpAddr>),
    /// The whole network: ip → holders.
    Table(BTreeMap<IpAddr, BTreeSet<OwnerId>>),
}

/// One range of an allocate, with its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRange {
    /// Pool = (network, CIDR of this range).
    pub pool: PoolId,
    /// The canonical range.
    pub range: Arc<Range>,
}

/// The request part of an operation on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// CNI ADD.
    Allocate {
        /// Set when this request id occurs more than once in the history.
        req: Option<ReqId>,
        /// Who asks.
        owner: OwnerId,
        /// One address from each, or none.
        ranges: Vec<PoolRange>,
        /// Whether addresses held in other pools of the network count as taken.
        overlapping: bool,
    },
    /// Release everything `owner` holds in `pools`.
    Release {
        /// Set when this request id occurs more than once.
        req: Option<ReqId>,
        /// Whose addresses.
        owner: OwnerId,
        /// Which pools.
        pools: Vec<PoolId>,
    },
    /// Release `ip` if `owner` holds it (any pool).
    ReleaseIp {
        /// Set when this request id occurs more than once.
        req: Option<ReqId>,
        /// The address.
        ip: IpAddr,
        /// Expected holder.
        owner: OwnerId,
    },
    /// Addresses held by `owner`.
    ReadOwner {
        /// Whose addresses.
        owner: OwnerId,
    },
    /// The whole network table.
    ReadAll,
}

/// An operation for the search: a request and, when the outcome is known, what was observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetOp {
    /// What was asked.
    pub request: Request,
    /// `None` for indeterminate (`info`) operations: any outcome is accepted.
    pub expect: Option<Observation>,
}

/// Model state of one network: who holds which address in which pool, plus replies of
/// request ids that may be retried.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NetState {
    held: BTreeMap<(IpAddr, PoolId), OwnerId>,
    replies: BTreeMap<ReqId, Observation>,
}

impl NetState {
    /// Applies a request; returns the next state and what the request returns.
    pub fn apply(&self, request: &Request) -> (NetState, Observation) {
        let req = match request {
            Request::Allocate { req, .. } | Request::Release { req, .. } | Request::ReleaseIp { req, .. } => *req,
            Request::ReadOwner { .. } | Request::ReadAll => None,
        };
        if let Some(cached) = req.and_then(|r| self.replies.get(&r)) {
            return (self.clone(), cached.clone());
        }
        let mut next = self.clone();
        let obs = match request {
            Request::Allocate { owner, ranges, overlapping, .. } => next.allocate(*owner, ranges, *overlapping),
            Request::Release { owner, pools, .. } => {
                next.held.retain(|(_, pool), o| !(o == owner && pools.contains(pool)));
                Observation::Released
            }
            Request::ReleaseIp { ip, owner, .. } => {
                next.held.retain(|(a, _), o| !(a == ip && o == owner));
                Observation::Released
            }
            Request::ReadOwner { owner } => Observation::Owned(self.owned_by(*owner)),
            Request::ReadAll => Observation::Table(self.table()),
        };
        if let Some(r) = req {
            next.replies.insert(r, obs.clone());
        }
        (next, obs)
    }

    fn allocate(&mut self, owner: OwnerId, ranges: &[PoolRange], overlapping: bool) -> Observation {
        let mut tentative = self.held.clone();
        let mut ips = Vec::with_capacity(ranges.len());
        for pr in ranges {
            let mine = tentative.iter().find(|((_, pool), o)| *pool == pr.pool && **o == owner).map(|((ip, _), _)| *ip);
            let ip = match mine {
                Some(ip) => ip,
                None => {
                    let taken = |ip: IpAddr| {
                        if overlapping {
                            tentative.range((ip, PoolId::MIN)..=(ip, PoolId::MAX)).next().is_some()
                        } else {
                            tentative.contains_key(&(ip, pr.pool))
                        }
                    };
                    match pr.range.lowest_free(taken) {
                        Some(ip) => ip,
                        None => return Observation::Exhausted,
                    }
                }
            };
            tentative.insert((ip, pr.pool), owner);
            ips.push(ip);
        }
        self.held = tentative;
        Observation::Allocated(ips)
    }

    /// Addresses held by `owner` in any pool.
    pub fn owned_by(&self, owner: OwnerId) -> BTreeSet<IpAddr> {
        self.held.iter().filter(|(_, o)| **o == owner).map(|((ip, _), _)| *ip).collect()
    }

    /// ip → holders, over all pools.
    pub fn table(&self) -> BTreeMap<IpAddr, BTreeSet<OwnerId>> {
        let mut t: BTreeMap<IpAddr, BTreeSet<OwnerId>> = BTreeMap::new();
        for ((ip, _), o) in &self.held {
            t.entry(*ip).or_default().insert(*o);
        }
        t
    }
}

/// The [`Model`] of one network for the linearizability search.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkModel;

impl Model for NetworkModel {
    type State = NetState;
    type Op = NetOp;

    fn init(&self) -> NetState {
        NetState::default()
    }

    fn step(&self, state: &NetState, op: &NetOp) -> Option<NetState> {
        let (next, obs) = state.apply(&op.request);
        match &op.expect {
            Some(expected) if *expected != obs => None,
            _ => Some(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::RangeSpec;

    fn pr(pool: PoolId, r: &str) -> PoolRange {
        PoolRange { pool, range: Arc::new(Range::parse(&RangeSpec::new(r)).unwrap()) }
    }

    fn alloc(owner: OwnerId, ranges: Vec<PoolRange>, overlapping: bool) -> Request {
        Request::Allocate { req: None, owner, ranges, overlapping }
    }

    fn ips(v: &[&str]) -> Observation {
        Observation::Allocated(v.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn lowest_free_idempotent_and_release() {
        let s = NetState::default();
        let (s, o) = s.apply(&alloc(1, vec![pr(0, "10.0.0.0/29")], true));
        assert_eq!(o, ips(&["10.0.0.1"]));
        let (s, o) = s.apply(&alloc(2, vec![pr(0, "10.0.0.0/29")], true));
        assert_eq!(o, ips(&["10.0.0.2"]));
        let (s, o) = s.apply(&alloc(1, vec![pr(0, "10.0.0.0/29")], true));
        assert_eq!(o, ips(&["10.0.0.1"]), "same owner gets the same address");
        let (s, _) = s.apply(&Request::Release { req: None, owner: 1, pools: vec![0] });
        let (_, o) = s.apply(&alloc(3, vec![pr(0, "10.0.0.0/29")], true));
        assert_eq!(o, ips(&["10.0.0.1"]));
    }

    #[test]
    fn overlapping_pools_share_addresses_only_when_overlapping() {
        let s = NetState::default();
        let (s, _) = s.apply(&alloc(1, vec![pr(0, "10.0.0.0/29")], true));
        let (_, o) = s.apply(&alloc(2, vec![pr(1, "10.0.0.0/30")], true));
        assert_eq!(o, ips(&["10.0.0.2"]));
        let (_, o) = s.apply(&alloc(2, vec![pr(1, "10.0.0.0/30")], false));
        assert_eq!(o, ips(&["10.0.0.1"]));
    }

    #[test]
    fn multi_range_is_all_or_nothing() {
        let s = NetState::default();
        let (s, _) = s.apply(&alloc(1, vec![pr(1, "10.0.1.0/30")], true));
        let both = vec![pr(0, "fd00::/120"), pr(1, "10.0.1.0/30")];
        let (s, o) = s.apply(&alloc(2, both.clone(), true));
        assert_eq!(o, ips(&["fd00::1", "10.0.1.2"]));
        let (s2, o) = s.apply(&alloc(3, both, true));
        assert_eq!(o, Observation::Exhausted);
        assert_eq!(s2, s, "exhaustion changes nothing");
        assert_eq!(s.owned_by(2).len(), 2);
    }

    #[test]
    fn guarded_release_ip_and_retried_request_ids() {
        let s = NetState::default();
        let a = Request::Allocate { req: Some(7), owner: 1, ranges: vec![pr(0, "10.0.0.0/29")], overlapping: true };
        let (s, _) = s.apply(&a);
        let (s, _) = s.apply(&Request::ReleaseIp { req: None, ip: "10.0.0.1".parse().unwrap(), owner: 2 });
        assert_eq!(s.owned_by(1).len(), 1, "wrong owner: not released");
        let (s, _) = s.apply(&Request::Release { req: None, owner: 1, pools: vec![0] });
        let (s, o) = s.apply(&a);
        assert_eq!(o, ips(&["10.0.0.1"]), "cached reply");
        assert!(s.owned_by(1).is_empty(), "a retried request id has no effect");
    }

    #[test]
    fn model_step_checks_expectations() {
        let m = NetworkModel;
        let op = |expect| NetOp { request: alloc(1, vec![pr(0, "10.0.0.0/29")], true), expect };
        assert!(m.step(&m.init(), &op(Some(ips(&["10.0.0.1"])))).is_some());
        assert!(m.step(&m.init(), &op(Some(ips(&["10.0.0.2"])))).is_none());
        assert!(m.step(&m.init(), &op(None)).is_some());
    }
}
