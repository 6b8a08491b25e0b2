//! Failed operations counted by cause. Each system names its own causes (a [`FailureKind`]);
//! the counting, merging, JSON object and text breakdown are the same for both.

use std::fmt;
use std::marker::PhantomData;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// A cause of failure a load generator distinguishes (e.g. an exhausted pool, a timeout).
pub trait FailureKind: Copy + Eq + fmt::Debug + Send + Sync + 'static {
    /// Every kind, in the order the report lists them.
    const ALL: &'static [Self];
    /// Its key in the report's `error_kinds` object; the text says it with spaces for underscores.
    fn key(self) -> &'static str;
}

/// How many operations failed of each kind `K`. Serializes as an object with one number per
/// kind, keys in [`FailureKind::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorKinds<K> {
    /// `counts[i]` counts `K::ALL[i]`.
    counts: Vec<u64>,
    kinds: PhantomData<K>,
}

impl<K: FailureKind> Default for ErrorKinds<K> {
    fn default() -> Self {
        ErrorKinds { counts: vec![0; K::ALL.len()], kinds: PhantomData }
    }
}

impl<K: FailureKind> ErrorKinds<K> {
    fn index(kind: K) -> usize {
        K::ALL.iter().position(|k| *k == kind).expect("FailureKind::ALL lists every kind")
    }

    /// Counts one failure of `kind`.
    pub fn count(&mut self, kind: K) {
        self.counts[Self::index(kind)] += 1;
    }

    /// Failures of `kind`.
    pub fn get(&self, kind: K) -> u64 {
        self.counts[Self::index(kind)]
    }

    /// Failures of all kinds.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &ErrorKinds<K>) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
    }

    /// `exhausted 1, timeout 0, cut at hard stop 2`: every kind with its count, for the text report.
    pub fn breakdown(&self) -> String {
        let parts: Vec<String> =
            K::ALL.iter().zip(&self.counts).map(|(k, n)| format!("{} {n}", k.key().replace('_', " "))).collect();
        parts.join(", ")
    }
}

impl<K: FailureKind> Serialize for ErrorKinds<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ErrorKinds", K::ALL.len())?;
        for (k, n) in K::ALL.iter().zip(&self.counts) {
            st.serialize_field(k.key(), n)?;
        }
        st.end()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Causes of failure of the tests' fake clients.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Kind {
        Exhausted,
        RetriesExhausted,
        CutAtHardStop,
    }

    impl FailureKind for Kind {
        const ALL: &'static [Kind] = &[Kind::Exhausted, Kind::RetriesExhausted, Kind::CutAtHardStop];
        fn key(self) -> &'static str {
            match self {
                Kind::Exhausted => "exhausted",
                Kind::RetriesExhausted => "retries_exhausted",
                Kind::CutAtHardStop => "cut_at_hard_stop",
            }
        }
    }

    #[test]
    fn counts_total_and_merge() {
        let mut a = ErrorKinds::<Kind>::default();
        assert_eq!(a.total(), 0);
        a.count(Kind::Exhausted);
        a.count(Kind::CutAtHardStop);
        a.count(Kind::CutAtHardStop);
        let mut b = ErrorKinds::default();
        b.count(Kind::RetriesExhausted);
        b.count(Kind::Exhausted);
        a.add(&b);
        assert_eq!((a.get(Kind::Exhausted), a.get(Kind::RetriesExhausted), a.get(Kind::CutAtHardStop)), (2, 1, 2));
        assert_eq!(a.total(), 5);
        assert_eq!(b.total(), 2, "add leaves the other side alone");
    }

    #[test]
    fn json_object_and_text_list_every_kind_in_order() {
        let mut e = ErrorKinds::<Kind>::default();
        e.count(Kind::RetriesExhausted);
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"exhausted":0,"retries_exhausted":1,"cut_at_hard_stop":0}"#);
        assert_eq!(e.breakdown(), "exhausted 0, retries exhausted 1, cut at hard stop 0");
    }
}
