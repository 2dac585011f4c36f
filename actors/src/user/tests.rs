//! Unit tests of the users table.

use crate::delivery::{SessionHandle, SessionInbox};
use crate::presence::Status;
use crate::testing::{FixedClock, NOW_MS, drain, frame, header, next};

use super::*;

const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);

fn config() -> UserConfig {
    UserConfig {
        // One token per second: nothing refills during a test.
        send_per_second: NonZeroU32::new(1).unwrap(),
        send_burst: NonZeroU32::new(3).unwrap(),
        max_sessions: 3,
    }
}

fn table() -> (Arc<Users>, Arc<Presence>) {
    let presence = Presence::new(Arc::new(FixedClock(NOW_MS)));
    (Users::new(config(), presence.clone()), presence)
}

fn session(user: UserId, id: u64) -> (SessionHandle, SessionInbox) {
    SessionHandle::new(id, user, 16)
}

fn attach(users: &Arc<Users>, user: UserId, id: u64) -> (Attached, SessionInbox) {
    let (handle, inbox) = session(user, id);
    (users.attach(&handle).expect("attached"), inbox)
}

#[test]
fn sessions_past_the_cap_are_refused_until_one_ends() {
    let (users, _) = table();
    let mut held = Vec::new();
    for id in 1..=3 {
        held.push(attach(&users, ALICE, id));
    }
    let (extra, _extra_inbox) = session(ALICE, 4);
    assert!(matches!(
        users.attach(&extra),
        Err(AttachError::TooManySessions(3))
    ));
    // Another user is not affected.
    let _bob = attach(&users, BOB, 5);
    // A session whose connection went away (its inbox dropped) no longer counts, even before its
    // guard is dropped.
    let (_guard, inbox) = held.pop().expect("three");
    drop(inbox);
    let again = users.attach(&extra);
    assert!(again.is_ok());
    assert_eq!(users.sessions_of(ALICE), 3);
}

#[test]
fn the_presence_table_counts_the_user_from_its_first_session_to_its_last() {
    let (users, presence) = table();
    let online = |p: &Presence| p.status(ALICE).online;
    assert!(!online(&presence));
    let first = attach(&users, ALICE, 1);
    assert!(online(&presence));
    let second = attach(&users, ALICE, 2);
    drop(first);
    // The second session keeps the user here.
    assert!(online(&presence));
    let d = presence.take_unsent();
    assert_eq!((d.online, d.offline), (vec![ALICE], vec![]));
    drop(second);
    assert_eq!(
        presence.status(ALICE),
        Status {
            online: false,
            last_seen_ms: Some(NOW_MS)
        }
    );
    assert_eq!(presence.take_unsent().offline, vec![ALICE]);
    assert!(users.is_empty(), "the entry goes with the last session");
}

#[test]
fn a_session_refused_at_the_cap_does_not_count_nor_leave() {
    let (users, presence) = table();
    let held: Vec<_> = (1..=3).map(|id| attach(&users, ALICE, id)).collect();
    let (extra, _inbox) = session(ALICE, 4);
    assert!(users.attach(&extra).is_err());
    drop(held);
    assert!(!presence.status(ALICE).online);
    assert_eq!(users.len(), 0);
}

async fn user_event(inbox: &mut SessionInbox) -> (String, String, String) {
    match next(inbox).await {
        Outbound::User { tail } => {
            let frame = frame(&tail);
            (
                header(&frame, "destination").to_owned(),
                header(&frame, "event").to_owned(),
                String::from_utf8(frame.body.to_vec()).unwrap(),
            )
        }
        other => panic!("expected a user event, got {other:?}"),
    }
}

#[tokio::test]
async fn notify_reaches_every_session_of_the_user_and_no_one_else() {
    let (users, _) = table();
    let (a, mut a_in) = attach(&users, ALICE, 1);
    let (_b, mut b_in) = attach(&users, ALICE, 2);
    let (_c, mut bob_in) = attach(&users, BOB, 3);
    let body = Bytes::from_static(br#"{"room_id":7}"#);
    assert_eq!(users.notify(ALICE, "room.added", &body), 2);
    let expected = (
        encode::USER_QUEUE.to_owned(),
        "room.added".to_owned(),
        r#"{"room_id":7}"#.to_owned(),
    );
    assert_eq!(user_event(&mut a_in).await, expected);
    assert_eq!(user_event(&mut b_in).await, expected);
    assert!(drain(&mut bob_in).is_empty());

    drop(a);
    assert_eq!(
        users.notify(ALICE, "dm.created", &Bytes::from_static(b"{}")),
        1
    );
    assert_eq!(user_event(&mut b_in).await.1, "dm.created");
    assert!(
        drain(&mut a_in).is_empty(),
        "a detached session gets nothing"
    );
    assert_eq!(users.notify(UserId(99), "room.added", &body), 0);
}

#[test]
fn a_joined_room_tells_the_presence_table() {
    let (users, presence) = table();
    let _a = attach(&users, ALICE, 1);
    let _ = presence.take_round();
    users.notify(ALICE, "room.added", &Bytes::from_static(b"{}"));
    assert_eq!(presence.take_round().stale, vec![ALICE]);
}

#[test]
fn the_budget_is_shared_by_the_users_sessions_and_survives_a_reconnect() {
    let (users, _) = table();
    let a = attach(&users, ALICE, 1);
    let _b = attach(&users, ALICE, 2);
    // The burst is shared: two sessions together get three sends.
    assert!(users.charge(ALICE).is_ok());
    assert!(users.charge(ALICE).is_ok());
    drop(a);
    assert!(users.charge(ALICE).is_ok());
    assert_eq!(users.charge(ALICE), Err(OverBudget));
    // Every session gone and a new one: the budget is not refilled by reconnecting.
    drop(_b);
    let _c = attach(&users, ALICE, 3);
    assert_eq!(users.charge(ALICE), Err(OverBudget));
    assert!(users.charge(BOB).is_ok(), "each user has a budget");
}

#[test]
fn trim_forgets_budgets_that_are_full_again_and_keeps_the_others() {
    let presence = Presence::new(Arc::new(FixedClock(NOW_MS)));
    let fast = UserConfig {
        // Full again a millisecond after one send.
        send_per_second: NonZeroU32::new(1000).unwrap(),
        send_burst: NonZeroU32::new(1).unwrap(),
        ..config()
    };
    let users = Users::new(fast, presence);
    users.charge(ALICE).expect("first send");
    assert_eq!(users.budgets(), 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    users.trim();
    assert_eq!(users.budgets(), 0);
    // A budget still spent stays.
    let (slow, _) = table();
    for _ in 0..3 {
        slow.charge(ALICE).expect("burst");
    }
    slow.trim();
    assert_eq!(slow.budgets(), 1);
}
