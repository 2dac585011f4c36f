//! Contract cases: rooms, DMs, membership, read markers and the room list of a user.

use std::sync::Arc;

use banter_actors::model::{Role, RoomId, RoomKind, UserId};
use banter_actors::ports::{Store, StoreError};

use super::{message, messages, user};

pub(crate) async fn create_room_makes_the_creator_owner(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let room = store
        .create_room(RoomKind::Group, "général 🎉 ' OR 1=1 --", alice.id, 42)
        .await
        .unwrap();
    assert_eq!(room.kind, RoomKind::Group);
    assert_eq!(room.name, "général 🎉 ' OR 1=1 --");
    assert_eq!(room.created_by, alice.id);
    assert_eq!(room.created_at_ms, 42);
    assert_eq!(store.room(room.id).await.unwrap(), Some(room.clone()));
    assert_eq!(store.room(RoomId(i64::MAX)).await.unwrap(), None);

    let members = store.members(room.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, alice.id);
    assert_eq!(members[0].username, "alice");
    assert_eq!(members[0].display_name, "alice display");
    assert_eq!(members[0].role, Role::Owner);
    assert_eq!(members[0].last_read_seq, 0);

    let feed = store
        .create_room(RoomKind::Feed, "quakes", alice.id, 43)
        .await
        .unwrap();
    assert_eq!(
        store.room(feed.id).await.unwrap().map(|r| r.kind),
        Some(RoomKind::Feed)
    );
    assert_ne!(feed.id, room.id);
}

pub(crate) async fn create_room_refuses_dm(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let refused = store.create_room(RoomKind::Dm, "", alice.id, 1).await;
    assert!(refused.is_err(), "{refused:?}");
}

pub(crate) async fn add_and_remove_members(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let x = user(&store, "xavier").await;
    let y = user(&store, "yvonne").await;
    let room = store
        .create_room(RoomKind::Group, "g", owner.id, 1)
        .await
        .unwrap();
    // Added in reverse id order: members() still lists by user id.
    assert!(
        store
            .add_member(room.id, y.id, Role::Member, 2)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_member(room.id, x.id, Role::Member, 3)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_member(room.id, x.id, Role::Owner, 4)
            .await
            .unwrap(),
        "already a member"
    );
    let members = store.members(room.id).await.unwrap();
    let ids: Vec<_> = members.iter().map(|m| m.user_id).collect();
    assert_eq!(ids, [owner.id, x.id, y.id]);
    assert_eq!(members[1].role, Role::Member, "re-adding changes nothing");

    assert!(store.remove_member(room.id, x.id).await.unwrap());
    assert!(!store.remove_member(room.id, x.id).await.unwrap());
    let ids: Vec<_> = store
        .members(room.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(ids, [owner.id, y.id]);
    assert!(
        store
            .add_member(room.id, x.id, Role::Member, 5)
            .await
            .unwrap(),
        "may come back"
    );
    assert!(store.members(RoomId(i64::MAX)).await.unwrap().is_empty());
}

pub(crate) async fn membership_of_missing_rows_is_not_found(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let room = store
        .create_room(RoomKind::Group, "g", alice.id, 1)
        .await
        .unwrap();
    let no_room = store
        .add_member(RoomId(i64::MAX), alice.id, Role::Member, 1)
        .await;
    assert!(matches!(no_room, Err(StoreError::NotFound)), "{no_room:?}");
    let no_user = store
        .add_member(room.id, UserId(i64::MAX), Role::Member, 1)
        .await;
    assert!(matches!(no_user, Err(StoreError::NotFound)), "{no_user:?}");
    let not_member = store.mark_read(room.id, UserId(i64::MAX), 1).await;
    assert!(
        matches!(not_member, Err(StoreError::NotFound)),
        "{not_member:?}"
    );
    assert!(
        !store
            .remove_member(room.id, UserId(i64::MAX))
            .await
            .unwrap()
    );
}

pub(crate) async fn dm_room_is_one_room_per_pair(store: Arc<dyn Store>) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    let c = user(&store, "cid").await;
    let (room, created) = store.dm_room(a.id, b.id, 7).await.unwrap();
    assert!(created);
    assert_eq!(room.kind, RoomKind::Dm);
    assert_eq!(room.created_at_ms, 7);
    let (again, created) = store.dm_room(b.id, a.id, 8).await.unwrap();
    assert!(!created);
    assert_eq!(again, room, "either order gives the same room");
    assert_eq!(store.room(room.id).await.unwrap(), Some(room.clone()));

    let members = store.members(room.id).await.unwrap();
    let ids: Vec<_> = members.iter().map(|m| (m.user_id, m.role)).collect();
    let mut expected = [(a.id, Role::Member), (b.id, Role::Member)];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(ids, expected);

    let (other, created) = store.dm_room(a.id, c.id, 9).await.unwrap();
    assert!(created);
    assert_ne!(other.id, room.id);

    let listed = store.rooms_of(a.id, None, 1000).await.unwrap();
    let peers: Vec<_> = listed.iter().map(|s| (s.room.id, s.dm_peer)).collect();
    assert!(peers.contains(&(room.id, Some(b.id))), "{peers:?}");
    assert!(peers.contains(&(other.id, Some(c.id))), "{peers:?}");
    let of_b = store.rooms_of(b.id, None, 1000).await.unwrap();
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].dm_peer, Some(a.id));

    let missing = store.dm_room(a.id, UserId(i64::MAX), 10).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

