//! Contract cases: ingest sources (their users, feed rooms and filters, events, posts, raw frames).

use std::sync::Arc;

use banter_actors::model::{Role, RoomId, RoomKind, UserId};
use banter_actors::ports::{BBox, EventQuery, FeedEvent, Follow, SourceId, Store, StoreError};

use super::user;

const NOW: i64 = 1_700_000_000_000;

/// A box around Greece.
const GREECE: BBox = BBox {
    min_lon: 19.0,
    min_lat: 34.0,
    max_lon: 30.0,
    max_lat: 42.0,
};

/// A box across the antimeridian, around Fiji and Samoa.
const PACIFIC: BBox = BBox {
    min_lon: 170.0,
    min_lat: -25.0,
    max_lon: -170.0,
    max_lat: -5.0,
};

fn event(source: SourceId, id: &str, time_ms: i64, lon: f64, lat: f64) -> FeedEvent {
    FeedEvent {
        source,
        id: id.to_owned(),
        time_ms,
        lat,
        lon,
        depth_km: Some(10.5),
        magnitude: Some(4.25),
        magnitude_type: Some("ml".into()),
        region: Some("CRETE, GREECE".into()),
        deleted_at_ms: None,
        updated_at_ms: time_ms + 1,
    }
}

/// Makes source `emsc` and its user `quakes`.
async fn emsc(store: &Arc<dyn Store>) -> SourceId {
    store
        .ensure_source("emsc", "quakes", "Earthquakes", NOW)
        .await
        .expect("ensure_source")
        .id
}

pub(crate) async fn ensure_source_makes_one_source_and_user(store: Arc<dyn Store>) {
    let first = store
        .ensure_source("emsc", "Quakes", "Earthquakes", NOW)
        .await
        .unwrap();
    assert_eq!(first.name, "emsc");
    let again = store
        .ensure_source("emsc", "quakes", "Other name", NOW + 5)
        .await
        .unwrap();
    assert_eq!(again, first);
    let user = store.user_by_id(first.user_id).await.unwrap().unwrap();
    assert_eq!(
        (user.username.as_str(), user.display_name.as_str()),
        ("quakes", "Earthquakes")
    );
    assert_eq!(user.created_at_ms, NOW);
    assert!(
        !user.password_hash.is_empty() && !user.password_hash.starts_with('$'),
        "not a PHC string: no password verifies against {:?}",
        user.password_hash
    );
    assert_eq!(store.search_users("", 10).await.unwrap(), vec![user]);
    assert_eq!(store.source(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.source_by_name("emsc").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.source_by_name("EMSC").await.unwrap(), None);
    assert_eq!(store.source(SourceId(i64::MAX)).await.unwrap(), None);
    let usgs = store
        .ensure_source("usgs", "usgs-quakes", "USGS", NOW)
        .await
        .unwrap();
    assert_ne!((usgs.id, usgs.user_id), (first.id, first.user_id));
}

pub(crate) async fn ensure_source_never_adopts_a_taken_username(store: Arc<dyn Store>) {
    let person = user(&store, "quakes").await;
    for username in ["quakes", "QUAKES"] {
        let err = store
            .ensure_source("emsc", username, "Earthquakes", NOW)
            .await
            .expect_err("the username is a person's");
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    assert_eq!(store.source_by_name("emsc").await.unwrap(), None);
    assert_eq!(store.search_users("", 10).await.unwrap(), vec![person]);
    // Nor another source's.
    emsc_as(&store, "emsc", "emsc-bot").await;
    let err = store
        .ensure_source("usgs", "emsc-bot", "USGS", NOW)
        .await
        .expect_err("the username is another source's");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn emsc_as(store: &Arc<dyn Store>, name: &str, username: &str) {
    store
        .ensure_source(name, username, "bot", NOW)
        .await
        .expect("ensure_source");
}

pub(crate) async fn ensure_source_races_make_one_source(store: Arc<dyn Store>) {
    let calls = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .ensure_source("emsc", "quakes", "Earthquakes", i)
                .await
        })
    });
    let mut sources = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        sources.push(
            call.await
                .expect("task panicked")
                .expect("ensure_source failed"),
        );
    }
    assert!(sources.iter().all(|s| *s == sources[0]), "{sources:?}");
    assert_eq!(store.search_users("", 10).await.unwrap().len(), 1);
}

