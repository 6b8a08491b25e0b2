//! The total time budget of one invocation (`timeout_seconds`, default 30 s) and the deadlines
//! derived from it: every connect, call and backoff sleep ends before the budget does, so the
//! plugin never outlives it (kubelet's own timeouts are minutes).

use std::time::{Duration, Instant};

/// Default total budget.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);
/// Longest a TCP/HTTP2 connect may take (a blackholed node must not eat the budget).
pub const CONNECT_CAP: Duration = Duration::from_secs(2);
/// Shortest per-call deadline when the budget allows it.
const CALL_FLOOR: Duration = Duration::from_secs(1);
/// Longest per-call deadline: a node that accepts but never answers gives way to the next.
const CALL_CAP: Duration = Duration::from_secs(10);
/// First backoff between rounds over all endpoints; doubles up to [`BACKOFF_CAP`].
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// A deadline shared by every step of one invocation.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    total: Duration,
    deadline: Instant,
}

impl Budget {
    /// A budget of `total` starting now.
    pub fn new(total: Duration) -> Budget {
        Budget::since(Instant::now(), total)
    }

    /// A budget of `total` that started at `start` (the invocation's start).
    pub fn since(start: Instant, total: Duration) -> Budget {
        Budget { total, deadline: start + total }
    }

    /// The whole budget.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// Time left (zero once spent).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// True once the budget is spent.
    pub fn spent(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Deadline for one call: a third of the budget (between 1 s and 10 s), never past the end.
    pub fn per_call(&self) -> Duration {
        (self.total / 3).clamp(CALL_FLOOR, CALL_CAP).min(self.remaining())
    }

    /// Deadline for one connect.
    pub fn connect(&self) -> Duration {
        self.per_call().min(CONNECT_CAP)
    }

    /// Pause before round `round` (1-based) over the endpoints: exponential, scaled by `jitter`
    /// in [0.5, 1.0] so plugins on many nodes spread out, never past the end of the budget.
    pub fn backoff(&self, round: u32, jitter: f64) -> Duration {
        let exp = BACKOFF_START.saturating_mul(1u32 << round.saturating_sub(1).min(10)).min(BACKOFF_CAP);
        exp.mul_f64(jitter.clamp(0.5, 1.0)).min(self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_call_is_a_third_of_the_budget_within_bounds() {
        assert_eq!(Budget::new(Duration::from_secs(30)).per_call(), Duration::from_secs(10));
        assert_eq!(Budget::new(Duration::from_secs(90)).per_call(), Duration::from_secs(10));
        let small = Budget::new(Duration::from_millis(600));
        assert!(small.per_call() <= Duration::from_millis(600));
        assert!(Budget::new(Duration::from_secs(6)).per_call() <= Duration::from_secs(2));
        assert!(Budget::new(Duration::from_secs(30)).connect() <= CONNECT_CAP);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Budget::new(Duration::from_secs(30));
        assert_eq!(b.backoff(1, 1.0), Duration::from_millis(50));
        assert_eq!(b.backoff(2, 1.0), Duration::from_millis(100));
        assert_eq!(b.backoff(3, 0.5), Duration::from_millis(100));
        assert_eq!(b.backoff(30, 1.0), BACKOFF_CAP);
    }

    #[test]
    fn a_spent_budget_gives_zero_everywhere() {
        let b = Budget::new(Duration::ZERO);
        assert!(b.spent());
        assert_eq!(b.per_call(), Duration::ZERO);
        assert_eq!(b.backoff(1, 1.0), Duration::ZERO);
    }
}
