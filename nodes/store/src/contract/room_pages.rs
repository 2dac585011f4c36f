//! Contract cases: pages of a user's rooms and of a room's members, one room's summary, membership
//! counts and DM lookups — what the REST room list, the member list and the room budgets read.

use std::sync::Arc;

use banter_actors::model::{Role, RoomId, RoomKind, UserId};
use banter_actors::ports::Store;

use super::{message, messages, user};

pub(crate) async fn rooms_of_pages_by_room_id(store: Arc<dyn Store>) {
    let me = user(&store, "pager").await;
    let other = user(&store, "other").await;
    let mut mine = Vec::new();
    for i in 0..7 {
        // Rooms of someone else in between: they are not the caller's and never show.
        store
            .create_room(RoomKind::Group, "not mine", other.id, i)
            .await
            .unwrap();
        let room = if i % 3 == 0 {
            let r = store
                .create_room(RoomKind::Group, "joined", other.id, i)
                .await
                .unwrap();
            store
                .add_member(r.id, me.id, Role::Member, i)
                .await
                .unwrap();
            r
        } else {
            store
                .create_room(RoomKind::Group, "mine", me.id, i)
                .await
                .unwrap()
        };
        mine.push(room.id);
    }
    let (dm, _) = store.dm_room(other.id, me.id, 9).await.unwrap();
    mine.push(dm.id);
    mine.sort();

    let all = store.rooms_of(me.id, None, 1000).await.unwrap();
    let ids: Vec<_> = all.iter().map(|s| s.room.id).collect();
    assert_eq!(ids, mine, "every room of the caller once, by room id");

    for limit in [1, 3, 8, 9] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.rooms_of(me.id, after, limit).await.unwrap();
            assert!(page.len() <= limit as usize);
            seen.extend(page.iter().map(|s| s.room.id));
            match page.last() {
                Some(last) if page.len() == limit as usize => after = Some(last.room.id),
                _ => break,
            }
        }
        assert_eq!(seen, mine, "pages of {limit}: no gap, no duplicate");
    }
    let after_last = store
        .rooms_of(me.id, mine.last().copied(), 10)
        .await
        .unwrap();
    assert!(after_last.is_empty(), "{after_last:?}");
    let from_start = store.rooms_of(me.id, Some(RoomId(0)), 2).await.unwrap();
    let ids: Vec<_> = from_start.iter().map(|s| s.room.id).collect();
    assert_eq!(ids, mine[..2]);
    assert!(store.rooms_of(me.id, None, 0).await.unwrap().is_empty());
}

pub(crate) async fn room_summary_is_the_listed_summary(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let room = store
        .create_room(RoomKind::Group, "g", alice.id, 1)
        .await
        .unwrap();
    store
        .add_member(room.id, bob.id, Role::Member, 2)
        .await
        .unwrap();
    store
        .insert_messages(&messages(room.id, 1, 5, alice.id))
        .await
        .unwrap();
    store.mark_read(room.id, bob.id, 2).await.unwrap();
    let (dm, _) = store.dm_room(bob.id, carol.id, 3).await.unwrap();
    store
        .insert_messages(&[message(dm.id, 1, carol.id, "psst")])
        .await
        .unwrap();

    for u in [&alice, &bob, &carol] {
        for s in store.rooms_of(u.id, None, 1000).await.unwrap() {
            let one = store.room_summary(s.room.id, u.id).await.unwrap();
            assert_eq!(
                one.as_ref(),
                Some(&s),
                "room {} for {}",
                s.room.id,
                u.username
            );
        }
    }
    let b = store.room_summary(room.id, bob.id).await.unwrap().unwrap();
    assert_eq!(
        (
            b.role,
            b.last_seq,
            b.last_read_seq,
            b.unread,
            b.last_activity_ms
        ),
        (Role::Member, 5, 2, 3, 5000)
    );
    let a = store
        .room_summary(room.id, alice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.role, a.unread), (Role::Owner, 5));
    let d = store.room_summary(dm.id, bob.id).await.unwrap().unwrap();
    assert_eq!(
        (d.room.kind, d.dm_peer, d.unread),
        (RoomKind::Dm, Some(carol.id), 1)
    );
    assert_eq!(
        store
            .room_summary(dm.id, carol.id)
            .await
            .unwrap()
            .unwrap()
            .dm_peer,
        Some(bob.id)
    );

    assert_eq!(store.room_summary(room.id, carol.id).await.unwrap(), None);
    assert_eq!(
        store.room_summary(RoomId(i64::MAX), bob.id).await.unwrap(),
        None
    );
    store.remove_member(room.id, bob.id).await.unwrap();
    assert_eq!(store.room_summary(room.id, bob.id).await.unwrap(), None);
}

