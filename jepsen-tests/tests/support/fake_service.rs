//! A fake IPAM service with planted bugs: a deterministic, in-memory stand-in for a cluster
//! (correct, or deliberately buggy) that produces concurrent histories through `HistoryWriter`,
//! for testing the checker. Its allocator is a naive reference written here, independent of the
//! crate's model. (Not the Raft simulation, which is `jepsen_tests::sim`.)

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use jepsen_tests::history::{
    parse_history, Allocate, Event, EventType, FinalRead, FinalTable, HistoryWriter, Nemesis, Op, Process, RangeSpec,
    ReadOwner, Release, ReleaseIp, ERROR_EXHAUSTED,
};

/// A bug planted in the fake service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Correct service.
    None,
    /// Allocate hands out the second-lowest free address when two are free.
    SkipLowest,
    /// The final tables forget one acknowledged, never-released allocation.
    LoseAck,
    /// Node 2's final table misses one entry.
    Diverge,
}

const NETS: [(&str, u8); 2] = [("n1", 1), ("n2", 2)];
const OWNERS: usize = 8;
const USABLE: u8 = 6; // 10.x.0.0/29

/// xorshift64*: small, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    Fail,
    InfoApplied,
    InfoNever,
}

#[derive(Debug, Clone)]
enum Res {
    Ips(Vec<IpAddr>),
    Exhausted,
    Done,
}

struct Pending {
    op: Op,
    fate: Fate,
    result: Option<Res>,
    node: u64,
}

/// Record of an operation, for choosing planted bugs that must be detectable.
struct Rec {
    net: usize,
    owner: String,
    is_alloc: bool,
    call: u64,
    end: u64,
    acked_ip: Option<IpAddr>,
}

struct World {
    rng: Rng,
    held: [BTreeMap<u8, String>; 2],
    w: HistoryWriter<Vec<u8>>,
    time: u64,
    bug: Bug,
    next_req: u64,
    recs: Vec<Rec>,
}

fn ip(net: usize, octet: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, NETS[net].1, 0, octet))
}

fn range(net: usize) -> Vec<RangeSpec> {
    vec![RangeSpec::new(format!("10.{}.0.0/29", NETS[net].1))]
}

fn net_index(name: &str) -> usize {
    NETS.iter().position(|(n, _)| *n == name).unwrap_or(0)
}

impl World {
    fn emit(&mut self, p: Process, kind: EventType, node: Option<u64>, op: Op) -> Event {
        self.time += 1_000;
        self.w.record_at(self.time, p, kind, node, op).expect("write to a Vec")
    }

    fn apply(&mut self, op: &Op) -> Res {
        match op {
            Op::Allocate(a) => {
                let n = net_index(&a.network);
                let held = &mut self.held[n];
                if let Some((o, _)) = held.iter().find(|(_, who)| **who == a.owner) {
                    return Res::Ips(vec![ip(n, *o)]);
                }
                let free: Vec<u8> = (1..=USABLE).filter(|o| !held.contains_key(o)).collect();
                let pick = match (self.bug, free.as_slice()) {
                    (Bug::SkipLowest, [_, second, ..]) => Some(*second),
                    (_, [first, ..]) => Some(*first),
                    _ => None,
                };
                match pick {
                    Some(o) => {
                        held.insert(o, a.owner.clone());
                        Res::Ips(vec![ip(n, o)])
                    }
                    None => Res::Exhausted,
                }
            }
            Op::Release(r) => {
                self.held[net_index(&r.network)].retain(|_, who| *who != r.owner);
                Res::Done
            }
            Op::ReleaseIp(r) => {
                let n = net_index(&r.network);
                if let IpAddr::V4(v4) = r.ip {
                    let o = v4.octets()[3];
                    if self.held[n].get(&o) == Some(&r.owner) {
                        self.held[n].remove(&o);
                    }
                }
                Res::Done
            }
            Op::ReadOwner(r) => {
                let n = net_index(&r.network);
                let ips = self.held[n].iter().filter(|(_, who)| **who == r.owner).map(|(o, _)| ip(n, *o)).collect();
                Res::Ips(ips)
            }
            Op::FinalRead(_) | Op::Nemesis(_) => Res::Done,
        }
    }

