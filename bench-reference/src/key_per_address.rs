//! The strongest etcd baseline: one key per address, each claimed by its own small transaction.
//!
//! Why it exists: whereabouts' scheme ([`crate::scheme`]) rewrites the whole pool object on every
//! operation, so every client of a pool races on one key and every write carries the whole pool
//! (about 147 KiB for a half-full /20). Measuring whereabouts-rs only against that would be measuring
//! it against a weak etcd design. This is the best an etcd-based IPAM could do with the same
//! guarantee (no address given twice): per-key transactions, no whole-object rewrite, and a write
//! conflicts only with another client claiming the very same address.
//!
//! Layout: address `offset` of a pool is the key `<prefix><pool-name>/<offset>` (offset in decimal
//! from the network address, as whereabouts counts), its value the owner id; a free address has no key.
//!
//! Allocate: claim a random usable offset with a txn `create_revision(key) == 0 → put`
//! (create-if-absent); if the key exists, that is a *conflict*, and the next claim tries another
//! random offset. After [`RANDOM_PROBES`] consecutive misses (a crowded pool) every further claim is
//! preceded by one keys-only range read of the pool's prefix and goes to an offset picked uniformly
//! among the free ones; a read that finds none free is [`OpError::Exhausted`]. At most
//! [`MAX_ATTEMPTS`] claims per operation, whereabouts' 100.
//!
//! Release: delete the owner's key with a txn comparing its value to the owner id. The benchmark's
//! client remembers which offset each of its owners holds (the owners are its own), so a release is
//! one txn and no read.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::Context;
use loadgen::{Attempts, PoolRange};

use crate::etcd::{Etcd, MAX_TXN_OPS};
pub use crate::scheme::MAX_ATTEMPTS;
use crate::scheme::{OpError, Pool};
use fastrand::Rng;

/// Blind random claims before the allocation starts reading the pool's keys.
pub const RANDOM_PROBES: u32 = 8;

/// The offsets an allocation may hand out: the network address and the last address are never
/// given, as in whereabouts.
pub fn usable_offsets(range: &PoolRange) -> RangeInclusive<u128> {
    range.first_offset()..=range.last_offset()
}

/// The prefix of every address key of `pool`: `<prefix><pool-name>/`.
pub fn address_prefix(pool: &Pool) -> String {
    format!("{}/", pool.key)
}

/// The key of address `offset` under `address_prefix` (from [`address_prefix`]).
pub fn address_key(address_prefix: &str, offset: u128) -> String {
    format!("{address_prefix}{offset}")
}

/// The offset of an address key under `address_prefix`; `None` for any other key.
pub fn parse_offset(address_prefix: &str, key: &[u8]) -> Option<u128> {
    let rest = key.strip_prefix(address_prefix.as_bytes())?;
    let digits = std::str::from_utf8(rest).ok()?;
    // Only plain decimal, as address_key writes it (u128's parser would also take a leading '+').
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A uniformly random usable offset of `range`, taken or not: a blind probe.
pub fn random_offset(range: &PoolRange, rng: &mut Rng) -> u128 {
    range.first_offset() + rng.u128(..range.usable())
}

/// The `n`-th (from 0) offset of `usable` that is not in `taken`, or `None` if fewer are free.
/// One pass over the taken offsets inside `usable`, so it works for any pool size.
pub fn nth_free(usable: &RangeInclusive<u128>, taken: &BTreeSet<u128>, n: u128) -> Option<u128> {
    let mut candidate = usable.start().checked_add(n)?;
    for &t in taken.range(usable.clone()) {
        if t > candidate {
            break;
        }
        candidate += 1;
    }
    (candidate <= *usable.end()).then_some(candidate)
}

/// An offset picked uniformly at random among the usable offsets of `range` not in `taken`;
/// `None` when every one is taken. Offsets in `taken` outside the usable ones are ignored.
pub fn pick_free(range: &PoolRange, taken: &BTreeSet<u128>, rng: &mut Rng) -> Option<u128> {
    let usable = usable_offsets(range);
    let taken_usable = taken.range(usable.clone()).count() as u128;
    let free = range.usable().checked_sub(taken_usable).filter(|&f| f > 0)?;
    nth_free(&usable, taken, rng.u128(..free))
}

fn etcd_err(e: tonic::Status) -> OpError {
    OpError::Etcd(format!("{}: {}", e.code(), e.message()))
}

/// Allocates an address of `pool` to `owner_id` and returns its offset. Claims that find the key
/// taken are counted in `races.conflicts` and claims beyond the first in `races.retries`, as they
/// happen (so an operation cut by its timeout still counts its own).
pub async fn allocate(
    etcd: &mut Etcd,
    pool: &Pool,
    rng: &mut Rng,
    races: &Attempts,
    owner_id: &str,
) -> Result<u128, OpError> {
    let prefix = address_prefix(pool);
    // Every attempt that does not return is a miss: `attempt` counts the consecutive misses.
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            races.retries.fetch_add(1, Relaxed);
        }
        let offset = if attempt < RANDOM_PROBES {
            random_offset(&pool.range, rng)
        } else {
            let keys = etcd.keys_with_prefix(&prefix).await.map_err(etcd_err)?;
            let taken: BTreeSet<u128> = keys.iter().filter_map(|k| parse_offset(&prefix, k)).collect();
            pick_free(&pool.range, &taken, rng).ok_or(OpError::Exhausted)?
        };
        let key = address_key(&prefix, offset);
        if etcd.create_if_absent(&key, owner_id.as_bytes().to_vec()).await.map_err(etcd_err)? {
            return Ok(offset);
        }
        races.conflicts.fetch_add(1, Relaxed);
    }
    Err(OpError::RetriesExhausted)
}

