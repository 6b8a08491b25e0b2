//! Snapshot encode and decode of 1,000,000 allocations (a /8 and an IPv6 /64, filled
//! lowest-first with realistic owners), with the encoded size printed. Target (issue 3): a
//! snapshot of 1M allocations < 64 MB.
//!
//! `cargo bench -p ipam --bench snapshot`

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipam::snapshot;
use support::Gen;

const ALLOCATIONS: u64 = 1_000_000;

fn bench_snapshot(c: &mut Criterion) {
    let mut g = Gen::new(0x5eed);
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ALLOCATIONS));
    for (name, cidr) in [("/8 1M", "10.0.0.0/8"), ("IPv6 /64 1M", "fd00:be::/64")] {
        let started = Instant::now();
        let state = support::filled(&mut g, &support::range(cidr), ALLOCATIONS);
        eprintln!(
            "prepared {name}: {} allocations in {:.1} s",
            state.allocation_count(),
            started.elapsed().as_secs_f64()
        );
        let bytes = snapshot::encode(&state);
        let decoded = snapshot::decode(&bytes).expect("decodes");
        assert_eq!(snapshot::encode(&decoded), bytes, "round trip is exact");
        println!(
            "snapshot {name}: {} bytes = {:.1} MiB, {:.1} bytes per allocation (incl. 65,536 cached replies and 10,000 history entries)",
            bytes.len(),
            bytes.len() as f64 / (1 << 20) as f64,
            bytes.len() as f64 / ALLOCATIONS as f64
        );
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| black_box(snapshot::encode(black_box(&state))))
        });
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| black_box(snapshot::decode(black_box(&bytes)).expect("decodes")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_snapshot);
criterion_main!(benches);