    fn new_op(&mut self) -> Op {
        let net = self.rng.below(2) as usize;
        let owner = format!("o{}/eth0", self.rng.below(OWNERS as u64));
        self.next_req += 1;
        let req = format!("r{}", self.next_req);
        let network = NETS[net].0.to_string();
        match self.rng.below(10) {
            0..=4 => Op::Allocate(Allocate::new(req, network, owner, range(net))),
            5..=6 => Op::Release(Release { request_id: req, network, owner, ranges: range(net) }),
            7 => Op::ReleaseIp(ReleaseIp {
                request_id: Some(req),
                network,
                ip: ip(net, 1 + self.rng.below(u64::from(USABLE)) as u8),
                owner,
            }),
            _ => Op::ReadOwner(ReadOwner { network, owner, ips: None }),
        }
    }

    fn completion(p: &Pending) -> (EventType, Op) {
        let mut op = p.op.clone();
        let kind = match (p.fate, &p.result) {
            (Fate::Ok, Some(Res::Exhausted)) => {
                if let Op::Allocate(a) = &mut op {
                    a.error = Some(ERROR_EXHAUSTED.to_string());
                }
                EventType::Fail
            }
            (Fate::Ok, Some(Res::Ips(ips))) => {
                match &mut op {
                    Op::Allocate(a) => a.ips = Some(ips.clone()),
                    Op::ReadOwner(r) => r.ips = Some(ips.clone()),
                    _ => {}
                }
                EventType::Ok
            }
            (Fate::Ok, _) => EventType::Ok,
            (Fate::Fail, _) => EventType::Fail,
            (Fate::InfoApplied | Fate::InfoNever, _) => EventType::Info,
        };
        (kind, op)
    }
}

/// Generates a history of `steps` scheduler steps with `clients` concurrent clients.
pub fn generate(seed: u64, clients: u64, steps: usize, bug: Bug) -> Vec<Event> {
    let mut world = World {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        held: [BTreeMap::new(), BTreeMap::new()],
        w: HistoryWriter::new(Vec::new()),
        time: 0,
        bug,
        next_req: 0,
        recs: Vec::new(),
    };
    let mut pending: Vec<Option<(Pending, usize, u64)>> = (0..clients).map(|_| None).collect();
    let mut floating: Vec<Op> = Vec::new();
    for _ in 0..steps {
        if world.rng.chance(4) {
            let f = ["partition", "heal", "kill", "restart"][world.rng.below(4) as usize];
            let value = serde_json::json!({"nodes": [world.rng.below(3)]});
            let op = || Op::Nemesis(Nemesis { f: f.into(), value: value.clone() });
            world.emit(Process::Nemesis, EventType::Invoke, None, op());
            world.emit(Process::Nemesis, EventType::Ok, None, op());
            continue;
        }
        if !floating.is_empty() && world.rng.chance(10) {
            let i = world.rng.below(floating.len() as u64) as usize;
            let op = floating.swap_remove(i);
            world.apply(&op);
            continue;
        }
        let c = world.rng.below(clients) as usize;
        match pending[c].take() {
            None => {
                let op = world.new_op();
                let fate = match world.rng.below(10) {
                    0 => Fate::Fail,
                    1 => Fate::InfoApplied,
                    2 => Fate::InfoNever,
                    _ => Fate::Ok,
                };
                let node = world.rng.below(3);
                let ev = world.emit(Process::Client(c as u64), EventType::Invoke, Some(node), op.clone());
                world.recs.push(rec_of(&op, ev.index));
                let at = world.recs.len() - 1;
                pending[c] = Some((Pending { op, fate, result: None, node }, at, ev.index));
            }
            Some((mut p, at, _)) => {
                let needs_apply = matches!(p.fate, Fate::Ok) || (p.fate == Fate::InfoApplied && world.rng.chance(50));
                if needs_apply && p.result.is_none() {
                    p.result = Some(world.apply(&p.op));
                    pending[c] = Some((p, at, 0));
                    continue;
                }
                if p.fate == Fate::InfoApplied && p.result.is_none() {
                    floating.push(p.op.clone());
                }
                let (kind, op) = World::completion(&p);
                let ev = world.emit(Process::Client(c as u64), kind, Some(p.node), op.clone());
                let rec = &mut world.recs[at];
                if matches!(kind, EventType::Ok | EventType::Fail) {
                    rec.end = ev.index;
                }
                if let (EventType::Ok, Op::Allocate(a)) = (kind, &op) {
                    rec.acked_ip = a.ips.as_ref().and_then(|v| v.first().copied());
                }
            }
        }
    }
    finish(world, pending, floating)
}

