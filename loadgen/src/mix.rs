//! The operation mix: `--mix a:r` makes each client run `a` allocations, then `r` releases of
//! the oldest addresses it holds, round and round (`1:1` is a steady state, `1:0` fills).

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// One of the two operations a mix is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Take an address for a fresh owner (CNI ADD).
    Allocate,
    /// Give back what an owner holds (CNI DEL).
    Release,
}

/// An `allocate:release` ratio. Always has at least one allocation (a mix of releases only would
/// have nothing to release).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    allocate: u32,
    release: u32,
}

/// Why a `--mix` value was refused (the messages are what the command line prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// No `:` between the two numbers.
    #[error("expected allocate:release, e.g. 1:1")]
    NoColon,
    /// The allocate part is not a number.
    #[error("allocate part: {0}")]
    Allocate(ParseIntError),
    /// The release part is not a number.
    #[error("release part: {0}")]
    Release(ParseIntError),
    /// `0:r`.
    #[error("allocate part must be ≥ 1")]
    NoAllocations,
}

impl Mix {
    /// `allocate` allocations then `release` releases; `allocate` must be at least 1.
    pub fn new(allocate: u32, release: u32) -> Result<Mix, MixError> {
        if allocate == 0 {
            return Err(MixError::NoAllocations);
        }
        Ok(Mix { allocate, release })
    }

    /// Allocations per round.
    pub fn allocate(&self) -> u32 {
        self.allocate
    }

    /// Releases per round.
    pub fn release(&self) -> u32 {
        self.release
    }

    /// What a client's operation number `cycle` (from 0) should be: the first `allocate` of each
    /// round allocate, the rest release.
    pub fn op_at(&self, cycle: u64) -> OpKind {
        let round = u64::from(self.allocate) + u64::from(self.release);
        if cycle % round >= u64::from(self.allocate) {
            OpKind::Release
        } else {
            OpKind::Allocate
        }
    }
}

impl FromStr for Mix {
    type Err = MixError;

    /// Parses `a:r` (spaces around either number allowed).
    fn from_str(s: &str) -> Result<Mix, MixError> {
        let (a, r) = s.split_once(':').ok_or(MixError::NoColon)?;
        let a = a.trim().parse::<u32>().map_err(MixError::Allocate)?;
        let r = r.trim().parse::<u32>().map_err(MixError::Release)?;
        Mix::new(a, r)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.allocate, self.release)
    }
}

/// In a report, a mix is its `a:r` string.
impl Serialize for Mix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("1:1".parse(), Ok(Mix::new(1, 1).unwrap()));
        assert_eq!(" 3 : 0 ".parse::<Mix>().map(|m| (m.allocate(), m.release())), Ok((3, 0)));
        assert_eq!("0:1".parse::<Mix>(), Err(MixError::NoAllocations));
        assert_eq!("1".parse::<Mix>(), Err(MixError::NoColon));
        assert!(matches!("a:1".parse::<Mix>(), Err(MixError::Allocate(_))));
        assert!(matches!("1:b".parse::<Mix>(), Err(MixError::Release(_))));
        assert!(matches!("1:-1".parse::<Mix>(), Err(MixError::Release(_))));
        assert!(matches!("4294967296:1".parse::<Mix>(), Err(MixError::Allocate(_))));
        assert_eq!(Mix::new(0, 0), Err(MixError::NoAllocations));
    }

    #[test]
    fn messages_are_the_command_lines() {
        assert_eq!("1".parse::<Mix>().unwrap_err().to_string(), "expected allocate:release, e.g. 1:1");
        assert_eq!("0:1".parse::<Mix>().unwrap_err().to_string(), "allocate part must be ≥ 1");
        assert_eq!("x:1".parse::<Mix>().unwrap_err().to_string(), "allocate part: invalid digit found in string");
    }

    #[test]
    fn rounds_allocate_first_then_release() {
        let kinds = |m: Mix| (0..6).map(|c| m.op_at(c)).collect::<Vec<_>>();
        use OpKind::{Allocate as A, Release as R};
        assert_eq!(kinds(Mix::new(1, 1).unwrap()), [A, R, A, R, A, R]);
        assert_eq!(kinds(Mix::new(2, 1).unwrap()), [A, A, R, A, A, R]);
        assert_eq!(kinds(Mix::new(1, 0).unwrap()), [A; 6]);
        // The largest ratio does not overflow.
        assert_eq!(Mix::new(u32::MAX, u32::MAX).unwrap().op_at(u64::from(u32::MAX)), R);
    }

    #[test]
    fn prints_and_serializes_as_a_colon_pair() {
        let m: Mix = "3:1".parse().unwrap();
        assert_eq!(m.to_string(), "3:1");
        assert_eq!(serde_json::to_string(&m).unwrap(), r#""3:1""#);
    }
}
