//! What both stores share for cluster placement: node incarnations (`cluster_nodes`) and shard leases
//! (`shard_leases`, migration 0007). The statements are in `sqlite/leases.rs` and `mysql/leases.rs`
//! (they differ in how they read the database's clock and in `RETURNING`); here are the rows, their
//! checked conversions, and the bounds on what callers pass.
//!
//! Every time is read by the statement from the database's clock (see the [`Store`] port): a lease's
//! expiry and its check are judged by one clock, whatever the nodes' clocks say.
//!
//! [`Store`]: banter_actors::ports::Store

use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::ports::{
    JournalFence, Lease, LiveNode, MAX_ADVERTISE_LEN, StoreError, StoreResult,
};
use banter_actors::shard::{Epoch, MAX_SHARDS, ShardId};

/// Most leases one statement names (two binds each, far below either database's bind limit); a node
/// holds about `S / nodes` of them, so one statement in practice.
pub(crate) const LEASE_CHUNK: usize = 500;

/// Most shard rows one `INSERT` of [`Store::ensure_shards`](banter_actors::ports::Store::ensure_shards) carries.
pub(crate) const SHARD_INSERT_CHUNK: u32 = 1000;

/// The longest duration a statement adds to the database's time: 30 years. Longer ones count as this,
/// so that `now + ttl` stays far inside a signed 64-bit integer.
const MAX_DURATION_MS: i64 = 30 * 366 * 24 * 3600 * 1000;

/// Returns a duration in milliseconds for the database, at most [`MAX_DURATION_MS`].
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(MAX_DURATION_MS, |ms| ms.min(MAX_DURATION_MS))
}

/// Refuses an advertised address the table cannot hold.
pub(crate) fn check_advertise(advertise: &str) -> StoreResult<()> {
    if advertise.is_empty() || advertise.len() > MAX_ADVERTISE_LEN {
        return Err(StoreError::Other(format!(
            "a node's advertised address must have 1 to {MAX_ADVERTISE_LEN} bytes, not {}",
            advertise.len()
        )));
    }
    Ok(())
}

/// Refuses a shard count of 0 or above [`MAX_SHARDS`].
pub(crate) fn check_shard_count(count: u32) -> StoreResult<()> {
    if count == 0 || count > MAX_SHARDS {
        return Err(StoreError::Other(format!(
            "a cluster has 1 to {MAX_SHARDS} shards, not {count}"
        )));
    }
    Ok(())
}

/// Converts a stored node id (an auto-increment `BIGINT`) to a [`NodeId`].
pub(crate) fn node_from_db(id: i64) -> StoreResult<NodeId> {
    u32::try_from(id)
        .map(NodeId)
        .map_err(|_| StoreError::Other(format!("stored node id {id} is out of range")))
}

/// Converts a stored shard number to a [`ShardId`].
pub(crate) fn shard_from_db(shard: i64) -> StoreResult<ShardId> {
    u32::try_from(shard)
        .map(ShardId)
        .map_err(|_| StoreError::Other(format!("stored shard {shard} is out of range")))
}

/// Converts an epoch to the database's signed 64-bit integer.
pub(crate) fn epoch_to_db(epoch: Epoch) -> StoreResult<i64> {
    i64::try_from(epoch.0).map_err(|_| StoreError::Other(format!("epoch {epoch} out of range")))
}

/// Converts a stored epoch; a negative one is corrupt data.
pub(crate) fn epoch_from_db(epoch: i64) -> StoreResult<Epoch> {
    u64::try_from(epoch)
        .map(Epoch)
        .map_err(|_| StoreError::Other(format!("stored epoch {epoch} is negative")))
}

/// Most fences one `INSERT` carries (three binds each).
pub(crate) const FENCE_CHUNK: usize = 500;

/// Converts fences to database rows `(part, shard, epoch)`, keeping the highest epoch of each
/// (partition, shard) once, in key order (so concurrent writers lock rows in one order).
pub(crate) fn fences_to_db(fences: &[JournalFence]) -> StoreResult<Vec<(i32, i64, i64)>> {
    let mut rows = std::collections::BTreeMap::new();
    for f in fences {
        let epoch = epoch_to_db(f.epoch)?;
        let e = rows
            .entry((f.partition, i64::from(f.shard.0)))
            .or_insert(epoch);
        *e = (*e).max(epoch);
    }
    Ok(rows.into_iter().map(|((p, s), e)| (p, s, e)).collect())
}

/// Converts stored fence rows `(shard, epoch)`.
pub(crate) fn fences_from_db(rows: Vec<(i64, i64)>) -> StoreResult<Vec<(ShardId, Epoch)>> {
    rows.into_iter()
        .map(|(s, e)| Ok((shard_from_db(s)?, epoch_from_db(e)?)))
        .collect()
}

