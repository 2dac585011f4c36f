//! The [`Feeds`] part of [`FakeStore`]: sources, follows, events, posts and raw frames in maps,
//! with the stores' semantics (see the trait's docs and the store's contract suite).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::{FakeStore, lock};
use crate::model::{Role, Room, RoomId, RoomKind, Seq, User, UserId};
use crate::ports::{
    BBox, EventQuery, FeedEvent, Feeds, Follow, Source, SourceId, StoreError, StoreResult,
};

/// What the fake keeps of the feeds.
#[derive(Default)]
pub(super) struct FeedData {
    sources: BTreeMap<SourceId, Source>,
    /// Each feed room's follow, and whether a person owns the room.
    follows: BTreeMap<RoomId, (Follow, bool)>,
    events: BTreeMap<(SourceId, String), FeedEvent>,
    posts: HashMap<(RoomId, String), Seq>,
    /// Raw frames of each source, oldest first.
    raw: HashMap<SourceId, Vec<String>>,
}

#[async_trait]
impl Feeds for FakeStore {
    async fn ensure_source(
        &self,
        name: &str,
        username: &str,
        display_name: &str,
        now_ms: i64,
    ) -> StoreResult<Source> {
        let mut d = lock(&self.data);
        if let Some(s) = d.feeds.sources.values().find(|s| s.name == name) {
            return Ok(s.clone());
        }
        let username = username.to_lowercase();
        if d.users
            .values()
            .any(|u| u.username.to_lowercase() == username)
        {
            return Err(StoreError::Conflict(format!(
                "username {username} is taken"
            )));
        }
        let user_id = UserId(d.users.keys().map(|u| u.0).max().unwrap_or(0) + 1);
        d.users.insert(
            user_id,
            User {
                id: user_id,
                username,
                display_name: display_name.to_owned(),
                password_hash: "!".into(),
                avatar_ref: None,
                created_at_ms: now_ms,
            },
        );
        let id = SourceId(d.feeds.sources.keys().map(|s| s.0).max().unwrap_or(0) + 1);
        let source = Source {
            id,
            name: name.to_owned(),
            user_id,
        };
        d.feeds.sources.insert(id, source.clone());
        Ok(source)
    }

    async fn source(&self, id: SourceId) -> StoreResult<Option<Source>> {
        Ok(lock(&self.data).feeds.sources.get(&id).cloned())
    }

    async fn source_by_name(&self, name: &str) -> StoreResult<Option<Source>> {
        let d = lock(&self.data);
        Ok(d.feeds.sources.values().find(|s| s.name == name).cloned())
    }

    async fn sources(&self) -> StoreResult<Vec<(Source, Option<RoomId>)>> {
        let d = lock(&self.data);
        let mut all: Vec<(Source, Option<RoomId>)> = d
            .feeds
            .sources
            .values()
            .map(|s| {
                let room = d
                    .feeds
                    .follows
                    .values()
                    .filter(|(f, owned)| f.source == s.id && !owned)
                    .map(|(f, _)| f.room)
                    .min();
                (s.clone(), room)
            })
            .collect();
        all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(all)
    }

    async fn create_feed_room(
        &self,
        source: SourceId,
        name: &str,
        owner: Option<UserId>,
        min_magnitude: Option<f64>,
        bbox: Option<BBox>,
        now_ms: i64,
    ) -> StoreResult<Room> {
        let mut d = lock(&self.data);
        let source_user = d
            .feeds
            .sources
            .get(&source)
            .ok_or(StoreError::NotFound)?
            .user_id;
        if owner.is_some_and(|o| !d.users.contains_key(&o)) {
            return Err(StoreError::NotFound);
        }
        let id = RoomId(d.rooms.keys().map(|r| r.0).max().unwrap_or(0) + 1);
        let room = Room {
            id,
            kind: RoomKind::Feed,
            name: name.to_owned(),
            created_by: owner.unwrap_or(source_user),
            created_at_ms: now_ms,
        };
        d.rooms.insert(id, room.clone());
        let members = d.members.entry(id).or_default();
        members.insert(source_user, (Role::Member, 0));
        if let Some(owner) = owner {
            members.insert(owner, (Role::Owner, 0));
        }
        let follow = Follow {
            room: id,
            source,
            min_magnitude,
            bbox,
        };
        d.feeds.follows.insert(id, (follow, owner.is_some()));
        Ok(room)
    }