fn rec_of(op: &Op, call: u64) -> Rec {
    let (net, owner, is_alloc) = match op {
        Op::Allocate(a) => (net_index(&a.network), a.owner.clone(), true),
        Op::Release(r) => (net_index(&r.network), r.owner.clone(), false),
        Op::ReleaseIp(r) => (net_index(&r.network), r.owner.clone(), false),
        _ => (0, String::new(), false),
    };
    Rec { net, owner, is_alloc, call, end: u64::MAX, acked_ip: None }
}

fn finish(mut world: World, pending: Vec<Option<(Pending, usize, u64)>>, floating: Vec<Op>) -> Vec<Event> {
    for (c, slot) in pending.into_iter().enumerate() {
        let Some((mut p, at, _)) = slot else { continue };
        if matches!(p.fate, Fate::Ok | Fate::InfoApplied) && p.result.is_none() {
            p.result = Some(world.apply(&p.op));
        }
        let (kind, op) = World::completion(&p);
        let ev = world.emit(Process::Client(c as u64), kind, Some(p.node), op.clone());
        if kind == EventType::Ok {
            world.recs[at].end = ev.index;
            if let Op::Allocate(a) = &op {
                world.recs[at].acked_ip = a.ips.as_ref().and_then(|v| v.first().copied());
            }
        }
    }
    for op in floating {
        if world.rng.chance(50) {
            world.apply(&op);
        }
    }
    let heal = || Op::Nemesis(Nemesis { f: "heal".into(), value: serde_json::Value::Null });
    world.emit(Process::Nemesis, EventType::Invoke, None, heal());
    world.emit(Process::Nemesis, EventType::Ok, None, heal());
    let mut table = FinalTable::default();
    for (n, held) in world.held.iter().enumerate() {
        for (o, who) in held {
            table.insert(NETS[n].0, ip(n, *o), who);
        }
    }
    if world.bug == Bug::LoseAck {
        if let Some((net, ip)) = lost_candidate(&world.recs) {
            if let Some(m) = table.0.get_mut(NETS[net].0) {
                m.remove(&ip);
            }
        }
    }
    for node in 0..3u64 {
        let mut t = table.clone();
        if world.bug == Bug::Diverge && node == 2 {
            if let Some(m) = t.0.values_mut().find(|m| !m.is_empty()) {
                let first = *m.keys().next().expect("non-empty");
                m.remove(&first);
            }
        }
        let p = Process::Client(node);
        world.emit(p, EventType::Invoke, Some(node), Op::FinalRead(FinalRead::new()));
        world.emit(p, EventType::Ok, Some(node), Op::FinalRead(FinalRead::new().with_allocations(t)));
    }
    let bytes = world.w.into_inner().expect("flush a Vec");
    parse_history(&bytes[..]).expect("the writer's output parses")
}

/// An acked allocation that no release by its owner (possibly applied after it) can explain away.
fn lost_candidate(recs: &[Rec]) -> Option<(usize, IpAddr)> {
    recs.iter().rev().find_map(|a| {
        let ip = a.acked_ip.filter(|_| a.is_alloc)?;
        let undone = recs.iter().any(|r| !r.is_alloc && r.net == a.net && r.owner == a.owner && r.end > a.call);
        (!undone).then_some((a.net, ip))
    })
}
