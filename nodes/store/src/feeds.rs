//! The [`Feeds`](banter_actors::ports::Feeds) part of both stores (migration 0014): the same SQL
//! (`?` placeholders) on SQLite and MySQL but for the upserts, whose tails [`upsert!`] writes per
//! dialect, so one macro ([`impl_feeds!`]) implements it for each.

use banter_actors::model::{RoomId, UserId};
use banter_actors::ports::{BBox, FeedEvent, Follow, Source, SourceId, StoreError, StoreResult};

/// The password hash of a source's user: not a PHC string, so the gateway's verifier reads it as
/// unreadable and no password ever matches it.
pub(crate) const NO_PASSWORD: &str = "!";

/// Most events one [`Feeds::feed_events`](banter_actors::ports::Feeds::feed_events) returns.
pub(crate) const MAX_EVENTS: u32 = 1000;

/// Events [`Feeds::feed_events`](banter_actors::ports::Feeds::feed_events) returns when its query
/// names no limit (0).
pub(crate) const DEFAULT_EVENTS: u32 = 100;

/// The limit of an event query as the store applies it.
pub(crate) fn event_limit(limit: u32) -> i64 {
    i64::from(if limit == 0 {
        DEFAULT_EVENTS
    } else {
        limit.min(MAX_EVENTS)
    })
}

/// The id the row an `INSERT` made was given (SQLite's rowid, MySQL's `LAST_INSERT_ID()`).
pub(crate) trait InsertedId {
    /// Returns it.
    fn inserted_id(&self) -> StoreResult<i64>;
}

impl InsertedId for sqlx::sqlite::SqliteQueryResult {
    fn inserted_id(&self) -> StoreResult<i64> {
        Ok(self.last_insert_rowid())
    }
}

impl InsertedId for sqlx::mysql::MySqlQueryResult {
    fn inserted_id(&self) -> StoreResult<i64> {
        i64::try_from(self.last_insert_id())
            .map_err(|_| StoreError::Other("inserted id out of range".into()))
    }
}

/// Expands to the tail of an `INSERT` that replaces the columns named after the key when the key
/// (the columns of the conflict, for SQLite) is stored: `sqlite` or `mysql`, the key, the columns.
macro_rules! upsert {
    (sqlite, $key:literal, $first:literal $(, $rest:literal)*) => {
        concat!(
            " ON CONFLICT (", $key, ") DO UPDATE SET ", $first, " = excluded.", $first
            $(, ", ", $rest, " = excluded.", $rest)*
        )
    };
    (mysql, $key:literal, $first:literal $(, $rest:literal)*) => {
        concat!(
            " ON DUPLICATE KEY UPDATE ", $first, " = VALUES(", $first, ")"
            $(, ", ", $rest, " = VALUES(", $rest, ")")*
        )
    };
}

pub(crate) use upsert;

/// The columns of a `feed_events` row, which [`FeedEventRow`] reads.
macro_rules! event_columns {
    () => {
        "source_id, event_id, time_ms, lat, lon, depth_km, magnitude, magnitude_type, region, \
         deleted_at_ms, updated_at_ms"
    };
}

pub(crate) use event_columns;

/// The columns of a `feed_follows` row, which [`FollowRow`] reads.
macro_rules! follow_columns {
    () => {
        "room_id, source_id, min_magnitude, min_lon, min_lat, max_lon, max_lat"
    };
}

pub(crate) use follow_columns;

/// A `feed_sources` row.
#[derive(sqlx::FromRow)]
pub(crate) struct SourceRow {
    id: i64,
    name: String,
    user_id: i64,
}

impl From<SourceRow> for Source {
    fn from(r: SourceRow) -> Self {
        Source {
            id: SourceId(r.id),
            name: r.name,
            user_id: UserId(r.user_id),
        }
    }
}

/// A `feed_follows` row.
#[derive(sqlx::FromRow)]
pub(crate) struct FollowRow {
    room_id: i64,
    source_id: i64,
    min_magnitude: Option<f64>,
    min_lon: Option<f64>,
    min_lat: Option<f64>,
    max_lon: Option<f64>,
    max_lat: Option<f64>,
}