/// The conflict of [`Store::ensure_shards`](banter_actors::ports::Store::ensure_shards) on a table
/// holding another number of shards.
pub(crate) fn shard_count_conflict(stored: i64, count: u32) -> StoreError {
    StoreError::Conflict(format!(
        "the lease table holds {stored} shards, this node is configured with {count}: \
         every node of a cluster must use the same shard count"
    ))
}

/// Returns the shards `0..count`, in chunks of at most [`SHARD_INSERT_CHUNK`].
pub(crate) fn shard_chunks(count: u32) -> impl Iterator<Item = std::ops::Range<i64>> {
    (0..count.div_ceil(SHARD_INSERT_CHUNK)).map(move |i| {
        let start = i * SHARD_INSERT_CHUNK;
        let end = count.min(start.saturating_add(SHARD_INSERT_CHUNK));
        i64::from(start)..i64::from(end)
    })
}

/// Converts `(shard, epoch)` pairs for binding.
pub(crate) fn pairs_to_db(leases: &[(ShardId, Epoch)]) -> StoreResult<Vec<(i64, i64)>> {
    leases
        .iter()
        .map(|&(shard, epoch)| Ok((i64::from(shard.0), epoch_to_db(epoch)?)))
        .collect()
}

/// A `shard_leases` row with the database's time of the read.
#[derive(sqlx::FromRow)]
pub(crate) struct LeaseRow {
    shard: i64,
    owner: Option<i64>,
    epoch: i64,
    expires_at_ms: i64,
    remaining_ms: i64,
}

impl TryFrom<LeaseRow> for Lease {
    type Error = StoreError;

    fn try_from(r: LeaseRow) -> StoreResult<Self> {
        Ok(Lease {
            shard: shard_from_db(r.shard)?,
            owner: r.owner.map(node_from_db).transpose()?,
            epoch: epoch_from_db(r.epoch)?,
            expires_at_ms: r.expires_at_ms,
            remaining_ms: r.remaining_ms,
        })
    }
}

/// A `cluster_nodes` row with the age of its heartbeat.
#[derive(sqlx::FromRow)]
pub(crate) struct NodeRow {
    id: i64,
    advertise: String,
    started_at_ms: i64,
    age_ms: i64,
}

impl TryFrom<NodeRow> for LiveNode {
    type Error = StoreError;

    fn try_from(r: NodeRow) -> StoreResult<Self> {
        Ok(LiveNode {
            id: node_from_db(r.id)?,
            advertise: r.advertise,
            started_at_ms: r.started_at_ms,
            // A heartbeat "in the future" (the database's clock stepped back) is a fresh one.
            heartbeat_age: Duration::from_millis(u64::try_from(r.age_ms).unwrap_or(0)),
        })
    }
}

/// Keeps the renewed shards of `rows` (`(shard, epoch)` as stored) that the caller asked for at that
/// epoch, in shard order, each once.
pub(crate) fn matching(rows: &[(i64, i64)], asked: &[(i64, i64)]) -> Vec<i64> {
    let asked: std::collections::HashSet<(i64, i64)> = asked.iter().copied().collect();
    let mut kept: Vec<i64> = rows
        .iter()
        .filter(|row| asked.contains(row))
        .map(|&(shard, _)| shard)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_milliseconds() {
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(3)), 3000);
        assert_eq!(millis(Duration::MAX), MAX_DURATION_MS);
        assert!(MAX_DURATION_MS.checked_mul(2).is_some());
    }

    #[test]
    fn shard_chunks_cover_the_range_once() {
        assert_eq!(shard_chunks(0).count(), 0);
        assert_eq!(shard_chunks(256).collect::<Vec<_>>(), vec![(0..256)]);
        assert_eq!(
            shard_chunks(2001).collect::<Vec<_>>(),
            [0..1000, 1000..2000, 2000..2001]
        );
        assert_eq!(
            shard_chunks(u32::MAX).last(),
            Some(4_294_967_000..4_294_967_295)
        );
    }

    #[test]
    fn malformed_rows_are_errors() {
        assert!(node_from_db(-1).is_err());
        assert!(node_from_db(i64::from(u32::MAX) + 1).is_err());
        assert!(shard_from_db(-3).is_err());
        assert!(epoch_from_db(-1).is_err());
        assert!(epoch_to_db(Epoch(u64::MAX)).is_err());
        let row = LeaseRow {
            shard: 1,
            owner: Some(-5),
            epoch: 1,
            expires_at_ms: 0,
            remaining_ms: 0,
        };
        assert!(matches!(Lease::try_from(row), Err(StoreError::Other(_))));
    }

    #[test]
    fn matching_keeps_asked_epochs_only() {
        let rows = [(3, 2), (1, 1), (2, 5)];
        assert_eq!(matching(&rows, &[(1, 1), (2, 4), (3, 2), (3, 2)]), [1, 3]);
    }
}