    async fn source_room(&self, source: SourceId, name: &str) -> StoreResult<Option<RoomId>> {
        let d = lock(&self.data);
        Ok(d.feeds
            .follows
            .values()
            .filter(|(f, owned)| f.source == source && !owned)
            .map(|(f, _)| f.room)
            .find(|room| d.rooms.get(room).is_some_and(|r| r.name == name)))
    }

    async fn follows(&self, source: SourceId) -> StoreResult<Vec<Follow>> {
        let d = lock(&self.data);
        Ok(d.feeds
            .follows
            .values()
            .filter(|(f, _)| f.source == source)
            .map(|(f, _)| f.clone())
            .collect())
    }

    async fn follow(&self, room: RoomId) -> StoreResult<Option<Follow>> {
        let d = lock(&self.data);
        Ok(d.feeds.follows.get(&room).map(|(f, _)| f.clone()))
    }

    async fn set_filters(
        &self,
        room: RoomId,
        min_magnitude: Option<f64>,
        bbox: Option<BBox>,
    ) -> StoreResult<()> {
        let mut d = lock(&self.data);
        let (follow, _) = d.feeds.follows.get_mut(&room).ok_or(StoreError::NotFound)?;
        follow.min_magnitude = min_magnitude;
        follow.bbox = bbox;
        Ok(())
    }

    async fn feed_event(&self, source: SourceId, id: &str) -> StoreResult<Option<FeedEvent>> {
        let d = lock(&self.data);
        Ok(d.feeds.events.get(&(source, id.to_owned())).cloned())
    }

    async fn put_feed_event(&self, event: &FeedEvent) -> StoreResult<()> {
        let mut d = lock(&self.data);
        if !d.feeds.sources.contains_key(&event.source) {
            return Err(StoreError::NotFound);
        }
        d.feeds
            .events
            .insert((event.source, event.id.clone()), event.clone());
        Ok(())
    }

    async fn feed_events(
        &self,
        source: SourceId,
        query: &EventQuery,
    ) -> StoreResult<Vec<FeedEvent>> {
        let d = lock(&self.data);
        let shown = Follow {
            room: RoomId(0),
            source,
            min_magnitude: query.min_magnitude,
            bbox: query.bbox,
        };
        let mut events: Vec<FeedEvent> = d
            .feeds
            .events
            .values()
            .filter(|e| e.source == source && e.deleted_at_ms.is_none())
            .filter(|e| query.since_ms.is_none_or(|since| e.time_ms >= since))
            .filter(|e| shown.shows(e))
            .cloned()
            .collect();
        events.sort_by(|a, b| b.time_ms.cmp(&a.time_ms).then_with(|| a.id.cmp(&b.id)));
        let limit = if query.limit == 0 {
            100
        } else {
            query.limit.min(1000)
        };
        events.truncate(limit as usize);
        Ok(events)
    }

    async fn feed_post(&self, room: RoomId, event: &str) -> StoreResult<Option<Seq>> {
        let d = lock(&self.data);
        Ok(d.feeds.posts.get(&(room, event.to_owned())).copied())
    }

    async fn put_feed_post(&self, room: RoomId, event: &str, seq: Seq) -> StoreResult<()> {
        let mut d = lock(&self.data);
        if !d.rooms.contains_key(&room) {
            return Err(StoreError::NotFound);
        }
        d.feeds.posts.insert((room, event.to_owned()), seq);
        Ok(())
    }