impl TryFrom<FollowRow> for Follow {
    type Error = StoreError;

    fn try_from(r: FollowRow) -> StoreResult<Follow> {
        let bbox = match (r.min_lon, r.min_lat, r.max_lon, r.max_lat) {
            (Some(min_lon), Some(min_lat), Some(max_lon), Some(max_lat)) => Some(BBox {
                min_lon,
                min_lat,
                max_lon,
                max_lat,
            }),
            (None, None, None, None) => None,
            _ => {
                return Err(StoreError::Other(format!(
                    "feed_follows row of room {} with part of a box",
                    r.room_id
                )));
            }
        };
        Ok(Follow {
            room: RoomId(r.room_id),
            source: SourceId(r.source_id),
            min_magnitude: r.min_magnitude,
            bbox,
        })
    }
}

/// The four edges of an optional box as the columns store them (west, south, east, north).
pub(crate) fn bbox_columns(bbox: Option<BBox>) -> [Option<f64>; 4] {
    match bbox {
        Some(b) => [
            Some(b.min_lon),
            Some(b.min_lat),
            Some(b.max_lon),
            Some(b.max_lat),
        ],
        None => [None; 4],
    }
}

/// A `feed_events` row.
#[derive(sqlx::FromRow)]
pub(crate) struct FeedEventRow {
    source_id: i64,
    event_id: String,
    time_ms: i64,
    lat: f64,
    lon: f64,
    depth_km: Option<f64>,
    magnitude: Option<f64>,
    magnitude_type: Option<String>,
    region: Option<String>,
    deleted_at_ms: Option<i64>,
    updated_at_ms: i64,
}

impl From<FeedEventRow> for FeedEvent {
    fn from(r: FeedEventRow) -> Self {
        FeedEvent {
            source: SourceId(r.source_id),
            id: r.event_id,
            time_ms: r.time_ms,
            lat: r.lat,
            lon: r.lon,
            depth_km: r.depth_km,
            magnitude: r.magnitude,
            magnitude_type: r.magnitude_type,
            region: r.region,
            deleted_at_ms: r.deleted_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

/// Implements `Feeds` for a store with a `pool` field and a `begin_write` method (a transaction
/// that may write): `$db` is its sqlx database, `$dialect` (`sqlite` or `mysql`) picks the upserts'
/// syntax.
macro_rules! impl_feeds {
    ($store:ty, $db:ty, $dialect:ident) => {
        #[async_trait::async_trait]
        impl banter_actors::ports::Feeds for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(source = name))]
            async fn ensure_source(
                &self,
                name: &str,
                username: &str,
                display_name: &str,
                now_ms: i64,
            ) -> banter_actors::ports::StoreResult<banter_actors::ports::Source> {
                use banter_actors::ports::StoreError;
                if let Some(source) = self.source_by_name(name).await? {
                    return Ok(source);
                }
                let username = username.to_lowercase();
                match self
                    .create_source(name, &username, display_name, now_ms)
                    .await
                {
                    // A duplicate key: the name (another node made the source meanwhile: its
                    // commit came before our error) or the username (someone else has it).
                    Err(StoreError::Conflict(_)) => {
                        self.source_by_name(name).await?.ok_or_else(|| {
                            StoreError::Conflict(format!("username {username} is taken"))
                        })
                    }
                    other => other,
                }
            }

            async fn source(
                &self,
                id: banter_actors::ports::SourceId,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::ports::Source>> {
                let row: Option<$crate::feeds::SourceRow> =
                    sqlx::query_as("SELECT id, name, user_id FROM feed_sources WHERE id = ?")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }

            async fn source_by_name(
                &self,
                name: &str,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::ports::Source>> {
                let row: Option<$crate::feeds::SourceRow> =
                    sqlx::query_as("SELECT id, name, user_id FROM feed_sources WHERE name = ?")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }

            async fn sources(
                &self,
            ) -> banter_actors::ports::StoreResult<
                Vec<(
                    banter_actors::ports::Source,
                    Option<banter_actors::model::RoomId>,
                )>,
            > {
                let rows: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT s.id, s.name, s.user_id, \
                     (SELECT MIN(f.room_id) FROM feed_follows f \
                       WHERE f.source_id = s.id AND f.owned = 0) \
                     FROM feed_sources s ORDER BY s.name",
                )
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, user, room)| {
                        (
                            banter_actors::ports::Source {
                                id: banter_actors::ports::SourceId(id),
                                name,
                                user_id: banter_actors::model::UserId(user),
                            },
                            room.map(banter_actors::model::RoomId),
                        )
                    })
                    .collect())
            }