pub(crate) async fn dm_room_races_create_one_room(store: Arc<dyn Store>) {
    let a = user(&store, "racer1").await;
    let b = user(&store, "racer2").await;
    let calls = (0..16).map(|i| {
        let store = store.clone();
        let (x, y) = if i % 2 == 0 {
            (a.id, b.id)
        } else {
            (b.id, a.id)
        };
        tokio::spawn(async move { store.dm_room(x, y, i).await })
    });
    let mut rooms = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        rooms.push(call.await.expect("task panicked").expect("dm_room failed"));
    }
    let created = rooms.iter().filter(|(_, created)| *created).count();
    assert_eq!(created, 1, "exactly one call creates the room");
    assert!(
        rooms.iter().all(|(r, _)| r.id == rooms[0].0.id),
        "one room for the pair"
    );
    assert_eq!(store.members(rooms[0].0.id).await.unwrap().len(), 2);
    assert_eq!(store.rooms_of(a.id, None, 1000).await.unwrap().len(), 1);
}

pub(crate) async fn mark_read_never_lowers(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let room = store
        .create_room(RoomKind::Group, "g", alice.id, 1)
        .await
        .unwrap();
    assert_eq!(store.mark_read(room.id, alice.id, 5).await.unwrap(), 5);
    assert_eq!(store.mark_read(room.id, alice.id, 3).await.unwrap(), 5);
    assert_eq!(store.mark_read(room.id, alice.id, 0).await.unwrap(), 5);
    assert_eq!(store.mark_read(room.id, alice.id, 9).await.unwrap(), 9);
    assert_eq!(store.members(room.id).await.unwrap()[0].last_read_seq, 9);
}

pub(crate) async fn rooms_of_counts_unread(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let room = store
        .create_room(RoomKind::Group, "g", alice.id, 1)
        .await
        .unwrap();
    store
        .add_member(room.id, bob.id, Role::Member, 2)
        .await
        .unwrap();
    let quiet = store
        .create_room(RoomKind::Group, "quiet", bob.id, 3)
        .await
        .unwrap();
    store
        .insert_messages(&messages(room.id, 1, 10, alice.id))
        .await
        .unwrap();

    let summary = |list: Vec<banter_actors::model::RoomSummary>, id| {
        list.into_iter()
            .find(|s| s.room.id == id)
            .expect("room listed")
    };
    let s = summary(store.rooms_of(bob.id, None, 1000).await.unwrap(), room.id);
    assert_eq!(s.room, room);
    assert_eq!(
        (s.role, s.last_seq, s.last_read_seq, s.unread),
        (Role::Member, 10, 0, 10)
    );
    assert_eq!(s.dm_peer, None);
    let q = summary(store.rooms_of(bob.id, None, 1000).await.unwrap(), quiet.id);
    assert_eq!((q.role, q.last_seq, q.unread), (Role::Owner, 0, 0));

    store.mark_read(room.id, bob.id, 4).await.unwrap();
    let s = summary(store.rooms_of(bob.id, None, 1000).await.unwrap(), room.id);
    assert_eq!((s.last_read_seq, s.unread), (4, 6));
    store.mark_read(room.id, bob.id, 10).await.unwrap();
    assert_eq!(
        summary(store.rooms_of(bob.id, None, 1000).await.unwrap(), room.id).unread,
        0
    );
    // Alice's marker is her own.
    assert_eq!(
        summary(store.rooms_of(alice.id, None, 1000).await.unwrap(), room.id).unread,
        10
    );
}

