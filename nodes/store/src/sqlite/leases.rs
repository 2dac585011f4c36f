//! Cluster placement on [`SqliteStore`]: node incarnations and shard leases (see `crate::leases`).
//!
//! Times come from SQLite's clock (`unixepoch('subsec')`, the same for every use within one statement
//! step). SQLite runs one writer at a time, so each compare-and-set is one `UPDATE … RETURNING`; the
//! batch ones run in one `BEGIN IMMEDIATE` transaction.

use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::ports::{JournalFence, Lease, LiveNode, StoreError, StoreResult};
use banter_actors::shard::{Epoch, ShardId};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::leases::{
    FENCE_CHUNK, LEASE_CHUNK, LeaseRow, NodeRow, check_advertise, check_shard_count,
    fences_from_db, fences_to_db, matching, millis, node_from_db, pairs_to_db, shard_chunks,
    shard_count_conflict, shard_from_db,
};
use crate::{convert_all, map_err};

/// The database's time in milliseconds since the Unix epoch, as an SQL expression.
macro_rules! now {
    () => {
        "CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)"
    };
}

impl SqliteStore {
    pub(super) async fn register_node_impl(&self, advertise: &str) -> StoreResult<NodeId> {
        check_advertise(advertise)?;
        let id: i64 = sqlx::query_scalar(concat!(
            "INSERT INTO cluster_nodes (advertise, started_at_ms, heartbeat_at_ms) VALUES (?, ",
            now!(),
            ", ",
            now!(),
            ") RETURNING id"
        ))
        .bind(advertise)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        node_from_db(id)
    }

