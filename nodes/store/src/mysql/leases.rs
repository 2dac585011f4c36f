//! Cluster placement on [`MySqlStore`]: node incarnations and shard leases (see `crate::leases`).
//!
//! Times come from the server's clock, in UTC: `TIMESTAMPDIFF(MICROSECOND, epoch, UTC_TIMESTAMP(6))`
//! is plain arithmetic, whatever the session's time zone (`UNIX_TIMESTAMP(NOW())` goes through it, and
//! in the hour a daylight-saving zone repeats it can be an hour off), and it is the same for every use
//! within one statement. Neither MySQL nor MariaDB 10.11 has `UPDATE … RETURNING`:
//! - a take is its compare-and-set `UPDATE` (a current read: racing takers queue on the row lock and
//!   each re-checks the condition against the winner's commit), then, when it matched, a read of the
//!   new epoch in the same transaction;
//! - a renewal locks the rows it may renew (`SELECT … FOR UPDATE`, by primary key), checks owner,
//!   epoch and expiry there, then extends exactly those: it knows which it renewed. Rows are locked in
//!   primary key order, so batches do not deadlock each other; a transaction that deadlocks anyway
//!   runs again.
//!
//! sqlx connects with `CLIENT_FOUND_ROWS`: an `UPDATE`'s row count is the rows its `WHERE` matched,
//! changed or not, which is what the heartbeat's "is the row still there" needs.

use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::ports::{JournalFence, Lease, LiveNode, StoreError, StoreResult};
use banter_actors::shard::{Epoch, ShardId};
use sqlx::{MySql, QueryBuilder};

use super::MySqlStore;
use super::write::retry_races;
use crate::leases::{
    FENCE_CHUNK, LEASE_CHUNK, LeaseRow, NodeRow, check_advertise, check_shard_count, epoch_from_db,
    fences_from_db, fences_to_db, matching, millis, node_from_db, pairs_to_db, shard_chunks,
    shard_count_conflict, shard_from_db,
};
use crate::{convert_all, map_err};

/// The server's time in milliseconds since the Unix epoch, as an SQL expression.
macro_rules! now {
    () => {
        "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)"
    };
}

/// What one attempt of a take found.
enum Take {
    Taken(i64),
    Held,
    Missing,
}

