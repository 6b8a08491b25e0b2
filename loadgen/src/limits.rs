//! When a run stops: `--ops`, `--duration`, `--grace` and `--op-timeout`, given in seconds on the
//! command line and checked here once.

use std::time::{Duration, TryFromFloatSecsError};

/// `--duration` when it is not given.
pub const DEFAULT_DURATION_S: f64 = 10.0;
/// `--duration` when it is not given but `--ops` is (the op count is meant to end the run).
pub const DEFAULT_DURATION_WITH_OPS_S: f64 = 60.0;

/// A number of seconds that is no duration (negative, NaN, infinite or too large).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} {value} is not a valid number of seconds")]
pub struct InvalidSeconds {
    /// The flag it was given to, without the dashes.
    pub flag: &'static str,
    /// The value as given.
    pub value: String,
    /// Why it is none.
    #[source]
    pub source: TryFromFloatSecsError,
}

/// The duration of `value` seconds given to `--flag`.
pub fn seconds(flag: &'static str, value: f64) -> Result<Duration, InvalidSeconds> {
    Duration::try_from_secs_f64(value).map_err(|source| InvalidSeconds { flag, value: value.to_string(), source })
}

/// The bounds of a run, valid durations all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Stop after this many operations in total (over all clients), if set.
    pub ops: Option<u64>,
    /// Stop starting operations after this long.
    pub duration: Duration,
    /// Operations still running at `duration + grace` are cut and counted as errors.
    pub grace: Duration,
    /// Budget of one operation, retries included.
    pub op_timeout: Duration,
}

impl Limits {
    /// From the flags as given: `duration` defaults to [`DEFAULT_DURATION_S`], or
    /// [`DEFAULT_DURATION_WITH_OPS_S`] with `ops`. Checked in that order: duration, grace, op-timeout.
    pub fn from_flags(
        ops: Option<u64>,
        duration: Option<f64>,
        grace: f64,
        op_timeout: f64,
    ) -> Result<Limits, InvalidSeconds> {
        let default = if ops.is_some() { DEFAULT_DURATION_WITH_OPS_S } else { DEFAULT_DURATION_S };
        Ok(Limits {
            ops,
            duration: seconds("duration", duration.unwrap_or(default))?,
            grace: seconds("grace", grace)?,
            op_timeout: seconds("op-timeout", op_timeout)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_and_refuse() {
        assert_eq!(seconds("grace", 1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds("grace", 0.0), Ok(Duration::ZERO));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            assert!(seconds("grace", bad).is_err(), "{bad}");
        }
        let e = seconds("op-timeout", -2.5).unwrap_err();
        assert_eq!(e.to_string(), "--op-timeout -2.5 is not a valid number of seconds");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
    }

    #[test]
    fn duration_defaults_depend_on_ops() {
        let l = Limits::from_flags(None, None, 5.0, 10.0).unwrap();
        assert_eq!(
            (l.duration, l.grace, l.op_timeout),
            (Duration::from_secs(10), Duration::from_secs(5), Duration::from_secs(10))
        );
        assert_eq!(Limits::from_flags(Some(100), None, 5.0, 10.0).unwrap().duration, Duration::from_secs(60));
        assert_eq!(Limits::from_flags(Some(100), Some(3.0), 5.0, 10.0).unwrap().duration, Duration::from_secs(3));
        assert_eq!(Limits::from_flags(Some(7), None, 5.0, 10.0).unwrap().ops, Some(7));
    }

    #[test]
    fn the_first_bad_flag_is_named() {
        assert_eq!(Limits::from_flags(None, Some(-1.0), -1.0, -1.0).unwrap_err().flag, "duration");
        assert_eq!(Limits::from_flags(None, None, -1.0, -1.0).unwrap_err().flag, "grace");
        assert_eq!(Limits::from_flags(None, None, 1.0, -1.0).unwrap_err().flag, "op-timeout");
    }
}
