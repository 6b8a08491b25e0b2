//! A plain loop of `apply` on one prepared state, for profilers (perf, callgrind): no criterion,
//! no statistics. The events are built outside [`apply_allocates`] and [`apply_releases`], so a
//! profiler restricted to them (`valgrind --tool=callgrind --toggle-collect='*apply_allocates*'
//! --toggle-collect='*apply_releases*'`) sees only `apply`, split by kind.
//!
//! `cargo bench -p ipam --bench apply_profile -- [CASE] [ROUNDS]`
//! CASE: `24` (empty /24), `16` (/16 half full), `8` (/8 with 1M, the default), `v6` (/64 with 1M);
//! ROUNDS of 64 Allocates then 64 Releases (default 20000). Prints the time per apply, wall and on
//! CPU (from `/proc/thread-self/schedstat`, which leaves out time spent waiting for a CPU on a
//! shared machine; each reading adds about a microsecond per batch of 64).
//! CASE `snapshot`: the /8 with 1M, then ROUNDS (default 1) snapshot encodes and decodes
//! ([`encode_once`], [`decode_once`]).
//! CASE `memory`: the process' resident memory (VmRSS) before and after filling the /8 with 1M
//! through `apply`: the bytes per allocation the state costs.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use ipam::{apply, snapshot, Event, Outcome, State};
use support::Gen;

#[inline(never)]
fn apply_allocates(state: &mut State, events: &[Event]) {
    for ev in events {
        let reply = black_box(apply(state, black_box(ev)));
        assert!(matches!(reply, Ok(Outcome::Allocated(_))), "{reply:?}");
    }
}

#[inline(never)]
fn apply_releases(state: &mut State, events: &[Event]) {
    for ev in events {
        let reply = black_box(apply(state, black_box(ev)));
        assert!(matches!(reply, Ok(Outcome::Released(_))), "{reply:?}");
    }
}

#[inline(never)]
fn encode_once(state: &State) -> Vec<u8> {
    snapshot::encode(black_box(state))
}

#[inline(never)]
fn decode_once(bytes: &[u8]) -> State {
    snapshot::decode(black_box(bytes)).expect("decodes")
}

/// Time this thread spent on a CPU (Linux `schedstat`), in ns: on a shared machine, what the
/// work cost apart from waiting for a CPU. `None` where it cannot be read.
fn on_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn profile_snapshot(rounds: u64) {
    let mut g = Gen::new(0x5eed);
    let state = support::filled(&mut g, &support::range("10.0.0.0/8"), 1_000_000);
    let (mut enc, mut dec) = (Duration::ZERO, Duration::ZERO);
    let (mut enc_cpu, mut dec_cpu) = (0u64, 0u64);
    let mut size = 0;
    for _ in 0..rounds {
        let (c, t) = (on_cpu_ns(), Instant::now());
        let bytes = encode_once(&state);
        enc += t.elapsed();
        enc_cpu += on_cpu_ns().zip(c).map_or(0, |(b, a)| b - a);
        size = bytes.len();
        let (c, t) = (on_cpu_ns(), Instant::now());
        let decoded = decode_once(&bytes);
        dec += t.elapsed();
        dec_cpu += on_cpu_ns().zip(c).map_or(0, |(b, a)| b - a);
        // Dropped outside the timed part: a restarting node keeps what it decoded.
        drop(black_box(decoded));
    }
    let r = rounds as f64;
    println!(
        "snapshot of 1M ({size} bytes): encode {:.3} s wall, {:.3} s on CPU; decode {:.3} s wall, {:.3} s on CPU (mean of {rounds})",
        enc.as_secs_f64() / r,
        enc_cpu as f64 / 1e9 / r,
        dec.as_secs_f64() / r,
        dec_cpu as f64 / 1e9 / r,
    );
}

/// This process' resident memory in bytes (`VmRSS` of `/proc/self/status`).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS in kB");
    kb * 1024
}

fn profile_memory() {
    const COUNT: u64 = 1_000_000;
    let mb = |b: u64| b as f64 / 1e6;
    let before = rss_bytes();
    let mut g = Gen::new(0x5eed);
    let state = support::filled(&mut g, &support::range("10.0.0.0/8"), COUNT);
    let filled = rss_bytes();
    println!(
        "state of {COUNT} allocations: VmRSS {:.1} MB before, {:.1} MB filled through apply ({:.0} B/allocation)",
        mb(before),
        mb(filled),
        filled.saturating_sub(before) as f64 / COUNT as f64,
    );
    assert_eq!(state.allocation_count() as u64, COUNT);
}

fn main() {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let case = args.first().map_or("8", String::as_str);
    if case == "memory" {
        return profile_memory();
    }
    if case == "snapshot" {
        return profile_snapshot(args.get(1).and_then(|r| r.parse().ok()).unwrap_or(1));
    }
    let rounds: u64 = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(20_000);
    let (cidr, prefill) = match case {
        "24" => ("10.1.0.0/24", 0),
        "16" => ("10.2.0.0/16", 32_768),
        "8" => ("10.0.0.0/8", 1_000_000),
        "v6" => ("fd00:be::/64", 1_000_000),
        other => panic!("unknown case {other:?} (24, 16, 8, v6)"),
    };
    let mut g = Gen::new(0x5eed);
    let range = support::range(cidr);
    let t = Instant::now();
    let mut state = support::filled(&mut g, &range, prefill);
    eprintln!("prepared {cidr} with {prefill} allocations in {:.1} s", t.elapsed().as_secs_f64());
    let (mut alloc_time, mut release_time) = (Duration::ZERO, Duration::ZERO);
    let (mut alloc_cpu, mut release_cpu) = (0u64, 0u64);
    for _ in 0..rounds {
        let mut allocs = Vec::with_capacity(64);
        let mut releases = Vec::with_capacity(64);
        for _ in 0..64 {
            let a = g.attachment();
            let owner = a.owner.clone();
            allocs.push(support::allocate(&mut g, &range, a, 1_765_000_000_000));
            releases.push(support::release(&mut g, &owner, 1_765_000_000_001));
        }
        let (c, t) = (on_cpu_ns(), Instant::now());
        apply_allocates(&mut state, &allocs);
        alloc_time += t.elapsed();
        alloc_cpu += on_cpu_ns().zip(c).map_or(0, |(b, a)| b - a);
        let (c, t) = (on_cpu_ns(), Instant::now());
        apply_releases(&mut state, &releases);
        release_time += t.elapsed();
        release_cpu += on_cpu_ns().zip(c).map_or(0, |(b, a)| b - a);
    }
    let n = (rounds * 64) as f64;
    println!(
        "{cidr} ({prefill} allocated), {} of each: allocate {:.3} µs/apply wall, {:.3} µs on CPU; \
         release {:.3} µs/apply wall, {:.3} µs on CPU",
        rounds * 64,
        alloc_time.as_secs_f64() * 1e6 / n,
        alloc_cpu as f64 / 1e3 / n,
        release_time.as_secs_f64() * 1e6 / n,
        release_cpu as f64 / 1e3 / n,
    );
}