/// Releases address `offset` of `pool`, held by `owner_id`: one txn deleting the key if its value
/// is still the owner id. A key that is missing or held by someone else is an error (the benchmark
/// only releases what it allocated, so it would mean an address was given twice or lost).
pub async fn release(etcd: &mut Etcd, pool: &Pool, offset: u128, owner_id: &str) -> Result<(), OpError> {
    let key = address_key(&address_prefix(pool), offset);
    if etcd.delete_if_value(&key, owner_id.as_bytes()).await.map_err(etcd_err)? {
        Ok(())
    } else {
        Err(OpError::Etcd(format!("release: {key} is not held by {owner_id}")))
    }
}

/// Writes `count` allocations into `pool` before the run (unmeasured): the lowest `count` usable
/// offsets, owners `prefill-<n>`, as the whole-pool scheme's prefill leaves its object, in txns of
/// at most [`MAX_TXN_OPS`] plain PUTs.
pub async fn prefill(etcd: &mut Etcd, pool: &Pool, count: u64) -> anyhow::Result<()> {
    let prefix = address_prefix(pool);
    let mut batch = Vec::with_capacity(MAX_TXN_OPS);
    for (n, offset) in (0..count).zip(usable_offsets(&pool.range)) {
        batch.push((address_key(&prefix, offset), format!("prefill-{n}").into_bytes()));
        if batch.len() == MAX_TXN_OPS || n + 1 == count {
            etcd.put_all(std::mem::take(&mut batch)).await.context("prefilling address keys")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(size: u128) -> Pool {
        let range = PoolRange::new(0, size, false).unwrap();
        let name = range.cidr().replace([':', '/'], "-");
        Pool { key: format!("/p/{name}"), name, range }
    }

    #[test]
    fn usable_offsets_exclude_network_and_last_address() {
        let p = pool(8);
        assert_eq!(usable_offsets(&p.range), 1..=6);
        assert_eq!(usable_offsets(&p.range).count() as u128, p.range.usable());
        assert_eq!(usable_offsets(&pool(4096).range), 1..=4094);
    }

    #[test]
    fn keys_are_prefix_pool_name_slash_offset_and_parse_back() {
        let p = pool(4096);
        let prefix = address_prefix(&p);
        assert_eq!(prefix, "/p/10.0.0.0-20/");
        assert_eq!(address_key(&prefix, 17), "/p/10.0.0.0-20/17");
        assert_eq!(parse_offset(&prefix, b"/p/10.0.0.0-20/17"), Some(17));
        assert_eq!(parse_offset(&prefix, b"/p/10.0.0.0-20/"), None);
        assert_eq!(parse_offset(&prefix, b"/p/10.0.0.0-20/+1"), None);
        assert_eq!(parse_offset(&prefix, b"/p/10.0.0.0-20/1x"), None);
        assert_eq!(parse_offset(&prefix, b"/p/10.0.0.0-20"), None, "the whole-pool object is not an address");
        assert_eq!(parse_offset(&prefix, b"/p/10.0.16.0-20/3"), None);
    }

    #[test]
    fn nth_free_skips_taken_offsets() {
        let usable = 1..=6;
        let taken: BTreeSet<u128> = [2, 4].into();
        let free: Vec<u128> = (0..5).filter_map(|n| nth_free(&usable, &taken, n)).collect();
        assert_eq!(free, [1, 3, 5, 6]);
        let taken: BTreeSet<u128> = [0, 1, 2, 7, 100].into(); // 0, 7 and 100 are outside: ignored
        assert_eq!(nth_free(&usable, &taken, 0), Some(3));
        assert_eq!(nth_free(&usable, &taken, 3), Some(6));
        assert_eq!(nth_free(&usable, &taken, 4), None);
        assert_eq!(nth_free(&usable, &BTreeSet::new(), u128::MAX), None, "no overflow");
    }

    #[test]
    fn pick_free_is_uniform_over_free_offsets_and_none_when_full() {
        let p = pool(16); // offsets 1..=14
        let mut rng = Rng::with_seed(5);
        let taken: BTreeSet<u128> = (1..=14).filter(|o| o % 3 != 0).collect(); // free: 3, 6, 9, 12
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..4000 {
            *seen.entry(pick_free(&p.range, &taken, &mut rng).unwrap()).or_insert(0u32) += 1;
        }
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [3, 6, 9, 12]);
        assert!(seen.values().all(|&c| (850..1150).contains(&c)), "{seen:?}");
        let full: BTreeSet<u128> = usable_offsets(&p.range).collect();
        assert_eq!(pick_free(&p.range, &full, &mut rng), None);
        let mut with_outside = full.clone();
        with_outside.insert(0);
        with_outside.remove(&7);
        assert_eq!(pick_free(&p.range, &with_outside, &mut rng), Some(7));
    }

    #[test]
    fn random_offsets_stay_usable_and_are_reproducible() {
        let p = pool(8);
        let mut a = crate::bench::client_rng(1, 0);
        let mut b = crate::bench::client_rng(1, 0);
        let xs: Vec<u128> = (0..200).map(|_| random_offset(&p.range, &mut a)).collect();
        assert!(xs.iter().all(|o| usable_offsets(&p.range).contains(o)));
        assert_eq!(xs.iter().copied().collect::<BTreeSet<_>>(), (1..=6).collect(), "every usable offset comes up");
        assert_eq!(xs, (0..200).map(|_| random_offset(&p.range, &mut b)).collect::<Vec<_>>());
    }
}
