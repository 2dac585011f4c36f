//! Writes of [`MySqlStore`] that race other writers: the multi-row insert of messages, and running a
//! transaction again when it lost a race to a concurrent one.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use banter_actors::model::ChatMessage;
use sqlx::MySql;
use sqlx::QueryBuilder;
use sqlx::mysql::MySqlDatabaseError;

use super::MySqlStore;
use crate::insert::message_rows;
use crate::{insert_chunks, sql};

/// How often a transaction that lost a race runs at most.
const ATTEMPTS: u32 = 4;

/// MySQL's `ER_DUP_ENTRY`.
pub(super) const ER_DUP_ENTRY: u16 = 1062;

/// MySQL's `ER_LOCK_DEADLOCK`.
const ER_LOCK_DEADLOCK: u16 = 1213;

impl MySqlStore {
    /// One attempt of [`Store::insert_messages`](banter_actors::ports::Store::insert_messages), in one transaction: reads which `(room_id, seq)` of each
    /// chunk are stored, then inserts the others with a plain multi-row `INSERT`, whose row count is
    /// exact. A duplicate primary key then means a concurrent writer got there first: the attempt fails
    /// and is run again. The rows inserted then keep their uploads and apply their events (edits and
    /// deletes, in seq order, after the whole batch is inserted).
    pub(super) async fn insert_messages_once(
        &self,
        messages: &[ChatMessage],
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        // The rows this attempt inserts: only they keep their uploads and apply their events (a
        // batch delivered again must not apply an old edit over a newer one).
        let mut all_fresh: Vec<&ChatMessage> = Vec::new();
        for chunk in insert_chunks(messages) {
            let rows = message_rows(chunk)?;
            let keys: Vec<(i64, i64)> =
                rows.iter().map(|(m, seq, _)| (m.room_id.0, *seq)).collect();
            let mut stored = stored_keys(&mut tx, &keys).await?;
            let mut fresh = Vec::with_capacity(chunk.len());
            for (row, key) in rows.into_iter().zip(&keys) {
                // Inserting marks the key as taken, which also skips a repeat within the batch.
                if stored.insert(*key) {
                    fresh.push(row);
                }
            }
            if fresh.is_empty() {
                continue;
            }
            all_fresh.extend(fresh.iter().map(|(m, ..)| *m));
            let mut query = QueryBuilder::<MySql>::new(sql::INSERT_MESSAGES);
            crate::insert::push_message_values!(query, fresh);
            inserted += query.build().execute(&mut *tx).await?.rows_affected();
        }
        crate::uploads::keep_attached!(tx, all_fresh.iter().copied());
        crate::events::apply_events!(tx, &all_fresh);
        tx.commit().await?;
        Ok(inserted)
    }
}

/// Returns which of the keys are stored.
async fn stored_keys(
    conn: &mut sqlx::MySqlConnection,
    keys: &[(i64, i64)],
) -> Result<HashSet<(i64, i64)>, sqlx::Error> {
    // Group the seqs by room, so the lookup is one primary key seek per key.
    let mut by_room: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for &(room, seq) in keys {
        by_room.entry(room).or_default().push(seq);
    }
    let mut query = QueryBuilder::<MySql>::new("SELECT room_id, seq FROM messages WHERE ");
    for (i, (room, seqs)) in by_room.into_iter().enumerate() {
        if i > 0 {
            query.push(" OR ");
        }
        query
            .push("(room_id = ")
            .push_bind(room)
            .push(" AND seq IN (");
        let mut list = query.separated(", ");
        for seq in seqs {
            list.push_bind(seq);
        }
        query.push("))");
    }
    let rows: Vec<(i64, i64)> = query.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().collect())
}

/// Returns MySQL's error number of a database error.
pub(super) fn mysql_error_number(err: &sqlx::Error) -> Option<u16> {
    err.as_database_error()
        .and_then(|db| db.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// Tells whether a transaction failed only because a concurrent one got in its way.
fn lost_race(err: &sqlx::Error) -> bool {
    match mysql_error_number(err) {
        Some(ER_LOCK_DEADLOCK) => true,
        // A duplicate primary key, not a duplicate message id (which is a real conflict).
        Some(ER_DUP_ENTRY) => err
            .as_database_error()
            .is_some_and(|db| db.message().ends_with("PRIMARY'")),
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for a reason other than a lost race, or ran [`ATTEMPTS`] times.
pub(super) async fn retry_races<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if tries < ATTEMPTS && lost_race(&e) => {
                tracing::debug!(tries, error = %e, "transaction lost a race, running it again");
                tries += 1;
            }
            other => return other,
        }
    }
}