pub(crate) async fn create_feed_room_makes_members_and_a_follow(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let bot = store.source(source).await.unwrap().unwrap().user_id;
    let alice = user(&store, "alice").await;

    let own = store
        .create_feed_room(source, "quakes", None, None, None, NOW)
        .await
        .unwrap();
    assert_eq!(
        (
            own.kind,
            own.name.as_str(),
            own.created_by,
            own.created_at_ms
        ),
        (RoomKind::Feed, "quakes", bot, NOW)
    );
    assert_eq!(store.room(own.id).await.unwrap(), Some(own.clone()));
    let members = store.members(own.id).await.unwrap();
    let roles: Vec<(UserId, Role)> = members.iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(roles, [(bot, Role::Member)]);
    assert_eq!(
        store.follow(own.id).await.unwrap(),
        Some(Follow {
            room: own.id,
            source,
            min_magnitude: None,
            bbox: None,
        })
    );

    let mine = store
        .create_feed_room(
            source,
            "greek quakes",
            Some(alice.id),
            Some(3.5),
            Some(GREECE),
            NOW + 1,
        )
        .await
        .unwrap();
    assert_eq!((mine.kind, mine.created_by), (RoomKind::Feed, alice.id));
    let mut roles: Vec<(UserId, Role)> = store
        .members(mine.id)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    roles.sort_by_key(|(u, _)| *u);
    let mut expected = vec![(alice.id, Role::Owner), (bot, Role::Member)];
    expected.sort_by_key(|(u, _)| *u);
    assert_eq!(roles, expected);
    assert_eq!(
        store.member_role(mine.id, alice.id).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(
        store.follow(mine.id).await.unwrap(),
        Some(Follow {
            room: mine.id,
            source,
            min_magnitude: Some(3.5),
            bbox: Some(GREECE),
        })
    );
    let listed = store.rooms_of(alice.id, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].room, mine);

    for (source, owner) in [
        (SourceId(i64::MAX), None),
        (SourceId(i64::MAX), Some(alice.id)),
        (source, Some(UserId(i64::MAX))),
    ] {
        let err = store
            .create_feed_room(source, "nope", owner, None, None, NOW)
            .await
            .expect_err("a missing source or owner");
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }
    assert_eq!(store.follows(source).await.unwrap().len(), 2);
    assert!(store.follow(RoomId(i64::MAX)).await.unwrap().is_none());
}

pub(crate) async fn source_room_is_the_unowned_room_of_that_name(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let usgs = store
        .ensure_source("usgs", "usgs-bot", "USGS", NOW)
        .await
        .unwrap()
        .id;
    let alice = user(&store, "alice").await;
    assert_eq!(store.source_room(source, "quakes").await.unwrap(), None);
    // A person's room of that name, another source's and another name come first.
    store
        .create_feed_room(source, "quakes", Some(alice.id), None, None, NOW)
        .await
        .unwrap();
    let usgs_room = store
        .create_feed_room(usgs, "quakes", None, None, None, NOW)
        .await
        .unwrap()
        .id;
    store
        .create_feed_room(source, "Quakes", None, None, None, NOW)
        .await
        .unwrap();
    assert_eq!(store.source_room(source, "quakes").await.unwrap(), None);
    let own = store
        .create_feed_room(source, "quakes", None, None, None, NOW)
        .await
        .unwrap();
    assert_eq!(
        store.source_room(source, "quakes").await.unwrap(),
        Some(own.id)
    );
    assert_eq!(
        store.source_room(usgs, "quakes").await.unwrap(),
        Some(usgs_room)
    );
}

pub(crate) async fn follows_and_filters_round_trip(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let other = store
        .ensure_source("usgs", "usgs-bot", "USGS", NOW)
        .await
        .unwrap()
        .id;
    let alice = user(&store, "alice").await;
    let a = store
        .create_feed_room(source, "a", None, Some(2.0), Some(PACIFIC), NOW)
        .await
        .unwrap()
        .id;
    let b = store
        .create_feed_room(source, "b", Some(alice.id), None, None, NOW)
        .await
        .unwrap()
        .id;
    store
        .create_feed_room(other, "c", None, None, None, NOW)
        .await
        .unwrap();
    let follow = |room, min_magnitude, bbox| Follow {
        room,
        source,
        min_magnitude,
        bbox,
    };
    assert_eq!(
        store.follows(source).await.unwrap(),
        [follow(a, Some(2.0), Some(PACIFIC)), follow(b, None, None)]
    );
    store
        .set_filters(b, Some(-0.5), Some(GREECE))
        .await
        .unwrap();
    // The same filters again are no error (MySQL may count no row changed).
    store
        .set_filters(b, Some(-0.5), Some(GREECE))
        .await
        .unwrap();
    store.set_filters(a, None, None).await.unwrap();
    assert_eq!(
        store.follows(source).await.unwrap(),
        [follow(a, None, None), follow(b, Some(-0.5), Some(GREECE))]
    );
    assert_eq!(
        store.follow(b).await.unwrap(),
        Some(follow(b, Some(-0.5), Some(GREECE)))
    );
    let group = store
        .create_room(RoomKind::Group, "g", alice.id, NOW)
        .await
        .unwrap()
        .id;
    for room in [group, RoomId(i64::MAX)] {
        let err = store
            .set_filters(room, Some(1.0), None)
            .await
            .expect_err("follows nothing");
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        assert_eq!(store.follow(room).await.unwrap(), None);
    }
    assert!(store.follows(SourceId(i64::MAX)).await.unwrap().is_empty());
}

