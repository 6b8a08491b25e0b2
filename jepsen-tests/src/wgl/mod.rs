//! Linearizability search (Wing & Gong, with Lowe's memoization as in porcupine).
//!
//! Generic over a sequential [`Model`]. Operations whose outcome is unknown (`ret == None`) may be
//! linearized at any point after their call, or never; the model must accept any outcome for them.
//! The search is bounded: when the bound is hit the answer is [`Outcome::Unknown`], never "linearizable".

mod bitset;

use std::collections::HashSet;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Instant;

pub use bitset::BitSet;

/// A sequential specification.
pub trait Model {
    /// Model state; equal states must behave the same (it is part of the memo key).
    type State: Clone + Eq + Hash;
    /// An operation with its observed outcome (or none, for indeterminate operations).
    type Op;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// The next state if `op` can take effect in `state` with the outcome it observed.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation of a history, positioned by event indexes.
#[derive(Debug, Clone)]
pub struct Timed<O> {
    /// Index of the invoke event.
    pub call: u64,
    /// Index of the completion for definite operations; `None` when the outcome is unknown.
    pub ret: Option<u64>,
    /// The operation.
    pub op: O,
}

/// Limits that make the search give up with [`Outcome::Unknown`].
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Maximum number of memoized (linearized set, state) pairs.
    pub max_states: usize,
    /// Wall-clock deadline (checked every 1024 steps).
    pub deadline: Option<Instant>,
}

/// Result of the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<S> {
    /// A valid linearization exists; `states` memoized configurations were explored.
    Linearizable {
        /// Memo size at the end.
        states: usize,
    },
    /// No linearization exists.
    Violation {
        /// Operation (position in the input) that could not be placed at the deepest point reached.
        stuck: usize,
        /// Model state just before it, at that point.
        state: S,
        /// How many operations were linearized at that point.
        depth: usize,
        /// Memo size at the end.
        states: usize,
    },
    /// The budget ran out.
    Unknown {
        /// Memo size when the search stopped.
        states: usize,
        /// Which bound was hit.
        reason: String,
    },
}

const HEAD: usize = 0;

struct List {
    next: Vec<usize>,
    prev: Vec<usize>,
    op: Vec<usize>,
    is_call: Vec<bool>,
    ret_of: Vec<usize>,
}

impl List {
    fn new<O>(ops: &[Timed<O>]) -> Self {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            order.push((o.call, false, i));
            order.push((o.ret.unwrap_or(u64::MAX), true, i));
        }
        order.sort_unstable();
        let n = order.len() + 2;
        let tail = n - 1;
        let mut l = List {
            next: (1..=n).collect(),
            prev: (0..n).map(|i| i.saturating_sub(1)).collect(),
            op: vec![usize::MAX; n],
            is_call: vec![false; n],
            ret_of: vec![0; ops.len()],
        };
        l.next[tail] = tail;
        for (pos, (_, is_ret, i)) in order.into_iter().enumerate() {
            let e = pos + 1;
            l.op[e] = i;
            l.is_call[e] = !is_ret;
            if is_ret {
                l.ret_of[i] = e;
            }
        }
        l
    }

    fn tail(&self) -> usize {
        self.next.len() - 1
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    fn lift(&mut self, call: usize) {
        let ret = self.ret_of[self.op[call]];
        self.unlink(call);
        self.unlink(ret);
    }

    fn unlift(&mut self, call: usize) {
        let ret = self.ret_of[self.op[call]];
        self.relink(ret);
        self.relink(call);
    }
}

