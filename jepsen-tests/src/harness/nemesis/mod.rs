//! The fault schedule: one fault episode at a time (inject, hold, heal), separated by quiet
//! periods, cycling through the selected fault families in a seeded random order. Every step is
//! recorded in the history with `"process":"nemesis"`.
//!
//! One file per fault family, each depending only on the run state, the testbed and the heal,
//! never on another family: [`process`] (kill, pause), [`network`] (partition, drop),
//! [`membership`] (add, promote, remove nodes), [`storage`] (snapshot catch-up, flush crash),
//! [`wipe`] (a lost volume), [`disk`] (power loss, slow fsync on the lazyfs mounts), [`clock`]
//! (wall-clock jumps under libfaketime), [`roll`] (a rolling upgrade and rollback between two
//! releases; not in `all`: it needs the previous release's binary). This module only dispatches.
//!
//! Adding a nemesis: write `pub async fn NAME(tb: &mut Testbed, st: &RunState, hold: Duration,
//! rng: &mut Rng) -> anyhow::Result<()>` in the file of its family (or a new file for a new
//! family), add a variant to [`Fault`] (its kebab-case name is the `--nemesis` word) and one line
//! to `episode`.

pub mod clock;
pub mod disk;
pub mod membership;
pub mod network;
pub mod process;
pub mod roll;
pub mod storage;
pub mod wipe;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use super::run_state::RunState;
use super::testbed::Testbed;
use crate::rng::Rng;

/// A fault family (`--nemesis`): the kebab-case variant name is the command-line word, and
/// declaration order is the order `all` lists them in (`all` leaves out [`Fault::Roll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Fault {
    /// kill -9 one node, the leader, a majority or every node; restart after the hold.
    Kill,
    /// SIGSTOP one node or the leader; SIGCONT after the hold.
    Pause,
    /// nftables partitions: isolate the leader, majority/minority, or a bridge.
    Partition,
    /// Random packet loss (`numgen random mod 100 < N drop`) on every node.
    Drop,
    /// Keep a follower away until the leader compacted its log past it: it must catch up by snapshot.
    Snapshot,
    /// Membership changes under load: add a learner, promote it, remove (replace) a voter.
    Membership,
    /// Restart a node with a failpoint that aborts it around the log flush, then restart it clean.
    FlushCrash,
    /// A member's data directory lost (kill -9, delete, restart with its flags), alone or with a
    /// killed or paused peer; a node that refuses is repaired (remove, re-add, promote).
    Wipe,
    /// Power cut of every node at once on the lazyfs mounts: un-fsynced writes are gone.
    PowerLoss,
    /// A node's wall clock jumps forward and back (libfaketime), a new leader behind the old one.
    Clock,
    /// fsync delayed 50–500 ms on the leader, a follower or every node (lazyfs).
    SlowDisk,
    /// Rolling upgrade: every node starts on `--old-node-bin`; one member at a time is stopped
    /// and restarted on `--node-bin`, then one is rolled back and forward again.
    Roll,
}

impl Fault {
    /// Every fault family `all` selects, in order: each but those that need an old binary.
    pub fn all() -> Vec<Fault> {
        Fault::value_variants().iter().copied().filter(|f| !f.needs_old_build()).collect()
    }

    /// The name used on the command line and in the run summary.
    pub fn name(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
    }

    /// Whether this fault needs the nodes' data directories on the lazyfs mounts.
    pub fn needs_lazyfs(self) -> bool {
        matches!(self, Fault::PowerLoss | Fault::SlowDisk)
    }

    /// Whether this fault needs the nodes' clocks under libfaketime.
    pub fn needs_fake_clock(self) -> bool {
        self == Fault::Clock
    }

    /// Whether this fault needs the previous release's node binary (`--old-node-bin`).
    pub fn needs_old_build(self) -> bool {
        self == Fault::Roll
    }
}