pub(crate) async fn feed_events_are_upserted(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let other = store
        .ensure_source("usgs", "usgs-bot", "USGS", NOW)
        .await
        .unwrap()
        .id;
    let first = event(source, "20240101_0000001", NOW, 25.5, 35.25);
    store.put_feed_event(&first).await.unwrap();
    assert_eq!(
        store.feed_event(source, &first.id).await.unwrap(),
        Some(first.clone())
    );
    // Ids are compared byte for byte, and per source.
    let upper = event(source, "Q1", NOW, 0.0, 0.0);
    let lower = event(source, "q1", NOW, 1.0, 1.0);
    store.put_feed_event(&upper).await.unwrap();
    store.put_feed_event(&lower).await.unwrap();
    assert_eq!(store.feed_event(source, "Q1").await.unwrap(), Some(upper));
    assert_eq!(store.feed_event(source, "q1").await.unwrap(), Some(lower));
    assert_eq!(store.feed_event(other, &first.id).await.unwrap(), None);

    let mut revised = first.clone();
    revised.time_ms += 7;
    revised.lat = -12.125;
    revised.lon = -179.5;
    revised.depth_km = None;
    revised.magnitude = Some(4.5);
    revised.magnitude_type = None;
    revised.region = Some("FIJI REGION — \u{e9}".into());
    revised.updated_at_ms += 100;
    store.put_feed_event(&revised).await.unwrap();
    assert_eq!(
        store.feed_event(source, &first.id).await.unwrap(),
        Some(revised.clone())
    );
    let mut withdrawn = revised.clone();
    withdrawn.magnitude = None;
    withdrawn.deleted_at_ms = Some(NOW + 500);
    store.put_feed_event(&withdrawn).await.unwrap();
    // Twice changes nothing.
    store.put_feed_event(&withdrawn).await.unwrap();
    assert_eq!(
        store.feed_event(source, &first.id).await.unwrap(),
        Some(withdrawn)
    );
    let err = store
        .put_feed_event(&event(SourceId(i64::MAX), "x", NOW, 0.0, 0.0))
        .await
        .expect_err("no such source");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub(crate) async fn feed_events_filter_and_order(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let other = store
        .ensure_source("usgs", "usgs-bot", "USGS", NOW)
        .await
        .unwrap()
        .id;
    let at = |id: &str, t: i64, lon: f64, lat: f64, mag: Option<f64>| {
        let mut e = event(source, id, NOW + t, lon, lat);
        e.magnitude = mag;
        e
    };
    let mut gone = at("gone", 9, 25.0, 35.0, Some(6.0));
    gone.deleted_at_ms = Some(NOW + 10);
    let mut elsewhere = at("elsewhere", 9, 25.0, 35.0, Some(6.0));
    elsewhere.source = other;
    for e in [
        at("crete", 5, 25.0, 35.0, Some(4.0)),
        at("athens", 3, 23.7, 38.0, Some(2.5)),
        at("athens-b", 3, 23.7, 38.0, None),
        at("fiji", 4, 179.5, -17.0, Some(5.0)),
        at("samoa", 2, -172.0, -13.5, Some(3.0)),
        at("hawaii", 1, -155.0, 19.5, Some(3.0)),
        at("edge", 0, 30.0, 42.0, Some(4.0)),
        gone,
        elsewhere,
    ] {
        store.put_feed_event(&e).await.unwrap();
    }
    let ids = |query: EventQuery| {
        let store = store.clone();
        async move {
            store
                .feed_events(source, &query)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(EventQuery::default()).await,
        [
            "crete", "fiji", "athens", "athens-b", "samoa", "hawaii", "edge"
        ],
        "not deleted, newest first, then by id"
    );
    let since = |since_ms| EventQuery {
        since_ms: Some(since_ms),
        ..EventQuery::default()
    };
    assert_eq!(
        ids(since(NOW + 3)).await,
        ["crete", "fiji", "athens", "athens-b"]
    );
    assert!(ids(since(NOW + 6)).await.is_empty());
    let min = |m| EventQuery {
        min_magnitude: Some(m),
        ..EventQuery::default()
    };
    assert_eq!(ids(min(4.0)).await, ["crete", "fiji", "edge"]);
    assert_eq!(
        ids(min(-10.0)).await,
        ["crete", "fiji", "athens", "samoa", "hawaii", "edge"],
        "an event without a magnitude is left out"
    );
    let within = |b| EventQuery {
        bbox: Some(b),
        ..EventQuery::default()
    };
    assert_eq!(
        ids(within(GREECE)).await,
        ["crete", "athens", "athens-b", "edge"],
        "edges included"
    );
    assert_eq!(ids(within(PACIFIC)).await, ["fiji", "samoa"]);
    let all_of_it = EventQuery {
        since_ms: Some(NOW + 1),
        bbox: Some(BBox {
            min_lon: -180.0,
            min_lat: -90.0,
            max_lon: 180.0,
            max_lat: 90.0,
        }),
        min_magnitude: Some(3.0),
        limit: 3,
    };
    assert_eq!(ids(all_of_it).await, ["crete", "fiji", "samoa"]);
    let one = EventQuery {
        limit: 1,
        ..EventQuery::default()
    };
    assert_eq!(ids(one).await, ["crete"]);
    assert_eq!(
        store
            .feed_events(other, &EventQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

pub(crate) async fn feed_events_limit_defaults_and_caps(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    for i in 0..1005 {
        store
            .put_feed_event(&event(source, &format!("e{i:04}"), NOW + i, 0.0, 0.0))
            .await
            .unwrap();
    }
    let count = |limit| {
        let store = store.clone();
        async move {
            let query = EventQuery {
                limit,
                ..EventQuery::default()
            };
            store.feed_events(source, &query).await.unwrap().len()
        }
    };
    assert_eq!(count(0).await, 100, "no limit: 100");
    assert_eq!(count(5000).await, 1000, "at most 1000");
    assert_eq!(count(1000).await, 1000);
    assert_eq!(count(7).await, 7);
}

pub(crate) async fn feed_posts_are_upserted(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let a = store
        .create_feed_room(source, "a", None, None, None, NOW)
        .await
        .unwrap()
        .id;
    let b = store
        .create_feed_room(source, "b", None, None, None, NOW)
        .await
        .unwrap()
        .id;
    assert_eq!(store.feed_post(a, "q1").await.unwrap(), None);
    store.put_feed_post(a, "q1", 7).await.unwrap();
    store.put_feed_post(b, "q1", 3).await.unwrap();
    store.put_feed_post(a, "Q1", 9).await.unwrap();
    assert_eq!(store.feed_post(a, "q1").await.unwrap(), Some(7));
    assert_eq!(store.feed_post(b, "q1").await.unwrap(), Some(3));
    assert_eq!(store.feed_post(a, "Q1").await.unwrap(), Some(9));
    store.put_feed_post(a, "q1", 12).await.unwrap();
    store.put_feed_post(a, "q1", 12).await.unwrap();
    assert_eq!(store.feed_post(a, "q1").await.unwrap(), Some(12));
    assert_eq!(store.feed_post(b, "q1").await.unwrap(), Some(3));
    let err = store
        .put_feed_post(RoomId(i64::MAX), "q1", 1)
        .await
        .expect_err("no such room");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

pub(crate) async fn raw_frames_keep_the_newest(store: Arc<dyn Store>) {
    let source = emsc(&store).await;
    let other = store
        .ensure_source("usgs", "usgs-bot", "USGS", NOW)
        .await
        .unwrap()
        .id;
    assert!(store.raw_frames(source, 10).await.unwrap().is_empty());
    store.append_raw(other, "other 0", NOW, 2).await.unwrap();
    for i in 0..7 {
        let frame = format!("{{\"action\":\"create\",\"n\":{i},\"t\":\"\u{e9}\"}}");
        store.append_raw(source, &frame, NOW + i, 4).await.unwrap();
    }
    let frames = store.raw_frames(source, 10).await.unwrap();
    let ns: Vec<String> = (3..7)
        .map(|i| format!("{{\"action\":\"create\",\"n\":{i},\"t\":\"\u{e9}\"}}"))
        .collect();
    assert_eq!(frames, ns, "the newest 4, oldest first");
    assert_eq!(store.raw_frames(source, 2).await.unwrap(), ns[2..].to_vec());
    assert!(store.raw_frames(source, 0).await.unwrap().is_empty());
    store.append_raw(other, "other 1", NOW, 2).await.unwrap();
    store.append_raw(other, "other 2", NOW, 2).await.unwrap();
    assert_eq!(
        store.raw_frames(other, 10).await.unwrap(),
        ["other 1", "other 2"]
    );
    assert_eq!(
        store.raw_frames(source, 10).await.unwrap().len(),
        4,
        "per source"
    );
    // A smaller keep prunes at once.
    store.append_raw(source, "last", NOW + 9, 1).await.unwrap();
    assert_eq!(store.raw_frames(source, 10).await.unwrap(), ["last"]);
    let err = store
        .append_raw(SourceId(i64::MAX), "x", NOW, 1)
        .await
        .expect_err("no such source");
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}
