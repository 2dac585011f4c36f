//! Round trips of what crosses nodes, and the refusal of what does not fit.

use proptest::prelude::*;

use super::*;
use crate::model::ChatMessage;
use crate::room::{Recent, Window};

fn tail() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn outbound() -> impl Strategy<Value = Outbound> {
    prop_oneof![
        (
            any::<i64>(),
            proptest::option::of(any::<u64>()),
            tail(),
            any::<i64>()
        )
            .prop_map(|(r, seq, tail, accepted_at_ms)| Outbound::Room {
                room_id: RoomId(r),
                seq,
                tail,
                accepted_at_ms,
            }),
        tail().prop_map(|tail| Outbound::User { tail }),
        (".{0,16}", any::<u64>(), any::<u128>()).prop_map(|(receipt_id, seq, id)| {
            Outbound::Receipt {
                receipt_id,
                seq,
                message_id: uuid::Uuid::from_u128(id),
            }
        }),
        (proptest::option::of(".{0,16}"), ".{0,40}").prop_map(|(receipt_id, message)| {
            Outbound::Failed {
                receipt_id,
                message,
            }
        }),
        any::<i64>().prop_map(|r| Outbound::SubscriptionLost { room_id: RoomId(r) }),
    ]
}

proptest! {
    #[test]
    fn session_items_round_trip(item in outbound()) {
        let wire = v1::to_session::Item::from(item.clone());
        prop_assert_eq!(Outbound::try_from(wire), Ok(item));
    }

    #[test]
    fn subscribe_replies_round_trip(
        last in 10u64..1_000_000,
        backfill in proptest::option::of((1u64..5, 5u64..10)),
        replay in proptest::collection::btree_map(0u64..10, tail(), 0..5),
    ) {
        let ok = SubscribeOk {
            backfill,
            replay: replay.into_iter().collect(),
            last_seq: last,
        };
        let wire = v1::SubscribeOk::from(ok.clone());
        prop_assert_eq!(SubscribeOk::try_from(wire), Ok(ok));
    }

    #[test]
    fn session_addresses_round_trip(node in any::<u32>(), local in any::<u64>(), user in any::<i64>()) {
        let id = SessionId::new(NodeId(node), local);
        let back = from_session_addr(Some(session_addr(id, UserId(user))));
        prop_assert_eq!(back, Ok((id, UserId(user))));
    }
}

#[test]
fn recent_windows_round_trip_and_bad_ones_are_refused() {
    let msg = |seq| ChatMessage {
        room_id: RoomId(1),
        seq,
        message_id: uuid::Uuid::now_v7(),
        sender_id: UserId(2),
        body: format!("m{seq}"),
        created_at_ms: 5,
        nonce: None,
        attachments: Vec::new(),
        ..Default::default()
    };
    let recent = Recent {
        acked_seq: 9,
        window: Some(Window {
            from: 6,
            messages: vec![msg(9), msg(8), msg(7)],
        }),
    };
    let wire = v1::Recent::from(recent.clone());
    assert_eq!(Recent::try_from(wire.clone()), Ok(recent));
    let mut oldest_first = wire.clone();
    if let Some(w) = oldest_first.window.as_mut() {
        w.messages.reverse();
    }
    assert!(Recent::try_from(oldest_first).is_err());
    let mut beyond = wire;
    beyond.acked_seq = 8;
    assert!(Recent::try_from(beyond).is_err());
}

#[test]
fn refusals_round_trip_with_stable_codes() {
    let room = RoomId(3);
    for e in [
        RoomError::NotMember(room),
        RoomError::NotFound(room),
        RoomError::Unavailable(room, "journal down".into()),
    ] {
        let wire = refusal(&e);
        assert_eq!(
            room_error(room, wire).map(|e| e.to_string()),
            Ok(e.to_string())
        );
    }
    assert_eq!(refusal(&RoomError::NotMember(room)).code, "not_member");
    let unknown = v1::RoomRefusal {
        code: "teapot".into(),
        message: String::new(),
    };
    assert_eq!(
        room_error(room, unknown).err(),
        Some(WireError::Invalid("refusal code"))
    );
}

#[test]
fn parts_that_do_not_fit_are_refused() {
    let receipt = v1::to_session::Item::Receipt(v1::Receipt {
        receipt_id: "r".into(),
        seq: 1,
        message_id: Bytes::from_static(b"short"),
    });
    assert_eq!(
        Outbound::try_from(receipt),
        Err(WireError::Invalid("receipt message id"))
    );
    let upside_down = v1::SubscribeOk {
        backfill: Some(v1::SeqRange { first: 5, last: 2 }),
        replay: Vec::new(),
        last_seq: 9,
    };
    assert!(SubscribeOk::try_from(upside_down).is_err());
    let beyond = v1::SubscribeOk {
        backfill: None,
        replay: vec![v1::ReplayItem {
            seq: 10,
            tail: Bytes::new(),
        }],
        last_seq: 9,
    };
    assert!(SubscribeOk::try_from(beyond).is_err());
    let unordered = v1::SubscribeOk {
        backfill: None,
        replay: vec![
            v1::ReplayItem {
                seq: 3,
                tail: Bytes::new(),
            },
            v1::ReplayItem {
                seq: 2,
                tail: Bytes::new(),
            },
        ],
        last_seq: 9,
    };
    assert!(SubscribeOk::try_from(unordered).is_err());
    assert_eq!(from_session_addr(None), Err(WireError::Missing("session")));
}
