//! Edits and deletes: room events, stored as rows of `messages` with a seq of their own, that change
//! an earlier message of their room. The transaction that stores them applies them to their targets,
//! the same way on both stores (the SQL is in `sql.rs`), and only when it inserted them: a batch
//! delivered again after a crash must not apply an old edit over a newer one.

use banter_actors::model::{Attachment, ChatMessage};
use uuid::Uuid;

use crate::seq_to_db;

/// Returns the events among freshly inserted messages in each room's seq order, with their targets'
/// seqs as the database stores them.
pub(crate) fn in_order<'a>(
    fresh: &[&'a ChatMessage],
) -> Result<Vec<(&'a ChatMessage, i64)>, sqlx::Error> {
    let mut events = Vec::new();
    for m in fresh {
        if let Some(target) = m.kind.target() {
            let target =
                seq_to_db(target).map_err(|e| sqlx::Error::Encode(e.to_string().into()))?;
            events.push((*m, target));
        }
    }
    events.sort_by_key(|(m, _)| (m.room_id, m.seq));
    Ok(events)
}

/// Returns the upload ids of a deleted message's `attachments` column. A column that does not parse
/// is logged and releases nothing: the delete still erases the message (its uploads then stay until
/// an operator removes them).
pub(crate) fn attached_uploads(event: &ChatMessage, json: &str) -> Vec<Uuid> {
    match Attachment::from_json(json) {
        Ok(attachments) => attachments.into_iter().map(|a| a.id).collect(),
        Err(e) => {
            tracing::warn!(
                room_id = %event.room_id,
                target = ?event.kind.target(),
                error = %e,
                "a deleted message's attachments do not parse; its uploads are not released"
            );
            Vec::new()
        }
    }
}

/// Applies the events among `$fresh` (a `&[&ChatMessage]`: the rows this transaction inserted, after
/// it inserted them all and kept their attachments) in seq order, on `$tx`, failing with an
/// `sqlx::Error` (`?`). An edit gives its target (a message not deleted) the edit's body and its
/// edited mark; a delete erases its target's body and attachments, sets its deleted mark, and
/// releases the uploads it held so that the housekeeping sweeper deletes their objects.
macro_rules! apply_events {
    ($tx:expr, $fresh:expr) => {
        for (event, target) in $crate::events::in_order($fresh)? {
            match event.kind {
                banter_actors::model::MessageKind::Edit(_) => {
                    sqlx::query($crate::sql::APPLY_EDIT)
                        .bind(&event.body)
                        .bind(event.created_at_ms)
                        .bind(event.room_id.0)
                        .bind(target)
                        .execute(&mut *$tx)
                        .await?;
                }
                banter_actors::model::MessageKind::Delete(_) => {
                    let attachments: Option<Option<String>> =
                        sqlx::query_scalar($crate::sql::DELETABLE_ATTACHMENTS)
                            .bind(event.room_id.0)
                            .bind(target)
                            .fetch_optional(&mut *$tx)
                            .await?;
                    let deleted = sqlx::query($crate::sql::APPLY_DELETE)
                        .bind(event.created_at_ms)
                        .bind(event.room_id.0)
                        .bind(target)
                        .execute(&mut *$tx)
                        .await?;
                    if let (1, Some(Some(json))) = (deleted.rows_affected(), attachments) {
                        for id in $crate::events::attached_uploads(event, &json) {
                            sqlx::query($crate::sql::RELEASE_UPLOAD)
                                .bind(id.as_bytes().as_slice())
                                .bind(event.room_id.0)
                                .execute(&mut *$tx)
                                .await?;
                        }
                    }
                }
                banter_actors::model::MessageKind::Post => {}
            }
        }
    };
}

pub(crate) use apply_events;

#[cfg(test)]
mod tests {
    use banter_actors::model::{ChatMessage, MessageKind, RoomId};

    use super::in_order;

    #[test]
    fn events_are_applied_in_each_rooms_seq_order() {
        let item = |room, seq, kind| ChatMessage {
            room_id: RoomId(room),
            seq,
            kind,
            ..Default::default()
        };
        let batch = [
            item(2, 9, MessageKind::Delete(1)),
            item(1, 5, MessageKind::Edit(2)),
            item(1, 3, MessageKind::Post),
            item(1, 4, MessageKind::Edit(2)),
        ];
        let fresh: Vec<&ChatMessage> = batch.iter().collect();
        let order: Vec<_> = in_order(&fresh)
            .expect("targets fit")
            .into_iter()
            .map(|(m, target)| (m.room_id.0, m.seq, target))
            .collect();
        assert_eq!(order, [(1, 4, 2), (1, 5, 2), (2, 9, 1)]);
        let far = [item(1, 2, MessageKind::Edit(u64::MAX))];
        assert!(in_order(&far.iter().collect::<Vec<_>>()).is_err());
    }
}
