//! The [`Uploads`](banter_actors::ports::Uploads) part of both stores: the same SQL (`?`
//! placeholders, no dialect feature) on SQLite and MySQL, so one macro implements it for each.

use banter_actors::model::{RoomId, UserId};
use banter_actors::ports::{StoreError, StoreResult, Upload, UploadFacts, UploadPurpose};
use uuid::Uuid;

/// The columns of an `uploads` row, which [`UploadRow`] reads (a macro: SQL text must be static).
macro_rules! upload_columns {
    () => {
        "id, user_id, room_id, object_key, filename, content_type, declared_size, created_at_ms, \
         size, actual_type, width, height, thumbnail, used_at_ms"
    };
}

pub(crate) use upload_columns;

/// An `uploads` row.
#[derive(sqlx::FromRow)]
pub(crate) struct UploadRow {
    id: Vec<u8>,
    user_id: i64,
    room_id: Option<i64>,
    object_key: String,
    filename: String,
    content_type: String,
    declared_size: i64,
    created_at_ms: i64,
    size: Option<i64>,
    actual_type: Option<String>,
    width: Option<i32>,
    height: Option<i32>,
    thumbnail: Option<Vec<u8>>,
    used_at_ms: Option<i64>,
}

impl TryFrom<UploadRow> for Upload {
    type Error = StoreError;

    fn try_from(r: UploadRow) -> StoreResult<Upload> {
        let bad = |what: &str| StoreError::Other(format!("uploads row with a bad {what}"));
        let count = |n: i64| u64::try_from(n).map_err(|_| bad("size"));
        let facts = match (r.size, r.actual_type) {
            (Some(size), Some(content_type)) => Some(UploadFacts {
                size: count(size)?,
                content_type,
                dimensions: match (r.width, r.height) {
                    (Some(w), Some(h)) => Some((
                        u32::try_from(w).map_err(|_| bad("width"))?,
                        u32::try_from(h).map_err(|_| bad("height"))?,
                    )),
                    _ => None,
                },
                thumbnail: r.thumbnail,
            }),
            _ => None,
        };
        Ok(Upload {
            id: Uuid::from_slice(&r.id).map_err(|_| bad("id"))?,
            user_id: UserId(r.user_id),
            purpose: r.room_id.map_or(UploadPurpose::Avatar, |room| {
                UploadPurpose::Attachment(RoomId(room))
            }),
            key: r.object_key,
            filename: r.filename,
            content_type: r.content_type,
            declared_size: count(r.declared_size)?,
            created_at_ms: r.created_at_ms,
            facts,
            used_at_ms: r.used_at_ms,
        })
    }
}

/// Marks the uploads attached to `messages` kept (a stored message holds them), in the
/// transaction that stores the messages: one statement per attachment, only for messages that
/// have some. `messages` are the rows the transaction inserted, before it applies their events: a
/// message stored before (a batch delivered again) keeps nothing anew, since a delete may have
/// released its uploads since.
macro_rules! keep_attached {
    ($tx:expr, $messages:expr) => {
        for m in $messages {
            for a in &m.attachments {
                sqlx::query(
                    "UPDATE uploads SET kept_at_ms = ? WHERE id = ? AND room_id = ? \
                     AND kept_at_ms IS NULL",
                )
                .bind(m.created_at_ms)
                .bind(a.id.as_bytes().as_slice())
                .bind(m.room_id.0)
                .execute(&mut *$tx)
                .await?;
            }
        }
    };
}

pub(crate) use keep_attached;

/// A size in bytes as the database stores it.
pub(crate) fn db_size(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Other(format!("{n} bytes do not fit a column")))
}