    pub(super) async fn node_heartbeat_impl(&self, node: NodeId) -> StoreResult<()> {
        let done = sqlx::query(concat!(
            "UPDATE cluster_nodes SET heartbeat_at_ms = ",
            now!(),
            " WHERE id = ?"
        ))
        .bind(i64::from(node.0))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub(super) async fn live_nodes_impl(&self, within: Duration) -> StoreResult<Vec<LiveNode>> {
        let rows: Vec<NodeRow> = sqlx::query_as(concat!(
            "SELECT id, advertise, started_at_ms, ",
            now!(),
            " - heartbeat_at_ms AS age_ms FROM cluster_nodes WHERE heartbeat_at_ms >= ",
            now!(),
            " - ? ORDER BY id"
        ))
        .bind(millis(within))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert_all(rows)
    }

    pub(super) async fn delete_dead_nodes_impl(&self, dead_for: Duration) -> StoreResult<u64> {
        let done = sqlx::query(concat!(
            "DELETE FROM cluster_nodes WHERE heartbeat_at_ms < ",
            now!(),
            " - ?"
        ))
        .bind(millis(dead_for))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    pub(super) async fn ensure_shards_impl(&self, count: u32) -> StoreResult<()> {
        check_shard_count(count)?;
        // One writer at a time: the count and the inserts see no other node's half-done work.
        let mut tx = self.begin_write().await?;
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shard_leases")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if stored == i64::from(count) {
            return Ok(());
        }
        if stored != 0 {
            return Err(shard_count_conflict(stored, count));
        }
        for chunk in shard_chunks(count) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO shard_leases (shard) ");
            query.push_values(chunk, |mut row, shard| {
                row.push_bind(shard);
            });
            query.push(" ON CONFLICT (shard) DO NOTHING");
            query.build().execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    pub(super) async fn leases_impl(&self) -> StoreResult<Vec<Lease>> {
        let rows: Vec<LeaseRow> = sqlx::query_as(concat!(
            "SELECT shard, owner, epoch, expires_at_ms, expires_at_ms - ",
            now!(),
            " AS remaining_ms FROM shard_leases ORDER BY shard"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert_all(rows)
    }

    pub(super) async fn take_lease_impl(
        &self,
        shard: ShardId,
        node: NodeId,
        ttl: Duration,
        expired_for: Duration,
    ) -> StoreResult<Option<Epoch>> {
        // The WHERE clause is the compare-and-set: free, or expired for at least `expired_for`.
        let epoch: Option<i64> = sqlx::query_scalar(concat!(
            "UPDATE shard_leases SET owner = ?, epoch = epoch + 1, expires_at_ms = ",
            now!(),
            " + ? WHERE shard = ? AND (owner IS NULL OR expires_at_ms <= ",
            now!(),
            " - ?) RETURNING epoch"
        ))
        .bind(i64::from(node.0))
        .bind(millis(ttl))
        .bind(i64::from(shard.0))
        .bind(millis(expired_for))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match epoch {
            Some(epoch) => crate::leases::epoch_from_db(epoch).map(Some),
            None => {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT shard FROM shard_leases WHERE shard = ?")
                        .bind(i64::from(shard.0))
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_err)?;
                exists.map(|_| None).ok_or(StoreError::NotFound)
            }
        }
    }

    pub(super) async fn renew_leases_impl(
        &self,
        node: NodeId,
        leases: &[(ShardId, Epoch)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>> {
        let asked = pairs_to_db(leases)?;
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let mut renewed = Vec::with_capacity(asked.len());
        for chunk in asked.chunks(LEASE_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(concat!(
                "UPDATE shard_leases SET expires_at_ms = ",
                now!(),
                " + "
            ));
            query
                .push_bind(millis(ttl))
                .push(" WHERE owner = ")
                .push_bind(i64::from(node.0))
                .push(concat!(" AND expires_at_ms > ", now!(), " AND "));
            push_pairs(&mut query, chunk);
            query.push(" RETURNING shard, epoch");
            let rows: Vec<(i64, i64)> = query
                .build_query_as()
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
            renewed.extend(rows);
        }
        tx.commit().await.map_err(map_err)?;
        matching(&renewed, &asked)
            .into_iter()
            .map(shard_from_db)
            .collect()
    }

    pub(super) async fn release_leases_impl(
        &self,
        node: NodeId,
        leases: &[(ShardId, Epoch)],
    ) -> StoreResult<u64> {
        let asked = pairs_to_db(leases)?;
        if asked.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut released = 0;
        for chunk in asked.chunks(LEASE_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(concat!(
                "UPDATE shard_leases SET owner = NULL, expires_at_ms = ",
                now!(),
                " WHERE owner = "
            ));
            query.push_bind(i64::from(node.0)).push(" AND ");
            push_pairs(&mut query, chunk);
            released += query
                .build()
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(released)
    }
}

impl SqliteStore {
    pub(super) async fn journal_fences_impl(
        &self,
        partition: i32,
    ) -> StoreResult<Vec<(ShardId, Epoch)>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT shard, epoch FROM journal_fences WHERE part = ? ORDER BY shard")
                .bind(partition)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        fences_from_db(rows)
    }

    pub(super) async fn raise_journal_fences_impl(
        &self,
        fences: &[JournalFence],
    ) -> StoreResult<()> {
        let rows = fences_to_db(fences)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in rows.chunks(FENCE_CHUNK) {
            let mut query =
                QueryBuilder::<Sqlite>::new("INSERT INTO journal_fences (part, shard, epoch) ");
            query.push_values(chunk, |mut row, &(part, shard, epoch)| {
                row.push_bind(part).push_bind(shard).push_bind(epoch);
            });
            query.push(
                " ON CONFLICT (part, shard) DO UPDATE SET epoch = MAX(epoch, excluded.epoch)",
            );
            query.build().execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}

/// Pushes `(shard, epoch) IN (VALUES (?, ?), …)`; `pairs` is not empty.
fn push_pairs(query: &mut QueryBuilder<Sqlite>, pairs: &[(i64, i64)]) {
    query.push("(shard, epoch) IN (VALUES ");
    for (i, &(shard, epoch)) in pairs.iter().enumerate() {
        if i > 0 {
            query.push(", ");
        }
        query
            .push("(")
            .push_bind(shard)
            .push(", ")
            .push_bind(epoch)
            .push(")");
    }
    query.push(")");
}
