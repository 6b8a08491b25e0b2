//! Inputs the fuzzers found, replayed as plain tests (see fuzz/fuzz_targets).

use ipam::{Command, Event, Limits, Outcome, State};

/// Decodes postcard `Event`s one after another, as the `event_apply` target does.
fn events(mut rest: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok((event, tail)) = postcard::take_from_bytes::<Event>(rest) {
        out.push(event);
        rest = tail;
    }
    out
}

/// event_apply crash-18b16384 (CI fuzz smoke, FUZZ_SEED=1): a `SetClusterVersion` with a request
/// id, retried. It is not remembered in the request cache on purpose (no reply of that kind may
/// reach a snapshot release 0.1.0 reads), so the retry reports the version now in force and acts
/// the same; the fuzz target asserted an identical reply and failed on it.
#[test]
fn a_retried_cluster_version_change_acts_once_and_reports_the_version_in_force() {
    let data = [34u8, 1, 5, 114, 101, 113, 45, 50, 5, 5, 130, 0, 0, 65, 0, 34, 0];
    let (mode, rest) = data.split_first().unwrap();
    let limits = Limits { request_cache: usize::from(mode >> 1) % 5, history: usize::from(mode >> 4) };
    let mut state = State::new(limits);
    let events = events(rest);
    assert!(matches!(events[0].command, Command::SetClusterVersion(_)), "{:?}", events[0]);
    let first = ipam::apply(&mut state, &events[0]);
    assert_eq!(first, Ok(Outcome::ClusterVersion { previous: 1, current: 2 }));
    let again = ipam::apply(&mut state, &events[0]);
    assert_eq!(again, Ok(Outcome::ClusterVersion { previous: 2, current: 2 }));
    assert_eq!(state.cluster_version(), 2);
}