/// Searches for a linearization of `ops` (calls/returns ordered by event index).
pub fn check<M: Model>(model: &M, ops: &[Timed<M::Op>], budget: Budget) -> Outcome<M::State> {
    let mut list = List::new(ops);
    let tail = list.tail();
    let mut remaining = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut linearized = BitSet::new(ops.len());
    let mut cache: HashSet<(BitSet, Rc<M::State>)> = HashSet::new();
    let mut stack: Vec<(usize, Rc<M::State>)> = Vec::new();
    let mut state = Rc::new(model.init());
    let mut deepest: Option<(usize, usize, Rc<M::State>)> = None;
    let mut entry = list.next[HEAD];
    let mut steps: u64 = 0;
    while entry != tail {
        if remaining == 0 {
            // Every definite operation is placed; indeterminate ones can all go last (or never).
            return Outcome::Linearizable { states: cache.len() };
        }
        steps += 1;
        if cache.len() > budget.max_states {
            return unknown(cache.len(), format!("more than {} states", budget.max_states));
        }
        if steps.is_multiple_of(1024) && budget.deadline.is_some_and(|d| Instant::now() >= d) {
            return unknown(cache.len(), "time limit".to_string());
        }
        let i = list.op[entry];
        if list.is_call[entry] {
            if let Some(next) = model.step(&state, &ops[i].op) {
                linearized.set(i);
                let next = Rc::new(next);
                if cache.insert((linearized.clone(), Rc::clone(&next))) {
                    stack.push((entry, std::mem::replace(&mut state, next)));
                    if ops[i].ret.is_some() {
                        remaining -= 1;
                    }
                    list.lift(entry);
                    entry = list.next[HEAD];
                    continue;
                }
                linearized.clear(i);
            }
            entry = list.next[entry];
        } else {
            if deepest.as_ref().is_none_or(|(d, _, _)| stack.len() > *d) {
                deepest = Some((stack.len(), i, Rc::clone(&state)));
            }
            let Some((call, prev)) = stack.pop() else {
                break;
            };
            let j = list.op[call];
            linearized.clear(j);
            if ops[j].ret.is_some() {
                remaining += 1;
            }
            state = prev;
            list.unlift(call);
            entry = list.next[call];
        }
    }
    if remaining == 0 {
        return Outcome::Linearizable { states: cache.len() };
    }
    let (depth, stuck, at) = deepest.unwrap_or((0, 0, state));
    Outcome::Violation { stuck, state: Rc::unwrap_or_clone(at), depth, states: cache.len() }
}

fn unknown<S>(states: usize, reason: String) -> Outcome<S> {
    Outcome::Unknown { states, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: write(v) or read() == v.
    struct Register;
    #[derive(Debug)]
    enum RegOp {
        Write(u8),
        Read(u8),
    }
    impl Model for Register {
        type State = u8;
        type Op = RegOp;
        fn init(&self) -> u8 {
            0
        }
        fn step(&self, s: &u8, op: &RegOp) -> Option<u8> {
            match op {
                RegOp::Write(v) => Some(*v),
                RegOp::Read(v) => (v == s).then_some(*s),
            }
        }
    }

    fn t(call: u64, ret: Option<u64>, op: RegOp) -> Timed<RegOp> {
        Timed { call, ret, op }
    }

    const BIG: Budget = Budget { max_states: 10_000, deadline: None };

    #[test]
    fn concurrent_write_and_read_linearize() {
        let ops = [t(0, Some(3), RegOp::Write(1)), t(1, Some(2), RegOp::Read(1))];
        assert!(matches!(check(&Register, &ops, BIG), Outcome::Linearizable { .. }));
    }

    #[test]
    fn stale_read_is_a_violation_naming_the_read() {
        let ops = [t(0, Some(1), RegOp::Write(1)), t(2, Some(3), RegOp::Read(0))];
        match check(&Register, &ops, BIG) {
            Outcome::Violation { stuck, state, depth, .. } => {
                assert_eq!((stuck, state, depth), (1, 1, 1));
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn info_ops_may_apply_late_or_never() {
        let took_effect = [t(0, None, RegOp::Write(2)), t(1, Some(2), RegOp::Read(0)), t(3, Some(4), RegOp::Read(2))];
        assert!(matches!(check(&Register, &took_effect, BIG), Outcome::Linearizable { .. }));
        let never = [t(0, None, RegOp::Write(2)), t(3, Some(4), RegOp::Read(0))];
        assert!(matches!(check(&Register, &never, BIG), Outcome::Linearizable { .. }));
        let before_call = [t(0, Some(1), RegOp::Read(2)), t(2, None, RegOp::Write(2))];
        assert!(matches!(check(&Register, &before_call, BIG), Outcome::Violation { .. }));
    }

    #[test]
    fn exhausted_budget_is_unknown_not_ok() {
        let ops: Vec<_> = (0..12)
            .map(|i| t(i, Some(100 + i), RegOp::Write(i as u8)))
            .chain([t(50, Some(60), RegOp::Read(99))])
            .collect();
        let tiny = Budget { max_states: 5, deadline: None };
        assert!(matches!(check(&Register, &ops, tiny), Outcome::Unknown { .. }));
    }
}
