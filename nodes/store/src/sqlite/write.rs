//! The message write of [`SqliteStore`]: the multi-row insert of a batch, which skips the rows
//! already stored, then what the rows it inserted do (keep their uploads, apply their events).

use std::collections::HashSet;

use banter_actors::model::ChatMessage;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::insert::message_rows;
use crate::{insert_chunks, sql};

impl SqliteStore {
    /// [`Store::insert_messages`](banter_actors::ports::Store::insert_messages) in one write
    /// transaction: each chunk is one `INSERT … ON CONFLICT (room_id, seq) DO NOTHING RETURNING`,
    /// whose returned keys tell the rows it inserted (fresh) from those stored before (a batch
    /// delivered again). Only the fresh rows keep their uploads and apply their events, after the
    /// whole batch is inserted. Returns how many rows were inserted.
    pub(super) async fn insert_message_rows(
        &self,
        messages: &[ChatMessage],
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut fresh: Vec<&ChatMessage> = Vec::new();
        for chunk in insert_chunks(messages) {
            let rows = message_rows(chunk)?;
            let keys: Vec<(i64, i64)> =
                rows.iter().map(|(m, seq, _)| (m.room_id.0, *seq)).collect();
            let mut query = QueryBuilder::<Sqlite>::new(sql::INSERT_MESSAGES);
            crate::insert::push_message_values!(query, rows);
            // Only a stored (room_id, seq) is skipped: a message id stored under another seq is an
            // error.
            query.push(" ON CONFLICT (room_id, seq) DO NOTHING RETURNING room_id, seq");
            let inserted: Vec<(i64, i64)> = query.build_query_as().fetch_all(&mut *tx).await?;
            let mut inserted: HashSet<(i64, i64)> = inserted.into_iter().collect();
            for (m, key) in chunk.iter().zip(&keys) {
                // Removing the key counts a repeat of it within the batch (not inserted) out.
                if inserted.remove(key) {
                    fresh.push(m);
                }
            }
        }
        crate::uploads::keep_attached!(tx, fresh.iter().copied());
        crate::events::apply_events!(tx, &fresh);
        tx.commit().await?;
        Ok(fresh.len() as u64)
    }
}
