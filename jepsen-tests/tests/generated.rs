//! Generated concurrent histories from the fake IPAM service (fixed seeds): a correct service
//! always passes, planted bugs are caught.

mod support;

use jepsen_tests::checker::{check, AnomalyKind, CheckOptions, Verdict};
use jepsen_tests::history::{Op, ERROR_EXHAUSTED};
use support::fake_service::{generate, Bug};

const SEEDS: std::ops::Range<u64> = 1..25;

#[test]
fn correct_service_histories_are_valid() {
    let (mut info, mut fail, mut exhausted, mut states) = (0, 0, 0, 0);
    for seed in SEEDS {
        let events = generate(seed, 4, 160, Bug::None);
        let r = check(&events, &CheckOptions::default()).expect("well-formed");
        assert_eq!(r.verdict, Verdict::Valid, "seed {seed}:\n{r}");
        exhausted += events
            .iter()
            .filter(|e| matches!(&e.op, Op::Allocate(a) if a.error.as_deref() == Some(ERROR_EXHAUSTED)))
            .count();
        info += r.ops["allocate"].get("info").copied().unwrap_or(0);
        fail += r.ops["allocate"].get("fail").copied().unwrap_or(0);
        states += r.linearizability.iter().map(|v| v.states).sum::<usize>();
    }
    // the seeds do exercise indeterminate and failed (incl. exhausted) allocations
    assert!(info > 20 && fail > 20 && exhausted > 5, "info {info}, fail {fail}, exhausted {exhausted}");
    assert!(states > 0);
}

#[test]
fn skipping_the_lowest_address_is_caught() {
    for seed in SEEDS {
        let events = generate(seed, 4, 160, Bug::SkipLowest);
        let r = check(&events, &CheckOptions::default()).expect("well-formed");
        assert!(r.count(AnomalyKind::NotLinearizable) > 0, "seed {seed}:\n{r}");
    }
}

#[test]
fn losing_an_acknowledged_allocation_is_caught() {
    for seed in SEEDS {
        let events = generate(seed, 4, 160, Bug::LoseAck);
        let r = check(&events, &CheckOptions::default()).expect("well-formed");
        let lost = r.count(AnomalyKind::LostAllocation);
        // once per final read (3 nodes), per acknowledgement of that address to that owner
        assert!(lost > 0 && lost.is_multiple_of(3), "seed {seed}:\n{r}");
    }
}

#[test]
fn a_diverging_node_is_caught() {
    for seed in SEEDS {
        let events = generate(seed, 4, 160, Bug::Diverge);
        let r = check(&events, &CheckOptions::default()).expect("well-formed");
        assert_eq!(r.count(AnomalyKind::DivergingFinalTables), 1, "seed {seed}:\n{r}");
    }
}