impl MySqlStore {
    pub(super) async fn register_node_impl(&self, advertise: &str) -> StoreResult<NodeId> {
        check_advertise(advertise)?;
        let done = sqlx::query(concat!(
            "INSERT INTO cluster_nodes (advertise, started_at_ms, heartbeat_at_ms) VALUES (?, ",
            now!(),
            ", ",
            now!(),
            ")"
        ))
        .bind(advertise)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let id = i64::try_from(done.last_insert_id()).map_err(|_| {
            StoreError::Other(format!("node id {} out of range", done.last_insert_id()))
        })?;
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

    async fn shard_rows(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM shard_leases")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }

    pub(super) async fn ensure_shards_impl(&self, count: u32) -> StoreResult<()> {
        check_shard_count(count)?;
        let stored = self.shard_rows().await?;
        if stored == i64::from(count) {
            return Ok(());
        }
        if stored != 0 {
            return Err(shard_count_conflict(stored, count));
        }
        // Nodes starting together all get here: the upsert leaves a row another node inserted as it
        // is, and all chunks commit at once, so the table goes from empty to complete.
        retry_races(|| async {
            let mut tx = self.pool.begin().await?;
            for chunk in shard_chunks(count) {
                let mut query = QueryBuilder::<MySql>::new("INSERT INTO shard_leases (shard) ");
                query.push_values(chunk, |mut row, shard| {
                    row.push_bind(shard);
                });
                query.push(" ON DUPLICATE KEY UPDATE shard = shard");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .await
        .map_err(map_err)?;
        let stored = self.shard_rows().await?;
        if stored != i64::from(count) {
            return Err(shard_count_conflict(stored, count));
        }
        Ok(())
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

    async fn take_once(
        &self,
        shard: i64,
        node: i64,
        ttl: i64,
        expired_for: i64,
    ) -> Result<Take, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The WHERE clause is the compare-and-set: free, or expired for at least `expired_for`.
        let done = sqlx::query(concat!(
            "UPDATE shard_leases SET owner = ?, epoch = epoch + 1, expires_at_ms = ",
            now!(),
            " + ? WHERE shard = ? AND (owner IS NULL OR expires_at_ms <= ",
            now!(),
            " - ?)"
        ))
        .bind(node)
        .bind(ttl)
        .bind(shard)
        .bind(expired_for)
        .execute(&mut *tx)
        .await?;
        // Our own uncommitted write: the row is locked by this transaction, nobody else changes it.
        let epoch: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM shard_leases WHERE shard = ?")
                .bind(shard)
                .fetch_optional(&mut *tx)
                .await?;
        let outcome = match (done.rows_affected(), epoch) {
            (1, Some(epoch)) => Take::Taken(epoch),
            (_, Some(_)) => Take::Held,
            (_, None) => Take::Missing,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    pub(super) async fn take_lease_impl(
        &self,
        shard: ShardId,
        node: NodeId,
        ttl: Duration,
        expired_for: Duration,
    ) -> StoreResult<Option<Epoch>> {
        let (shard, node) = (i64::from(shard.0), i64::from(node.0));
        let (ttl, expired_for) = (millis(ttl), millis(expired_for));
        match retry_races(|| self.take_once(shard, node, ttl, expired_for))
            .await
            .map_err(map_err)?
        {
            Take::Taken(epoch) => epoch_from_db(epoch).map(Some),
            Take::Held => Ok(None),
            Take::Missing => Err(StoreError::NotFound),
        }
    }

    async fn renew_once(
        &self,
        node: i64,
        asked: &[(i64, i64)],
        ttl: i64,
    ) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut renewed = Vec::with_capacity(asked.len());
        for chunk in asked.chunks(LEASE_CHUNK) {
            let mut query =
                QueryBuilder::<MySql>::new("SELECT shard, epoch FROM shard_leases WHERE ");
            push_shards(&mut query, chunk.iter().map(|p| p.0));
            query.push(" AND owner = ").push_bind(node).push(concat!(
                " AND expires_at_ms > ",
                now!(),
                " FOR UPDATE"
            ));
            let held: Vec<(i64, i64)> = query.build_query_as().fetch_all(&mut *tx).await?;
            let keep = matching(&held, chunk);
            if keep.is_empty() {
                continue;
            }
            let mut query = QueryBuilder::<MySql>::new(concat!(
                "UPDATE shard_leases SET expires_at_ms = ",
                now!(),
                " + "
            ));
            query
                .push_bind(ttl)
                .push(" WHERE owner = ")
                .push_bind(node)
                .push(" AND ");
            push_shards(&mut query, keep.iter().copied());
            query.build().execute(&mut *tx).await?;
            renewed.extend(held.into_iter().filter(|(s, _)| keep.contains(s)));
        }
        tx.commit().await?;
        Ok(renewed)
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
        let renewed = retry_races(|| self.renew_once(i64::from(node.0), &asked, millis(ttl)))
            .await
            .map_err(map_err)?;
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
        let node = i64::from(node.0);
        retry_races(|| async {
            let mut tx = self.pool.begin().await?;
            let mut released = 0;
            for chunk in asked.chunks(LEASE_CHUNK) {
                let mut query = QueryBuilder::<MySql>::new(concat!(
                    "UPDATE shard_leases SET owner = NULL, expires_at_ms = ",
                    now!(),
                    " WHERE owner = "
                ));
                query.push_bind(node).push(" AND ");
                // The shard list finds the rows by primary key; the pairs check their epochs.
                push_shards(&mut query, chunk.iter().map(|p| p.0));
                query.push(" AND (shard, epoch) IN (");
                let mut pairs = query.separated(", ");
                for &(shard, epoch) in chunk {
                    pairs
                        .push("(")
                        .push_bind_unseparated(shard)
                        .push_unseparated(", ")
                        .push_bind_unseparated(epoch)
                        .push_unseparated(")");
                }
                query.push(")");
                released += query.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(released)
        })
        .await
        .map_err(map_err)
    }
}

impl MySqlStore {
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

    /// One upsert per chunk; `GREATEST` keeps the higher epoch. `VALUES(col)` rather than MySQL
    /// 8.0.19's row alias, which MariaDB lacks.
    pub(super) async fn raise_journal_fences_impl(
        &self,
        fences: &[JournalFence],
    ) -> StoreResult<()> {
        let rows = fences_to_db(fences)?;
        if rows.is_empty() {
            return Ok(());
        }
        retry_races(|| async {
            for chunk in rows.chunks(FENCE_CHUNK) {
                let mut query =
                    QueryBuilder::<MySql>::new("INSERT INTO journal_fences (part, shard, epoch) ");
                query.push_values(chunk, |mut row, &(part, shard, epoch)| {
                    row.push_bind(part).push_bind(shard).push_bind(epoch);
                });
                query.push(" ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))");
                query.build().execute(&self.pool).await?;
            }
            Ok(())
        })
        .await
        .map_err(map_err)
    }
}

/// Pushes `shard IN (?, …)`; `shards` is not empty.
fn push_shards(query: &mut QueryBuilder<MySql>, shards: impl Iterator<Item = i64>) {
    query.push("shard IN (");
    let mut list = query.separated(", ");
    for shard in shards {
        list.push_bind(shard);
    }
    query.push(")");
}