pub(crate) async fn members_after_pages_by_user_id(store: Arc<dyn Store>) {
    let owner = user(&store, "owner").await;
    let room = store
        .create_room(RoomKind::Group, "big", owner.id, 1)
        .await
        .unwrap();
    let elsewhere = store
        .create_room(RoomKind::Group, "elsewhere", owner.id, 1)
        .await
        .unwrap();
    let mut ids = vec![owner.id];
    for i in 0..6 {
        let u = user(&store, &format!("member{i}")).await;
        ids.push(u.id);
        let target = if i == 3 { elsewhere.id } else { room.id };
        store
            .add_member(target, u.id, Role::Member, 2)
            .await
            .unwrap();
    }
    let outsider = ids.remove(4);
    ids.sort();
    let full: Vec<_> = store
        .members(room.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(full, ids);

    for limit in [1, 2, 6, 7] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.members_after(room.id, after, limit).await.unwrap();
            assert!(page.len() <= limit as usize);
            seen.extend(page.iter().map(|m| m.user_id));
            match page.last() {
                Some(last) if page.len() == limit as usize => after = Some(last.user_id),
                _ => break,
            }
        }
        assert_eq!(seen, ids, "pages of {limit}");
        assert!(!seen.contains(&outsider));
    }
    let page = store.members_after(room.id, None, 2).await.unwrap();
    assert_eq!(page[0].role, Role::Owner);
    assert_eq!(page[0].username, "owner");
    assert_eq!(
        page[1].display_name,
        format!("{} display", page[1].username)
    );
    assert!(
        store
            .members_after(room.id, ids.last().copied(), 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .members_after(RoomId(i64::MAX), None, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn membership_count_counts_rooms_and_dms(store: Arc<dyn Store>) {
    let a = user(&store, "alice").await;
    let b = user(&store, "bob").await;
    assert_eq!(store.membership_count(a.id).await.unwrap(), 0);
    let g = store
        .create_room(RoomKind::Group, "g", a.id, 1)
        .await
        .unwrap();
    store
        .create_room(RoomKind::Group, "h", b.id, 1)
        .await
        .unwrap();
    store.dm_room(a.id, b.id, 2).await.unwrap();
    assert_eq!(store.membership_count(a.id).await.unwrap(), 2);
    store.add_member(g.id, b.id, Role::Member, 3).await.unwrap();
    assert_eq!(store.membership_count(b.id).await.unwrap(), 3);
    store.remove_member(g.id, b.id).await.unwrap();
    assert_eq!(store.membership_count(b.id).await.unwrap(), 2);
    assert_eq!(store.membership_count(UserId(i64::MAX)).await.unwrap(), 0);
}

pub(crate) async fn find_dm_never_creates(store: Arc<dyn Store>) {
    let a = user(&store, "ann").await;
    let b = user(&store, "ben").await;
    assert_eq!(store.find_dm(a.id, b.id).await.unwrap(), None);
    assert_eq!(
        store.membership_count(a.id).await.unwrap(),
        0,
        "nothing created"
    );
    let (room, _) = store.dm_room(a.id, b.id, 1).await.unwrap();
    assert_eq!(store.find_dm(a.id, b.id).await.unwrap(), Some(room.clone()));
    assert_eq!(store.find_dm(b.id, a.id).await.unwrap(), Some(room));
    assert_eq!(store.find_dm(a.id, UserId(i64::MAX)).await.unwrap(), None);
}
