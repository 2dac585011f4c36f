//! Unit tests of the user actor.

use crate::delivery::{SessionHandle, SessionInbox};
use crate::directory::Directory;
use crate::testing::{RecordingDirectory, WAIT, ask, drain, frame, header, next};

use super::*;

const ALICE: UserId = UserId(1);

fn config() -> UserConfig {
    UserConfig {
        // One token per second: nothing refills during a test.
        send_per_second: NonZeroU32::new(1).unwrap(),
        send_burst: NonZeroU32::new(3).unwrap(),
        idle_timeout: Duration::from_secs(3600),
        max_sessions: 3,
    }
}

fn presence() -> Arc<Presence> {
    Presence::new(Arc::new(crate::testing::FixedClock(crate::testing::NOW_MS)))
}

async fn start() -> ActorRef<UserMessage> {
    start_with(presence()).await
}

async fn start_with(presence: Arc<Presence>) -> ActorRef<UserMessage> {
    let (directory, _rx) = RecordingDirectory::<Users>::spawn().await;
    let args = UserArguments {
        user_id: ALICE,
        config: config(),
        directory,
        presence,
    };
    let (user, _) = Actor::spawn(None, User, args)
        .await
        .expect("user actor starts");
    user
}

async fn attach(
    user: &ActorRef<UserMessage>,
    id: impl Into<SessionId>,
) -> (SendBudget, SessionInbox) {
    let (session, inbox) = SessionHandle::new(id, ALICE, 16);
    let budget = ask(user, |reply| UserMessage::Attach {
        session: session.into(),
        reply,
    })
    .await
    .expect("attached");
    (budget, inbox)
}

#[tokio::test]
async fn sessions_past_the_cap_are_refused_until_one_ends() {
    let user = start().await;
    let mut inboxes = Vec::new();
    for id in 1..=3 {
        inboxes.push(attach(&user, id).await.1);
    }
    let (extra, _extra_inbox) = SessionHandle::new(4, ALICE, 16);
    let refused = ask(&user, |reply| UserMessage::Attach {
        session: extra.clone().into(),
        reply,
    })
    .await;
    assert!(matches!(refused, Err(AttachError::TooManySessions(3))));
    // A session whose connection went away (its inbox dropped) no longer counts.
    drop(inboxes.pop());
    let again = ask(&user, |reply| UserMessage::Attach {
        session: extra.into(),
        reply,
    })
    .await;
    assert!(again.is_ok());
}

#[tokio::test]
async fn the_presence_table_counts_the_user_from_its_first_session_to_its_last() {
    let table = presence();
    let user = start_with(table.clone()).await;
    let online = |t: &Presence| t.status(ALICE).online;
    assert!(!online(&table));
    let (_, first) = attach(&user, 1).await;
    assert!(online(&table));
    let (_, second) = attach(&user, 2).await;
    user.cast(UserMessage::Detach {
        session_id: SessionId::from(1),
    })
    .expect("cast");
    drop(first);
    // The second session keeps the user here; a round trip makes sure the detach was handled.
    ask(&user, UserMessage::GetSessionCount).await;
    assert!(online(&table));
    let d = table.take_unsent();
    assert_eq!((d.online, d.offline), (vec![ALICE], vec![]));
    // The last session goes away without detaching (its connection dropped): the idle check sees it.
    drop(second);
    user.cast(UserMessage::IdleCheck).expect("cast");
    ask(&user, UserMessage::GetSessionCount).await;
    assert_eq!(
        table.status(ALICE),
        crate::presence::Status {
            online: false,
            last_seen_ms: Some(crate::testing::NOW_MS)
        }
    );
    assert_eq!(table.take_unsent().offline, vec![ALICE]);
}

fn notify(user: &ActorRef<UserMessage>, event: &'static str, body: &'static str) {
    user.cast(UserMessage::Notify {
        event,
        body: Bytes::from_static(body.as_bytes()),
    })
    .unwrap_or_else(|_| panic!("user actor is not running"));
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
async fn attach_returns_one_budget_shared_by_all_sessions() {
    let user = start().await;
    let (a, _a_in) = attach(&user, 1).await;
    let (b, _b_in) = attach(&user, 2).await;
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(ask(&user, UserMessage::GetSessionCount).await, 2);
}

#[tokio::test]
async fn notify_reaches_every_attached_session() {
    let user = start().await;
    let (_, mut a_in) = attach(&user, 1).await;
    let (_, mut b_in) = attach(&user, 2).await;
    notify(&user, "room.added", r#"{"room_id":7}"#);
    let expected = (
        encode::USER_QUEUE.to_owned(),
        "room.added".to_owned(),
        r#"{"room_id":7}"#.to_owned(),
    );
    assert_eq!(user_event(&mut a_in).await, expected);
    assert_eq!(user_event(&mut b_in).await, expected);

    user.cast(UserMessage::Detach {
        session_id: 1.into(),
    })
    .unwrap_or_else(|_| panic!("user actor is not running"));
    notify(&user, "dm.created", "{}");
    assert_eq!(user_event(&mut b_in).await.1, "dm.created");
    assert_eq!(ask(&user, UserMessage::GetSessionCount).await, 1);
    assert!(
        drain(&mut a_in).is_empty(),
        "a detached session gets nothing"
    );
}

#[tokio::test]
async fn closed_sessions_are_forgotten_on_notify() {
    let user = start().await;
    let (_, a_in) = attach(&user, 1).await;
    let (_, mut b_in) = attach(&user, 2).await;
    drop(a_in);
    notify(&user, "room.added", "{}");
    assert_eq!(user_event(&mut b_in).await.1, "room.added");
    assert_eq!(ask(&user, UserMessage::GetSessionCount).await, 1);
}

#[tokio::test]
async fn budget_allows_the_burst_then_refuses() {
    let user = start().await;
    let (a, _a_in) = attach(&user, 1).await;
    let (b, _b_in) = attach(&user, 2).await;
    // The burst is shared: two sessions together get three sends.
    assert!(a.check().is_ok());
    assert!(b.check().is_ok());
    assert!(a.check().is_ok());
    assert!(b.check().is_err());
    assert!(a.check().is_err());
}

#[tokio::test]
async fn user_without_sessions_passivates_through_its_directory() {
    // Real-time idle timer (tokio's test-util is not enabled for this crate); every wait is bounded.
    let users = Users {
        config: UserConfig {
            idle_timeout: Duration::from_millis(100),
            ..config()
        },
        presence: presence(),
    };
    let (directory, _) = Actor::spawn(None, Directory::new(users), ())
        .await
        .expect("directory starts");
    let user = ask(&directory, |reply| DirectoryMessage::Lookup(ALICE, reply))
        .await
        .expect("user actor spawns");
    user.wait(Some(WAIT))
        .await
        .expect("the idle user actor stops");
    assert_eq!(ask(&directory, DirectoryMessage::GetCount).await, 0);
    let again = ask(&directory, |reply| DirectoryMessage::Lookup(ALICE, reply))
        .await
        .expect("user actor spawns again");
    assert_ne!(again.get_id(), user.get_id());
}
