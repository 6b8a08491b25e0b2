//! whereabouts' allocation scheme against etcd, one operation at a time.
//!
//! One allocation = GET the whole pool object, pick the lowest free address, write the whole object back
//! with a transaction comparing the key's mod_revision; on a lost race re-read and retry, up to 100
//! attempts with no sleep (whereabouts' `DatastoreRetries`). A missing pool is created with
//! `create_revision == 0` and the loop goes round again. A release is the same loop removing the
//! owner's entry (no write when the owner holds nothing).

use std::sync::atomic::Ordering::Relaxed;

use loadgen::{Attempts, PoolRange};

use crate::etcd::Etcd;
use crate::pool::{Allocation, PoolObject};

/// whereabouts' `storage.DatastoreRetries`.
pub const MAX_ATTEMPTS: u32 = 100;

/// One pool: its key, name and range.
#[derive(Debug, Clone)]
pub struct Pool {
    /// etcd key of the pool object.
    pub key: String,
    /// Pool name (as whereabouts names IPPools).
    pub name: String,
    /// Its range.
    pub range: PoolRange,
}

/// Why an operation failed.
#[derive(Debug)]
pub enum OpError {
    /// No free address in the pool.
    Exhausted,
    /// Every attempt lost the race.
    RetriesExhausted,
    /// A gRPC error or an undecodable pool object.
    Etcd(String),
    /// Over the operation's time budget (set by the caller).
    Timeout,
}

/// The retry loop shared by allocate and release: `change` edits the pool object and says whether
/// there is anything to write. Lost races and extra attempts are counted in `races` as they happen
/// (so an operation cut by its timeout still counts its own).
pub async fn read_modify_write(
    etcd: &mut Etcd,
    pool: &Pool,
    races: &Attempts,
    mut change: impl FnMut(&mut PoolObject) -> Result<bool, OpError>,
) -> Result<(), OpError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            races.retries.fetch_add(1, Relaxed);
        }
        let etcd_err = |e: tonic::Status| OpError::Etcd(format!("{}: {}", e.code(), e.message()));
        let Some(current) = etcd.get(&pool.key).await.map_err(etcd_err)? else {
            // The pool does not exist yet: create it empty, then go round again (whereabouts does the same).
            let created = etcd.compare_and_swap(&pool.key, 0, PoolObject::new(&pool.name, &pool.range).encode()).await;
            if !created.map_err(etcd_err)? {
                races.conflicts.fetch_add(1, Relaxed);
            }
            continue;
        };
        let mut object = PoolObject::decode(&current.value).map_err(|e| OpError::Etcd(format!("decode: {e}")))?;
        if !change(&mut object)? {
            return Ok(());
        }
        if etcd.compare_and_swap(&pool.key, current.mod_revision, object.encode()).await.map_err(etcd_err)? {
            return Ok(());
        }
        races.conflicts.fetch_add(1, Relaxed);
    }
    Err(OpError::RetriesExhausted)
}

/// Allocates an address for `owner` (or keeps the one it holds).
pub async fn allocate(etcd: &mut Etcd, pool: &Pool, races: &Attempts, owner: &Allocation) -> Result<(), OpError> {
    read_modify_write(etcd, pool, races, |object| {
        object.allocate(&pool.range, owner).map(|_| true).ok_or(OpError::Exhausted)
    })
    .await
}

/// Releases what `owner` holds (nothing to write if it holds nothing).
pub async fn release(etcd: &mut Etcd, pool: &Pool, races: &Attempts, owner: &Allocation) -> Result<(), OpError> {
    read_modify_write(etcd, pool, races, |object| Ok(object.release(&owner.id, &owner.ifname).is_some())).await
}