/// Implements `Uploads` for a store with a `pool` field and a `begin_write` method (a transaction
/// that may write); `$lock` ends a `SELECT` that is to lock its rows for the transaction (MySQL's
/// `FOR UPDATE`; SQLite's write transaction locks the database already).
macro_rules! impl_uploads {
    ($store:ty, $lock:literal) => {
        #[async_trait::async_trait]
        impl banter_actors::ports::Uploads for $store {
            async fn insert_upload(
                &self,
                u: &banter_actors::ports::Upload,
            ) -> banter_actors::ports::StoreResult<()> {
                use banter_actors::ports::UploadPurpose;
                let room = match u.purpose {
                    UploadPurpose::Attachment(room) => Some(room.0),
                    UploadPurpose::Avatar => None,
                };
                sqlx::query(
                    "INSERT INTO uploads (id, user_id, room_id, object_key, filename, content_type, \
                     declared_size, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(u.id.as_bytes().as_slice())
                .bind(u.user_id.0)
                .bind(room)
                .bind(&u.key)
                .bind(&u.filename)
                .bind(&u.content_type)
                .bind($crate::uploads::db_size(u.declared_size)?)
                .bind(u.created_at_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn upload(
                &self,
                id: uuid::Uuid,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::ports::Upload>> {
                let row: Option<$crate::uploads::UploadRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::uploads::upload_columns!(),
                    " FROM uploads WHERE id = ?"
                ))
                .bind(id.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn upload_usage(
                &self,
                user: banter_actors::model::UserId,
            ) -> banter_actors::ports::StoreResult<u64> {
                let used: Option<i64> = sqlx::query_scalar(
                    "SELECT CAST(SUM(declared_size) AS SIGNED) FROM uploads WHERE user_id = ?",
                )
                .bind(user.0)
                .fetch_one(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(u64::try_from(used.unwrap_or(0)).unwrap_or(0))
            }

            async fn set_upload_facts(
                &self,
                id: uuid::Uuid,
                facts: &banter_actors::ports::UploadFacts,
            ) -> banter_actors::ports::StoreResult<()> {
                let (width, height) = match facts.dimensions {
                    Some((w, h)) => (i32::try_from(w).ok(), i32::try_from(h).ok()),
                    None => (None, None),
                };
                let done = sqlx::query(
                    "UPDATE uploads SET size = ?, actual_type = ?, width = ?, height = ?, \
                     thumbnail = ? WHERE id = ?",
                )
                .bind($crate::uploads::db_size(facts.size)?)
                .bind(&facts.content_type)
                .bind(width)
                .bind(height)
                .bind(facts.thumbnail.as_deref())
                .bind(id.as_bytes().as_slice())
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                if done.rows_affected() == 0 {
                    // MySQL counts rows changed, not matched: an update to the same values is 0.
                    if self.upload(id).await?.is_none() {
                        return Err(banter_actors::ports::StoreError::NotFound);
                    }
                }
                Ok(())
            }

            async fn mark_upload_used(
                &self,
                id: uuid::Uuid,
                at_ms: i64,
            ) -> banter_actors::ports::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE uploads SET used_at_ms = ? WHERE id = ? AND used_at_ms IS NULL",
                )
                .bind(at_ms)
                .bind(id.as_bytes().as_slice())
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn stale_uploads(
                &self,
                before_ms: i64,
                limit: u32,
            ) -> banter_actors::ports::StoreResult<Vec<banter_actors::ports::Upload>> {
                let rows: Vec<$crate::uploads::UploadRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::uploads::upload_columns!(),
                    " FROM uploads WHERE kept_at_ms IS NULL AND \
                     ((used_at_ms IS NULL AND created_at_ms < ?) OR used_at_ms < ?) \
                     ORDER BY created_at_ms, id LIMIT ?"
                ))
                .bind(before_ms)
                .bind(before_ms)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn set_avatar(
                &self,
                user: banter_actors::model::UserId,
                avatar: Option<uuid::Uuid>,
            ) -> banter_actors::ports::StoreResult<Option<uuid::Uuid>> {
                let mut tx = self.begin_write().await?;
                let former: Option<Option<String>> = sqlx::query_scalar(concat!(
                    "SELECT avatar_ref FROM users WHERE id = ?",
                    $lock
                ))
                .bind(user.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                let Some(former) = former else {
                    return Err(banter_actors::ports::StoreError::NotFound);
                };
                sqlx::query("UPDATE users SET avatar_ref = ? WHERE id = ?")
                    .bind(avatar.map(|a| a.to_string()))
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
                if let Some(avatar) = avatar {
                    sqlx::query("UPDATE uploads SET kept_at_ms = COALESCE(used_at_ms, 0) WHERE id = ?")
                        .bind(avatar.as_bytes().as_slice())
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::map_err)?;
                }
                tx.commit().await.map_err($crate::map_err)?;
                // A reference the avatar flow did not write (older builds let a client set any
                // text) names no upload.
                Ok(former.and_then(|f| uuid::Uuid::parse_str(&f).ok()))
            }

            async fn delete_upload(&self, id: uuid::Uuid) -> banter_actors::ports::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM uploads WHERE id = ?")
                    .bind(id.as_bytes().as_slice())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_stale_upload(
                &self,
                id: uuid::Uuid,
                before_ms: i64,
            ) -> banter_actors::ports::StoreResult<bool> {
                let done = sqlx::query(
                    "DELETE FROM uploads WHERE id = ? AND kept_at_ms IS NULL \
                     AND (used_at_ms IS NULL OR used_at_ms < ?)",
                )
                    .bind(id.as_bytes().as_slice())
                    .bind(before_ms)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::map_err)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_uploads;