/// Parses `--nemesis`: a comma-separated list of families, `all`, or `none`.
pub fn parse_faults(text: &str) -> Result<Vec<Fault>, String> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "all" | "mixed" => out.extend(Fault::all()),
            "none" => {}
            w => out.push(Fault::from_str(w, false).map_err(|_| {
                let names: Vec<String> = Fault::value_variants().iter().map(|f| f.name()).collect();
                format!("unknown nemesis {w:?} (expected all, none or {})", names.join(", "))
            })?),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The selected fault families (`--nemesis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultList(pub Vec<Fault>);

/// [`parse_faults`] for clap.
pub fn parse_fault_list(text: &str) -> Result<FaultList, String> {
    parse_faults(text).map(FaultList)
}

/// Timing of the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Mean quiet time between episodes.
    pub interval: Duration,
    /// Mean time a fault is held.
    pub hold: Duration,
}

/// Sleeps about `mean` (½–1½×), in short steps; returns early when `until` passes.
async fn jitter_sleep(rng: &mut Rng, mean: Duration, until: Instant) {
    let ms = mean.as_millis() as u64;
    let end = Instant::now() + Duration::from_millis(rng.between(ms / 2, ms + ms / 2));
    while Instant::now() < end.min(until) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Operations that must complete `ok` after an episode before the next one starts.
const SERVED_BETWEEN: u64 = 10;
/// How long the schedule waits for them (then it goes on, service or not).
const SERVED_WITHIN: Duration = Duration::from_secs(30);

/// Waits until `SERVED_BETWEEN` operations completed `ok` after `mark` (bounded by
/// `SERVED_WITHIN` and `until`). Every episode then starts on a cluster that served since the
/// last one: on a loaded machine faults would otherwise pile onto a cluster still recovering, and
/// a power cut with no write acknowledged since the previous cut tests nothing.
async fn wait_served(st: &RunState, mark: u64, until: Instant) {
    let end = (Instant::now() + SERVED_WITHIN).min(until);
    while st.oks.load(Ordering::Relaxed) < mark + SERVED_BETWEEN
        && Instant::now() < end
        && !st.stop.load(Ordering::Relaxed)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs episodes until the clients stop, `until`, or `max_episodes` episodes were done; returns
/// episodes per family. Between two episodes: the cluster served again ([`wait_served`]), then a
/// quiet period of about `timing.interval`.
pub async fn run(
    tb: &mut Testbed,
    st: &RunState,
    faults: &[Fault],
    timing: Timing,
    rng: &mut Rng,
    until: Instant,
    max_episodes: Option<u64>,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut done: BTreeMap<String, u64> = BTreeMap::new();
    let mut order: Vec<Fault> = Vec::new();
    let mut episodes = 0u64;
    // Faults stop before the last tenth of the operations: those run after the final heal.
    let active = |episodes: u64| {
        !st.stop.load(Ordering::Relaxed)
            && Instant::now() < until
            && st.invoked.load(Ordering::Relaxed) < st.max_ops / 10 * 9
            && max_episodes.is_none_or(|m| episodes < m)
    };
    let mut mark = st.oks.load(Ordering::Relaxed);
    while active(episodes) && !faults.is_empty() {
        wait_served(st, mark, until).await;
        jitter_sleep(rng, timing.interval, until).await;
        if !active(episodes) {
            break;
        }
        if order.is_empty() {
            order = faults.to_vec();
            rng.shuffle(&mut order);
        }
        let fault = order.pop().expect("refilled above");
        let hold = Duration::from_millis(
            rng.between(timing.hold.as_millis() as u64 / 2, timing.hold.as_millis() as u64 * 3 / 2),
        );
        episode(tb, st, fault, hold, rng).await?;
        *done.entry(fault.name()).or_default() += 1;
        episodes += 1;
        mark = st.oks.load(Ordering::Relaxed);
    }
    Ok(done)
}

/// One episode of `fault`: the dispatch, one line per variant.
async fn episode(tb: &mut Testbed, st: &RunState, fault: Fault, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    tracing::info!(fault = fault.name(), hold_ms = hold.as_millis() as u64, "nemesis episode");
    match fault {
        Fault::Kill => process::kill(tb, st, hold, rng).await,
        Fault::Pause => process::pause(tb, st, hold, rng).await,
        Fault::Partition => network::partition(tb, st, hold, rng).await,
        Fault::Drop => network::drop_packets(tb, st, hold, rng).await,
        Fault::Snapshot => storage::snapshot_catchup(tb, st, hold, rng).await,
        Fault::Membership => membership::change(tb, st, hold, rng).await,
        Fault::FlushCrash => storage::flush_crash(tb, st, hold, rng).await,
        Fault::Wipe => wipe::wipe(tb, st, hold, rng).await,
        Fault::PowerLoss => disk::power_loss(tb, st, hold, rng).await,
        Fault::Clock => clock::clock(tb, st, hold, rng).await,
        Fault::SlowDisk => disk::slow_disk(tb, st, hold, rng).await,
        Fault::Roll => roll::roll(tb, st, hold, rng).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_lists_parse() {
        assert_eq!(parse_faults("all").unwrap().len(), Fault::all().len());
        assert_eq!(parse_faults("kill,pause,kill").unwrap(), vec![Fault::Kill, Fault::Pause]);
        assert!(parse_faults("none").unwrap().is_empty());
        assert!(parse_faults("meteor").is_err());
    }

    #[test]
    fn command_line_names_are_the_documented_ones() {
        let names: Vec<String> = Fault::all().iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "kill",
                "pause",
                "partition",
                "drop",
                "snapshot",
                "membership",
                "flush-crash",
                "wipe",
                "power-loss",
                "clock",
                "slow-disk"
            ]
        );
        assert_eq!(parse_faults("flush-crash,snapshot").unwrap(), vec![Fault::Snapshot, Fault::FlushCrash]);
        assert_eq!(parse_faults("slow-disk,power-loss").unwrap(), vec![Fault::PowerLoss, Fault::SlowDisk]);
    }

    #[test]
    fn roll_is_selected_by_name_only() {
        assert!(!parse_faults("all").unwrap().contains(&Fault::Roll));
        assert_eq!(parse_faults("roll").unwrap(), vec![Fault::Roll]);
        assert_eq!(parse_faults("roll,kill").unwrap(), vec![Fault::Kill, Fault::Roll]);
        assert_eq!(parse_faults("all,roll").unwrap().len(), Fault::all().len() + 1);
        let err = parse_faults("rol").unwrap_err();
        assert!(err.contains("roll"), "the error lists roll too: {err}");
        let needs: Vec<Fault> = Fault::value_variants().iter().copied().filter(|f| f.needs_old_build()).collect();
        assert_eq!(needs, [Fault::Roll]);
    }

    #[test]
    fn only_disk_faults_need_lazyfs_and_only_clock_faketime() {
        let lazy: Vec<Fault> = Fault::value_variants().iter().copied().filter(|f| f.needs_lazyfs()).collect();
        assert_eq!(lazy, [Fault::PowerLoss, Fault::SlowDisk]);
        let fake: Vec<Fault> = Fault::value_variants().iter().copied().filter(|f| f.needs_fake_clock()).collect();
        assert_eq!(fake, [Fault::Clock]);
    }
}