            #[tracing::instrument(level = "debug", skip_all, fields(source = %source))]
            async fn create_feed_room(
                &self,
                source: banter_actors::ports::SourceId,
                name: &str,
                owner: Option<banter_actors::model::UserId>,
                min_magnitude: Option<f64>,
                bbox: Option<banter_actors::ports::BBox>,
                now_ms: i64,
            ) -> banter_actors::ports::StoreResult<banter_actors::model::Room> {
                use banter_actors::model::{Role, RoomId, RoomKind, UserId};
                use $crate::feeds::InsertedId as _;
                let mut tx = self.begin_write().await?;
                let source_user: Option<i64> =
                    sqlx::query_scalar("SELECT user_id FROM feed_sources WHERE id = ?")
                        .bind(source.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($crate::map_err)?;
                let source_user =
                    UserId(source_user.ok_or(banter_actors::ports::StoreError::NotFound)?);
                let creator = owner.unwrap_or(source_user);
                // A missing owner fails the foreign key: NotFound.
                let id = sqlx::query(
                    "INSERT INTO rooms (kind, name, created_by, created_at_ms) VALUES (?, ?, ?, ?)",
                )
                .bind(RoomKind::Feed.as_str())
                .bind(name)
                .bind(creator.0)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .inserted_id()?;
                // The rows `insert_member` writes; the room is new, so none is there yet.
                let mut members = vec![(
                    creator,
                    if owner.is_some() {
                        Role::Owner
                    } else {
                        Role::Member
                    },
                )];
                if creator != source_user {
                    members.push((source_user, Role::Member));
                }
                for (user, role) in members {
                    sqlx::query(
                        "INSERT INTO room_members (room_id, user_id, role, joined_at_ms) \
                         VALUES (?, ?, ?, ?)",
                    )
                    .bind(id)
                    .bind(user.0)
                    .bind(role.as_str())
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::map_err)?;
                }
                let [min_lon, min_lat, max_lon, max_lat] = $crate::feeds::bbox_columns(bbox);
                sqlx::query(
                    "INSERT INTO feed_follows (room_id, source_id, min_magnitude, min_lon, \
                     min_lat, max_lon, max_lat, owned) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(source.0)
                .bind(min_magnitude)
                .bind(min_lon)
                .bind(min_lat)
                .bind(max_lon)
                .bind(max_lat)
                .bind(owner.is_some())
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                tx.commit().await.map_err($crate::map_err)?;
                Ok(banter_actors::model::Room {
                    id: RoomId(id),
                    kind: RoomKind::Feed,
                    name: name.to_owned(),
                    created_by: creator,
                    created_at_ms: now_ms,
                })
            }

            async fn source_room(
                &self,
                source: banter_actors::ports::SourceId,
                name: &str,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::model::RoomId>> {
                // The names are compared here, byte for byte (MySQL's column folds case); a source
                // has few rooms no person owns.
                let rooms: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT r.id, r.name FROM feed_follows f JOIN rooms r ON r.id = f.room_id \
                     WHERE f.source_id = ? AND f.owned = 0 ORDER BY r.id",
                )
                .bind(source.0)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(rooms
                    .into_iter()
                    .find(|(_, n)| n == name)
                    .map(|(id, _)| banter_actors::model::RoomId(id)))
            }

            async fn follows(
                &self,
                source: banter_actors::ports::SourceId,
            ) -> banter_actors::ports::StoreResult<Vec<banter_actors::ports::Follow>> {
                let rows: Vec<$crate::feeds::FollowRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::feeds::follow_columns!(),
                    " FROM feed_follows WHERE source_id = ? ORDER BY room_id"
                ))
                .bind(source.0)
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn follow(
                &self,
                room: banter_actors::model::RoomId,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::ports::Follow>> {
                let row: Option<$crate::feeds::FollowRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::feeds::follow_columns!(),
                    " FROM feed_follows WHERE room_id = ?"
                ))
                .bind(room.0)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::map_err)?;
                row.map(TryInto::try_into).transpose()
            }

            async fn set_filters(
                &self,
                room: banter_actors::model::RoomId,
                min_magnitude: Option<f64>,
                bbox: Option<banter_actors::ports::BBox>,
            ) -> banter_actors::ports::StoreResult<()> {
                let [min_lon, min_lat, max_lon, max_lat] = $crate::feeds::bbox_columns(bbox);
                let done = sqlx::query(
                    "UPDATE feed_follows SET min_magnitude = ?, min_lon = ?, min_lat = ?, \
                     max_lon = ?, max_lat = ? WHERE room_id = ?",
                )
                .bind(min_magnitude)
                .bind(min_lon)
                .bind(min_lat)
                .bind(max_lon)
                .bind(max_lat)
                .bind(room.0)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                // MySQL may count rows changed, not matched: setting the same filters is 0.
                if done.rows_affected() == 0 && self.follow(room).await?.is_none() {
                    return Err(banter_actors::ports::StoreError::NotFound);
                }
                Ok(())
            }

            async fn feed_event(
                &self,
                source: banter_actors::ports::SourceId,
                id: &str,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::ports::FeedEvent>> {
                let row: Option<$crate::feeds::FeedEventRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::feeds::event_columns!(),
                    " FROM feed_events WHERE source_id = ? AND event_id = ?"
                ))
                .bind(source.0)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(row.map(Into::into))
            }

            async fn put_feed_event(
                &self,
                e: &banter_actors::ports::FeedEvent,
            ) -> banter_actors::ports::StoreResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO feed_events (",
                    $crate::feeds::event_columns!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    $crate::feeds::upsert!(
                        $dialect,
                        "source_id, event_id",
                        "time_ms",
                        "lat",
                        "lon",
                        "depth_km",
                        "magnitude",
                        "magnitude_type",
                        "region",
                        "deleted_at_ms",
                        "updated_at_ms"
                    )
                ))
                .bind(e.source.0)
                .bind(&e.id)
                .bind(e.time_ms)
                .bind(e.lat)
                .bind(e.lon)
                .bind(e.depth_km)
                .bind(e.magnitude)
                .bind(e.magnitude_type.as_deref())
                .bind(e.region.as_deref())
                .bind(e.deleted_at_ms)
                .bind(e.updated_at_ms)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn feed_events(
                &self,
                source: banter_actors::ports::SourceId,
                query: &banter_actors::ports::EventQuery,
            ) -> banter_actors::ports::StoreResult<Vec<banter_actors::ports::FeedEvent>> {
                let mut q = sqlx::QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    $crate::feeds::event_columns!(),
                    " FROM feed_events WHERE source_id = "
                ));
                q.push_bind(source.0).push(" AND deleted_at_ms IS NULL");
                if let Some(since) = query.since_ms {
                    q.push(" AND time_ms >= ").push_bind(since);
                }
                if let Some(min) = query.min_magnitude {
                    // NULL compares to nothing: an event without a magnitude is left out.
                    q.push(" AND magnitude >= ").push_bind(min);
                }
                if let Some(b) = query.bbox {
                    q.push(" AND lat >= ").push_bind(b.min_lat);
                    q.push(" AND lat <= ").push_bind(b.max_lat);
                    if b.min_lon <= b.max_lon {
                        q.push(" AND lon >= ").push_bind(b.min_lon);
                        q.push(" AND lon <= ").push_bind(b.max_lon);
                    } else {
                        // Across the antimeridian.
                        q.push(" AND (lon >= ").push_bind(b.min_lon);
                        q.push(" OR lon <= ").push_bind(b.max_lon).push(")");
                    }
                }
                q.push(" ORDER BY time_ms DESC, event_id LIMIT ")
                    .push_bind($crate::feeds::event_limit(query.limit));
                let rows: Vec<$crate::feeds::FeedEventRow> = q
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::map_err)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn feed_post(
                &self,
                room: banter_actors::model::RoomId,
                event: &str,
            ) -> banter_actors::ports::StoreResult<Option<banter_actors::model::Seq>> {
                let seq: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM feed_posts WHERE room_id = ? AND event_id = ?",
                )
                .bind(room.0)
                .bind(event)
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::map_err)?;
                seq.map($crate::seq_from_db).transpose()
            }

            async fn put_feed_post(
                &self,
                room: banter_actors::model::RoomId,
                event: &str,
                seq: banter_actors::model::Seq,
            ) -> banter_actors::ports::StoreResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO feed_posts (room_id, event_id, seq) VALUES (?, ?, ?)",
                    $crate::feeds::upsert!($dialect, "room_id, event_id", "seq")
                ))
                .bind(room.0)
                .bind(event)
                .bind($crate::seq_to_db(seq)?)
                .execute(&self.pool)
                .await
                .map_err($crate::map_err)?;
                Ok(())
            }

            async fn append_raw(
                &self,
                source: banter_actors::ports::SourceId,
                frame: &str,
                now_ms: i64,
                keep: u32,
            ) -> banter_actors::ports::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO feed_raw (source_id, frame, received_at_ms) VALUES (?, ?, ?)",
                )
                .bind(source.0)
                .bind(frame)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                // The newest frame beyond the `keep` newest: it and every older one go. (Read
                // first: MySQL cannot delete from a table its subquery reads.)
                let cutoff: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM feed_raw WHERE source_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                )
                .bind(source.0)
                .bind(i64::from(keep))
                .fetch_optional(&mut *tx)
                .await
                .map_err($crate::map_err)?;
                if let Some(cutoff) = cutoff {
                    sqlx::query("DELETE FROM feed_raw WHERE source_id = ? AND id <= ?")
                        .bind(source.0)
                        .bind(cutoff)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::map_err)?;
                }
                tx.commit().await.map_err($crate::map_err)?;
                Ok(())
            }

            async fn raw_frames(
                &self,
                source: banter_actors::ports::SourceId,
                limit: u32,
            ) -> banter_actors::ports::StoreResult<Vec<String>> {
                let mut frames: Vec<String> = sqlx::query_scalar(
                    "SELECT frame FROM feed_raw WHERE source_id = ? ORDER BY id DESC LIMIT ?",
                )
                .bind(source.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($crate::map_err)?;
                frames.reverse();
                Ok(frames)
            }
        }

        impl $store {
            /// Creates a source and its user in one transaction; a duplicate name or username is
            /// a [`StoreError::Conflict`](banter_actors::ports::StoreError::Conflict).
            async fn create_source(
                &self,
                name: &str,
                username: &str,
                display_name: &str,
                now_ms: i64,
            ) -> banter_actors::ports::StoreResult<banter_actors::ports::Source> {
                use $crate::feeds::InsertedId as _;
                let mut tx = self.begin_write().await?;
                let user_id = sqlx::query(
                    "INSERT INTO users (username, display_name, password_hash, created_at_ms) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(username)
                .bind(display_name)
                .bind($crate::feeds::NO_PASSWORD)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .inserted_id()?;
                let id = sqlx::query(
                    "INSERT INTO feed_sources (name, user_id, created_at_ms) VALUES (?, ?, ?)",
                )
                .bind(name)
                .bind(user_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err($crate::map_err)?
                .inserted_id()?;
                tx.commit().await.map_err($crate::map_err)?;
                Ok(banter_actors::ports::Source {
                    id: banter_actors::ports::SourceId(id),
                    name: name.to_owned(),
                    user_id: banter_actors::model::UserId(user_id),
                })
            }
        }
    };
}

pub(crate) use impl_feeds;
