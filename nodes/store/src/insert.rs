//! The values of the multi-row message insert both stores run (`sql::INSERT_MESSAGES`, in chunks
//! from `insert_chunks`): one macro pushes them in the statement's column order, so that the two
//! cannot drift apart.

use banter_actors::model::{Attachment, ChatMessage, MessageKind};

use crate::seq_to_db;

/// A message to insert, with its seq and its target's seq as the database stores them.
pub(crate) type InsertRow<'a> = (&'a ChatMessage, i64, Option<i64>);

/// The `attachments` column of a message: its JSON array, `NULL` when it has none.
pub(crate) fn attachments_to_db(m: &ChatMessage) -> Option<String> {
    (!m.attachments.is_empty()).then(|| Attachment::json(&m.attachments))
}

/// The `body` column of a message: an edit row keeps none (its new body goes into its target, so
/// that a delete of the target erases the text from one row only).
pub(crate) fn body_to_db(m: &ChatMessage) -> String {
    match m.kind {
        MessageKind::Edit(_) => String::new(),
        MessageKind::Post | MessageKind::Delete(_) => m.body.clone(),
    }
}

/// Returns the rows of a chunk, as [`push_message_values!`] binds them; a seq beyond the database's
/// range is an encoding error.
pub(crate) fn message_rows(chunk: &[ChatMessage]) -> Result<Vec<InsertRow<'_>>, sqlx::Error> {
    let encode = |e: banter_actors::ports::StoreError| sqlx::Error::Encode(e.to_string().into());
    chunk
        .iter()
        .map(|m| {
            let target = m.kind.target().map(seq_to_db).transpose().map_err(encode)?;
            Ok((m, seq_to_db(m.seq).map_err(encode)?, target))
        })
        .collect()
}

/// Pushes the `VALUES` of `$rows` (an iterator of [`InsertRow`], from [`message_rows`]) onto the
/// `QueryBuilder` `$query`, started with `sql::INSERT_MESSAGES`, in its column order.
macro_rules! push_message_values {
    ($query:expr, $rows:expr) => {
        $query.push_values(
            $rows,
            |mut row, (m, seq, target): $crate::insert::InsertRow<'_>| {
                row.push_bind(m.room_id.0)
                    .push_bind(seq)
                    .push_bind(m.message_id.as_bytes().to_vec())
                    .push_bind(m.sender_id.0)
                    .push_bind($crate::insert::body_to_db(m))
                    .push_bind(m.created_at_ms)
                    .push_bind(m.nonce.clone())
                    .push_bind($crate::insert::attachments_to_db(m))
                    .push_bind(m.kind.code())
                    .push_bind(target)
                    .push_bind(m.content_type.clone());
            },
        )
    };
}

pub(crate) use push_message_values;