pub(crate) async fn rooms_of_reports_last_activity(store: Arc<dyn Store>) {
    let u = user(&store, "ursula").await;
    let v = user(&store, "victor").await;
    let r1 = store
        .create_room(RoomKind::Group, "r1", u.id, 100)
        .await
        .unwrap();
    let r2 = store
        .create_room(RoomKind::Group, "r2", u.id, 200)
        .await
        .unwrap();
    let r3 = store
        .create_room(RoomKind::Group, "r3", u.id, 300)
        .await
        .unwrap();
    let activity = || async {
        let list = store.rooms_of(u.id, None, 1000).await.unwrap();
        list.iter()
            .map(|s| (s.room.id, s.last_activity_ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        activity().await,
        [(r1.id, 100), (r2.id, 200), (r3.id, 300)],
        "by room id; creation time without messages"
    );

    // message() sends seq n at n * 1000 ms.
    store
        .insert_messages(&[message(r1.id, 1, u.id, "hi")])
        .await
        .unwrap();
    store
        .insert_messages(&messages(r2.id, 1, 3, u.id))
        .await
        .unwrap();
    assert_eq!(
        activity().await,
        [(r1.id, 1000), (r2.id, 3000), (r3.id, 300)]
    );
    let (dm, _) = store.dm_room(u.id, v.id, 5_000).await.unwrap();
    assert_eq!(
        activity().await,
        [(r1.id, 1000), (r2.id, 3000), (r3.id, 300), (dm.id, 5_000)]
    );
    assert!(
        store
            .rooms_of(UserId(i64::MAX), None, 1000)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn rooms_of_forgets_removed_members(store: Arc<dyn Store>) {
    let a = user(&store, "alice").await;
    let b = user(&store, "bob").await;
    let room = store
        .create_room(RoomKind::Group, "g", a.id, 1)
        .await
        .unwrap();
    store
        .add_member(room.id, b.id, Role::Member, 2)
        .await
        .unwrap();
    assert_eq!(store.rooms_of(b.id, None, 1000).await.unwrap().len(), 1);
    assert!(store.remove_member(room.id, b.id).await.unwrap());
    assert!(store.rooms_of(b.id, None, 1000).await.unwrap().is_empty());
    assert_eq!(store.rooms_of(a.id, None, 1000).await.unwrap().len(), 1);
}

pub(crate) async fn member_role_is_a_point_lookup(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let x = user(&store, "xavier").await;
    let room = store
        .create_room(RoomKind::Group, "g", owner.id, 1)
        .await
        .unwrap();
    assert_eq!(
        store.member_role(room.id, owner.id).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(store.member_role(room.id, x.id).await.unwrap(), None);
    store
        .add_member(room.id, x.id, Role::Member, 2)
        .await
        .unwrap();
    assert_eq!(
        store.member_role(room.id, x.id).await.unwrap(),
        Some(Role::Member)
    );
    store.remove_member(room.id, x.id).await.unwrap();
    assert_eq!(store.member_role(room.id, x.id).await.unwrap(), None);
    assert_eq!(
        store.member_role(RoomId(i64::MAX), owner.id).await.unwrap(),
        None
    );
}

pub(crate) async fn contacts_are_the_members_of_small_rooms(store: Arc<dyn Store>) {
    let mut users = Vec::new();
    for name in ["ann", "ben", "cat", "dan", "eve", "fay"] {
        users.push(user(&store, name).await.id);
    }
    let [ann, ben, cat, dan, eve, fay] = users[..] else {
        unreachable!()
    };
    let (dm, _) = store.dm_room(ann, ben, 1).await.unwrap();
    assert_eq!(store.contacts(ann, 3, 10).await.unwrap(), [ben]);
    assert_eq!(store.contacts(ben, 3, 10).await.unwrap(), [ann]);
    // A room of three shared with ben again (each contact once) and with cat.
    let small = store
        .create_room(RoomKind::Group, "small", ann, 1)
        .await
        .unwrap();
    for u in [ben, cat] {
        store
            .add_member(small.id, u, Role::Member, 2)
            .await
            .unwrap();
    }
    assert_eq!(store.contacts(ann, 3, 10).await.unwrap(), [ben, cat]);
    // A room of four is over the limit of three: its members are no contacts.
    let big = store
        .create_room(RoomKind::Group, "big", dan, 1)
        .await
        .unwrap();
    for u in [ann, eve, fay] {
        store.add_member(big.id, u, Role::Member, 2).await.unwrap();
    }
    assert_eq!(store.contacts(ann, 3, 10).await.unwrap(), [ben, cat]);
    assert_eq!(
        store.contacts(ann, 4, 10).await.unwrap(),
        [ben, cat, dan, eve, fay]
    );
    assert_eq!(
        store.contacts(ann, 4, 2).await.unwrap(),
        [ben, cat],
        "limit"
    );
    assert!(store.contacts(dan, 3, 10).await.unwrap().is_empty());
    // Leaving a room ends what it made.
    store.remove_member(dm.id, ben).await.unwrap();
    store.remove_member(small.id, ben).await.unwrap();
    assert_eq!(store.contacts(ann, 3, 10).await.unwrap(), [cat]);
}

pub(crate) async fn last_seen_times_only_move_forward(store: Arc<dyn Store>) {
    let ann = user(&store, "ann").await.id;
    let ben = user(&store, "ben").await.id;
    let room = store
        .create_room(RoomKind::Group, "seen", ann, 1)
        .await
        .unwrap();
    store
        .add_member(room.id, ben, Role::Member, 2)
        .await
        .unwrap();
    let seen = |members: Vec<banter_actors::model::Member>| -> Vec<Option<i64>> {
        members.iter().map(|m| m.last_seen_ms).collect()
    };
    assert_eq!(seen(store.members(room.id).await.unwrap()), [None, None]);
    store.record_last_seen(&[], 5).await.unwrap();
    store.record_last_seen(&[ann, ben], 1_000).await.unwrap();
    store.record_last_seen(&[ben], 2_000).await.unwrap();
    // An older time (a slower node's write) changes nothing.
    store.record_last_seen(&[ann, ben], 1_500).await.unwrap();
    assert_eq!(
        seen(store.members(room.id).await.unwrap()),
        [Some(1_500), Some(2_000)]
    );
    let page = store.members_after(room.id, Some(ann), 10).await.unwrap();
    assert_eq!(seen(page), [Some(2_000)]);
}