    async fn append_raw(
        &self,
        source: SourceId,
        frame: &str,
        _now_ms: i64,
        keep: u32,
    ) -> StoreResult<()> {
        let mut d = lock(&self.data);
        if !d.feeds.sources.contains_key(&source) {
            return Err(StoreError::NotFound);
        }
        let frames = d.feeds.raw.entry(source).or_default();
        frames.push(frame.to_owned());
        let excess = frames.len().saturating_sub(keep as usize);
        frames.drain(..excess);
        Ok(())
    }

    async fn raw_frames(&self, source: SourceId, limit: u32) -> StoreResult<Vec<String>> {
        let d = lock(&self.data);
        let frames = d.feeds.raw.get(&source).map_or(&[][..], Vec::as_slice);
        Ok(frames[frames.len().saturating_sub(limit as usize)..].to_vec())
    }
}

/// The fake keeps the stores' contract where the actors rely on it.
mod tests {
    use super::*;
    use crate::testing::NOW_MS;

    fn quake(id: &str, time_ms: i64, magnitude: Option<f64>, lon: f64) -> FeedEvent {
        FeedEvent {
            source: SourceId(1),
            id: id.to_owned(),
            time_ms,
            lat: 0.0,
            lon,
            depth_km: None,
            magnitude,
            magnitude_type: None,
            region: None,
            deleted_at_ms: None,
            updated_at_ms: NOW_MS,
        }
    }

    #[tokio::test]
    async fn feeds_of_the_fake_keep_the_contract() {
        let store = FakeStore::new();
        store.add_user(UserId(1), "alice");
        let source = store
            .ensure_source("emsc", "Quakes", "Quakes", NOW_MS)
            .await
            .unwrap();
        assert_eq!(
            store.ensure_source("emsc", "quakes", "Q", 1).await.unwrap(),
            source
        );
        assert!(matches!(
            store.ensure_source("other", "alice", "A", 1).await,
            Err(StoreError::Conflict(_))
        ));
        let own = store
            .create_feed_room(source.id, "quakes", None, None, None, 1)
            .await
            .unwrap();
        let mine = store
            .create_feed_room(source.id, "quakes", Some(UserId(1)), Some(4.0), None, 1)
            .await
            .unwrap();
        assert_eq!(
            store.source_room(source.id, "quakes").await.unwrap(),
            Some(own.id)
        );
        assert_eq!(store.follows(source.id).await.unwrap().len(), 2);
        assert_eq!(
            store.follow(mine.id).await.unwrap().unwrap().min_magnitude,
            Some(4.0)
        );

        for e in [
            quake("a", 3, Some(5.0), 179.0),
            quake("b", 2, None, 0.0),
            quake("c", 3, Some(2.0), -179.0),
        ] {
            store.put_feed_event(&e).await.unwrap();
        }
        let ids = |events: Vec<FeedEvent>| events.into_iter().map(|e| e.id).collect::<Vec<_>>();
        let all = EventQuery::default();
        assert_eq!(
            ids(store.feed_events(source.id, &all).await.unwrap()),
            ["a", "c", "b"]
        );
        let big = EventQuery {
            min_magnitude: Some(1.0),
            ..EventQuery::default()
        };
        assert_eq!(
            ids(store.feed_events(source.id, &big).await.unwrap()),
            ["a", "c"]
        );
        let pacific = EventQuery {
            bbox: Some(BBox {
                min_lon: 170.0,
                min_lat: -10.0,
                max_lon: -170.0,
                max_lat: 10.0,
            }),
            limit: 1,
            ..EventQuery::default()
        };
        assert_eq!(
            ids(store.feed_events(source.id, &pacific).await.unwrap()),
            ["a"]
        );

        for i in 0..5 {
            store
                .append_raw(source.id, &i.to_string(), 1, 3)
                .await
                .unwrap();
        }
        assert_eq!(
            store.raw_frames(source.id, 10).await.unwrap(),
            ["2", "3", "4"]
        );
        assert_eq!(store.raw_frames(source.id, 2).await.unwrap(), ["3", "4"]);
    }
}
