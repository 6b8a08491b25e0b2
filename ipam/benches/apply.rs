//! `apply(Allocate)` and `apply(Release)` on the pure domain, single-threaded: an empty /24, a
//! /16 half full, a /8 with 1,000,000 allocated and an IPv6 /64 with 1,000,000 allocated.
//!
//! Each sample applies batches of 64 events with realistic owners and fresh request ids (built
//! beforehand, not timed). `allocate` times 64 Allocates, then undoes them with 64 untimed
//! Releases; `release` times the Releases of 64 untimed Allocates. So the state is the same at
//! every sample, and an "empty /24" stays nearly empty. Target (issue 3): ≥ 1,000,000 applies/s
//! on the /8 case, i.e. ≤ 1 µs per apply.
//!
//! `cargo bench -p ipam --bench apply`

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipam::{apply, Event, Outcome, Owner, Range, State};
use support::Gen;

const BATCH: usize = 64;

struct Case {
    name: &'static str,
    range: Range,
    state: State,
}

fn cases(g: &mut Gen) -> Vec<Case> {
    let mut out = Vec::new();
    for (name, cidr, prefill) in [
        ("empty /24", "10.1.0.0/24", 0u64),
        ("/16 half full", "10.2.0.0/16", 32_768),
        ("/8 1M allocated", "10.0.0.0/8", 1_000_000),
        ("IPv6 /64 1M allocated", "fd00:be::/64", 1_000_000),
    ] {
        let range = support::range(cidr);
        let started = Instant::now();
        let state = support::filled(g, &range, prefill);
        eprintln!(
            "prepared {name}: {} allocations in {:.1} s",
            state.allocation_count(),
            started.elapsed().as_secs_f64()
        );
        out.push(Case { name, range, state });
    }
    out
}

fn batch(g: &mut Gen, range: &Range) -> (Vec<Event>, Vec<Event>) {
    let mut allocs = Vec::with_capacity(BATCH);
    let mut releases = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        let a = g.attachment();
        let owner: Owner = a.owner.clone();
        allocs.push(support::allocate(g, range, a, 1_765_000_000_000));
        releases.push(support::release(g, &owner, 1_765_000_000_001));
    }
    (allocs, releases)
}

fn run_all(state: &mut State, events: &[Event]) {
    for ev in events {
        let reply = apply(state, black_box(ev));
        debug_assert!(matches!(reply, Ok(Outcome::Allocated(_) | Outcome::Released(_))));
        black_box(reply).expect("applies");
    }
}

fn bench_apply(c: &mut Criterion) {
    let mut g = Gen::new(0x5eed);
    let mut cases = cases(&mut g);
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for case in &mut cases {
        // Per-event time: criterion's `iters` counts events, applied in batches of BATCH.
        group.bench_function(BenchmarkId::new("allocate", case.name), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let (allocs, releases) = batch(&mut g, &case.range);
                    let t = Instant::now();
                    run_all(&mut case.state, &allocs);
                    timed += t.elapsed();
                    run_all(&mut case.state, &releases);
                    done += BATCH as u64;
                }
                timed.mul_f64(iters as f64 / done as f64)
            })
        });
        group.bench_function(BenchmarkId::new("release", case.name), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let (allocs, releases) = batch(&mut g, &case.range);
                    run_all(&mut case.state, &allocs);
                    let t = Instant::now();
                    run_all(&mut case.state, &releases);
                    timed += t.elapsed();
                    done += BATCH as u64;
                }
                timed.mul_f64(iters as f64 / done as f64)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
