//! The ingest sources as the store keeps them (issue #21): each source (a live external feed) with
//! the user it posts as, the rooms that follow it and their filters, the latest state of every event
//! it sent (for the GeoJSON endpoint, and so that a replayed or repeated event changes nothing), the
//! message each event became in each room, and — on the embedded stack — its raw frames.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::model::{Room, RoomId, Seq, UserId};

/// Identifies an ingest source; assigned by the store.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SourceId(pub i64);

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A source as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Store-assigned id.
    pub id: SourceId,
    /// Its configured name (unique; `emsc`).
    pub name: String,
    /// The user its messages are sent as (a member of every room that follows it).
    pub user_id: UserId,
}

/// A box of longitudes and latitudes, in degrees (west, south, east, north). A box whose west is
/// east of its east crosses the antimeridian.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Western longitude (−180 to 180).
    pub min_lon: f64,
    /// Southern latitude (−90 to 90).
    pub min_lat: f64,
    /// Eastern longitude (−180 to 180).
    pub max_lon: f64,
    /// Northern latitude (−90 to 90), not below `min_lat`.
    pub max_lat: f64,
}

impl BBox {
    /// Whether the point is in the box (edges included).
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let lon_in = if self.min_lon <= self.max_lon {
            (self.min_lon..=self.max_lon).contains(&lon)
        } else {
            lon >= self.min_lon || lon <= self.max_lon
        };
        lon_in && (self.min_lat..=self.max_lat).contains(&lat)
    }
}

/// A room that follows a source, and which of its events it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Follow {
    /// The feed room.
    pub room: RoomId,
    /// The source it follows.
    pub source: SourceId,
    /// Events below this magnitude (or without one) are not shown.
    pub min_magnitude: Option<f64>,
    /// Events outside this box are not shown.
    pub bbox: Option<BBox>,
}

impl Follow {
    /// Whether the room shows `event`.
    pub fn shows(&self, event: &FeedEvent) -> bool {
        let mag_ok = self
            .min_magnitude
            .is_none_or(|min| event.magnitude.is_some_and(|m| m >= min));
        let box_ok = self.bbox.is_none_or(|b| b.contains(event.lon, event.lat));
        mag_ok && box_ok
    }
}

/// The latest state of one event of a source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// Its source.
    pub source: SourceId,
    /// The source's id of it (EMSC's `unid`; at most 64 bytes).
    pub id: String,
    /// When it happened (ms since the Unix epoch).
    pub time_ms: i64,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Depth in km, positive down.
    pub depth_km: Option<f64>,
    /// Magnitude.
    pub magnitude: Option<f64>,
    /// Magnitude type (`ml`, `mb`, `mw`, …).
    pub magnitude_type: Option<String>,
    /// Region name.
    pub region: Option<String>,
    /// When the source withdrew it.
    pub deleted_at_ms: Option<i64>,
    /// When this state was recorded.
    pub updated_at_ms: i64,
}

/// Which events of a source to list, newest (by event time) first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Only events that happened at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only events in this box.
    pub bbox: Option<BBox>,
    /// Only events of at least this magnitude.
    pub min_magnitude: Option<f64>,
    /// At most this many (the store caps it at 1000).
    pub limit: u32,
}

/// Ingest sources, their followers, events and posts (see the module doc).
#[async_trait]
pub trait Feeds: Send + Sync {
    /// Returns the source named `name`, creating it, and its user (`username`, `display_name`, with
    /// a password hash nothing verifies, so no one logs in as it), when new.
    async fn ensure_source(
        &self,
        name: &str,
        username: &str,
        display_name: &str,
        now_ms: i64,
    ) -> StoreResult<Source>;

    /// Returns the source with this id.
    async fn source(&self, id: SourceId) -> StoreResult<Option<Source>>;

    /// Returns the source with this name.
    async fn source_by_name(&self, name: &str) -> StoreResult<Option<Source>>;

    /// Returns every source with its own feed room (the first room no person owns that follows it,
    /// if any), by name.
    async fn sources(&self) -> StoreResult<Vec<(Source, Option<RoomId>)>>;

    /// Creates a feed room named `name` following `source` with `follow`'s filters: `owner` is its
    /// owner (`None`: the source's own room, which no person owns) and the source's user a member.
    /// Returns it; [`super::StoreError::NotFound`] when the source or the owner does not exist.
    async fn create_feed_room(
        &self,
        source: SourceId,
        name: &str,
        owner: Option<UserId>,
        min_magnitude: Option<f64>,
        bbox: Option<BBox>,
        now_ms: i64,
    ) -> StoreResult<Room>;

    /// Returns the feed room named `name` that follows `source` and no person owns (the one its
    /// config names), if any.
    async fn source_room(&self, source: SourceId, name: &str) -> StoreResult<Option<RoomId>>;

    /// Returns the rooms that follow `source`, by room id.
    async fn follows(&self, source: SourceId) -> StoreResult<Vec<Follow>>;

    /// Returns what `room` follows, when it is a feed room.
    async fn follow(&self, room: RoomId) -> StoreResult<Option<Follow>>;

    /// Sets the filters of a feed room; [`super::StoreError::NotFound`] when it follows nothing.
    async fn set_filters(
        &self,
        room: RoomId,
        min_magnitude: Option<f64>,
        bbox: Option<BBox>,
    ) -> StoreResult<()>;

    /// Returns the latest state of an event of `source`.
    async fn feed_event(&self, source: SourceId, id: &str) -> StoreResult<Option<FeedEvent>>;

    /// Stores the latest state of an event (insert or replace).
    async fn put_feed_event(&self, event: &FeedEvent) -> StoreResult<()>;

    /// Lists events of `source` that are not deleted, newest first, as `query` asks.
    async fn feed_events(
        &self,
        source: SourceId,
        query: &EventQuery,
    ) -> StoreResult<Vec<FeedEvent>>;

    /// Returns the seq of the message `event` of the room's source became in `room`.
    async fn feed_post(&self, room: RoomId, event: &str) -> StoreResult<Option<Seq>>;

    /// Records that event `event` became the message `seq` in `room` (replacing any earlier one).
    async fn put_feed_post(&self, room: RoomId, event: &str, seq: Seq) -> StoreResult<()>;

    /// Appends a raw frame of `source` to its log (the embedded stack's raw journal), keeping its
    /// newest `keep` frames.
    async fn append_raw(
        &self,
        source: SourceId,
        frame: &str,
        now_ms: i64,
        keep: u32,
    ) -> StoreResult<()>;

    /// Returns the newest `limit` raw frames of `source`, oldest first.
    async fn raw_frames(&self, source: SourceId, limit: u32) -> StoreResult<Vec<String>>;
}
