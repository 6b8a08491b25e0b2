//! The deterministic simulation: a correct cluster passes every check under faults, and a
//! planted storage bug (acknowledged log entries lost on a crash) is caught.

use jepsen_tests::sim::{simulate, PlantedBug, SimOptions};

#[test]
fn a_simulated_cluster_under_faults_passes_every_check() {
    let r = simulate(SimOptions::new(11, 1_500)).expect("simulation runs");
    assert!(r.passed(), "{r:#?}");
    assert!(r.ops > 100, "clients made progress: {r:#?}");
    let f = &r.faults;
    assert!(f.crashes + f.partitions + f.drops + f.delays > 0, "faults were injected: {f:?}");
}

#[test]
fn losing_acknowledged_entries_on_a_crash_is_caught() {
    let caught = (1..=4u64).any(|seed| {
        let opts = SimOptions { planted: Some(PlantedBug::LoseAckedTail), ..SimOptions::new(seed, 2_000) };
        // A storage error openraft itself notices (entries missing) counts as caught too.
        simulate(opts).map_or(true, |r| !r.passed())
    });
    assert!(caught, "no seed caught the planted storage bug");
}

#[test]
fn the_same_seed_takes_the_same_path() {
    let a = simulate(SimOptions::new(5, 600)).expect("simulation runs");
    let b = simulate(SimOptions::new(5, 600)).expect("simulation runs");
    assert_eq!((a.fingerprint, a.ops, a.terms), (b.fingerprint, b.ops, b.terms), "{a:#?}\n{b:#?}");
}
