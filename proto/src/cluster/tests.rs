//! Round trips of every kind of envelope (proptest), and hostile bytes.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::v1::{
    Attachment, Batch, ChatMessage, DropUser, Failed, FanOut, GetRecent, Heartbeat, Hello,
    MarkRead, MemberJoined, MemberLeft, Moved, Notify, PresenceDelta, Publish, Receipt, Recent,
    ReplayItem, RoomEvent, RoomLost, RoomRefusal, RoomReply, SeqRange, SessionAddr, Subscribe,
    SubscribeOk, SubscriptionLost, ToRoom, ToSession, ToUser, Typing, Unsubscribe, UserEvent,
    Window, envelope, room_reply, to_room, to_session, to_user,
};

fn session() -> impl Strategy<Value = SessionAddr> {
    (any::<u32>(), any::<u64>(), any::<i64>()).prop_map(|(node, session, user_id)| SessionAddr {
        node,
        session,
        user_id,
    })
}

fn tail() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..256).prop_map(Bytes::from)
}

fn attachments() -> impl Strategy<Value = Vec<Attachment>> {
    let one = (
        any::<u128>(),
        ".{0,20}",
        "[a-z]{1,8}/[a-z]{1,8}",
        any::<u64>(),
        (any::<u32>(), any::<u32>()),
        tail(),
    )
        .prop_map(
            |(id, name, content_type, size, (width, height), thumbnail)| Attachment {
                id: Bytes::copy_from_slice(&id.to_be_bytes()),
                name,
                content_type,
                size,
                width,
                height,
                thumbnail,
            },
        );
    proptest::collection::vec(one, 0..3)
}

fn message() -> impl Strategy<Value = ChatMessage> {
    (
        any::<i64>(),
        any::<u64>(),
        any::<u128>(),
        any::<i64>(),
        ".{0,40}",
        any::<i64>(),
        (any::<u64>(), any::<u32>()),
        (proptest::option::of("[a-z0-9]{1,64}"), attachments()),
    )
        .prop_map(
            |(
                room_id,
                seq,
                id,
                sender_id,
                body,
                created_at_ms,
                (epoch, shard),
                (nonce, attachments),
            )| {
                ChatMessage {
                    room_id,
                    seq,
                    message_id: Bytes::copy_from_slice(&id.to_be_bytes()),
                    sender_id,
                    body,
                    created_at_ms,
                    epoch,
                    nonce,
                    shard,
                    attachments,
                    ..Default::default()
                }
            },
        )
}

fn to_room_op() -> impl Strategy<Value = to_room::Op> {
    prop_oneof![
        (
            proptest::option::of(".{0,16}"),
            ".{0,64}",
            ".{0,55}",
            proptest::option::of("[a-z0-9]{1,64}"),
            attachments(),
            (0..3i32, any::<u64>()),
        )
            .prop_map(
                |(receipt, body, traceparent, nonce, attachments, (kind, target_seq))| {
                    to_room::Op::Publish(Publish {
                        receipt,
                        body,
                        traceparent,
                        nonce,
                        attachments,
                        kind,
                        target_seq,
                        content_type: None,
                    })
                },
            ),
        proptest::option::of(any::<u64>())
            .prop_map(|since| to_room::Op::Subscribe(Subscribe { since })),
        Just(to_room::Op::Unsubscribe(Unsubscribe {})),
        Just(to_room::Op::Typing(Typing {})),
        any::<u64>().prop_map(|seq| to_room::Op::MarkRead(MarkRead { seq })),
        (
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            any::<u32>()
        )
            .prop_map(|(after, before, limit)| to_room::Op::GetRecent(GetRecent {
                after,
                before,
                limit
            })),
        (any::<i64>(), ".{0,20}").prop_map(|(user_id, username)| {
            to_room::Op::MemberJoined(MemberJoined { user_id, username })
        }),
        any::<i64>().prop_map(|user_id| to_room::Op::MemberLeft(MemberLeft { user_id })),
    ]
}

fn room_reply_result() -> impl Strategy<Value = room_reply::Result> {
    prop_oneof![
        (
            proptest::option::of((any::<u64>(), any::<u64>())),
            proptest::collection::vec((any::<u64>(), tail()), 0..4),
            any::<u64>()
        )
            .prop_map(|(backfill, replay, last_seq)| {
                room_reply::Result::Subscribed(SubscribeOk {
                    backfill: backfill.map(|(first, last)| SeqRange { first, last }),
                    replay: replay
                        .into_iter()
                        .map(|(seq, tail)| ReplayItem { seq, tail })
                        .collect(),
                    last_seq,
                })
            }),
        ("[a-z_]{1,20}", ".{0,40}").prop_map(|(code, message)| {
            room_reply::Result::Refused(RoomRefusal { code, message })
        }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(shard, epoch)| room_reply::Result::Moved(Moved { shard, epoch })),
        (
            any::<u64>(),
            proptest::option::of((any::<u64>(), proptest::collection::vec(message(), 0..3)))
        )
            .prop_map(|(acked_seq, window)| {
                room_reply::Result::Recent(Recent {
                    acked_seq,
                    window: window.map(|(from, messages)| Window { from, messages }),
                })
            }),
    ]
}

fn to_session_item() -> impl Strategy<Value = to_session::Item> {
    prop_oneof![
        (
            ".{0,16}",
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 16)
        )
            .prop_map(|(receipt_id, seq, id)| to_session::Item::Receipt(Receipt {
                receipt_id,
                seq,
                message_id: Bytes::from(id),
            })),
        (proptest::option::of(".{0,16}"), ".{0,40}").prop_map(|(receipt_id, message)| {
            to_session::Item::Failed(Failed {
                receipt_id,
                message,
            })
        }),
        tail().prop_map(|tail| to_session::Item::UserEvent(UserEvent { tail })),
        any::<i64>().prop_map(|room_id| {
            to_session::Item::SubscriptionLost(SubscriptionLost { room_id })
        }),
        (
            any::<i64>(),
            proptest::option::of(any::<u64>()),
            tail(),
            any::<i64>()
        )
            .prop_map(|(room_id, seq, tail, accepted_at_ms)| {
                to_session::Item::RoomEvent(RoomEvent {
                    room_id,
                    seq,
                    tail,
                    accepted_at_ms,
                })
            }),
    ]
}

fn body() -> impl Strategy<Value = envelope::Body> {
    prop_oneof![
        (any::<u32>(), ".{0,30}")
            .prop_map(|(node, advertise)| envelope::Body::Hello(Hello { node, advertise })),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(sent_ms, echo_ms, received)| {
            envelope::Body::Heartbeat(Heartbeat {
                sent_ms,
                echo_ms,
                received,
            })
        }),
        (
            any::<u32>(),
            any::<u64>(),
            any::<i64>(),
            session(),
            any::<u64>(),
            to_room_op()
        )
            .prop_map(|(shard, epoch, room_id, session, request_id, op)| {
                envelope::Body::ToRoom(ToRoom {
                    shard,
                    epoch,
                    room_id,
                    session: Some(session),
                    request_id,
                    op: Some(op),
                })
            }),
        (any::<u64>(), room_reply_result()).prop_map(|(request_id, result)| {
            envelope::Body::RoomReply(RoomReply {
                request_id,
                result: Some(result),
            })
        }),
        (any::<u64>(), to_session_item()).prop_map(|(session, item)| {
            envelope::Body::ToSession(ToSession {
                session,
                item: Some(item),
            })
        }),
        (
            any::<i64>(),
            proptest::option::of(any::<u64>()),
            tail(),
            proptest::option::of(any::<i64>()),
            any::<u64>(),
            any::<i64>(),
            "[0-9a-f-]{0,55}",
            any::<i64>()
        )
            .prop_map(
                |(
                    room_id,
                    seq,
                    tail,
                    skip_user,
                    epoch,
                    sent_at_ms,
                    traceparent,
                    accepted_at_ms,
                )| {
                    envelope::Body::FanOut(FanOut {
                        room_id,
                        seq,
                        tail,
                        skip_user,
                        epoch,
                        sent_at_ms,
                        traceparent,
                        accepted_at_ms,
                    })
                }
            ),
        (
            any::<bool>(),
            proptest::collection::vec(any::<i64>(), 0..8),
            proptest::collection::vec(any::<i64>(), 0..8)
        )
            .prop_map(|(reset, online, offline)| {
                envelope::Body::Presence(PresenceDelta {
                    reset,
                    online,
                    offline,
                })
            }),
        (any::<i64>(), any::<i64>()).prop_map(|(room_id, user_id)| {
            envelope::Body::DropUser(DropUser { room_id, user_id })
        }),
        any::<i64>().prop_map(|room_id| envelope::Body::RoomLost(RoomLost { room_id })),
        (
            any::<u32>(),
            any::<u64>(),
            any::<i64>(),
            prop_oneof![
                session().prop_map(to_user::Op::Attach),
                session().prop_map(to_user::Op::Detach),
                ("[a-z.]{1,20}", tail())
                    .prop_map(|(event, body)| to_user::Op::Notify(Notify { event, body })),
            ]
        )
            .prop_map(|(shard, epoch, user_id, op)| {
                envelope::Body::ToUser(ToUser {
                    shard,
                    epoch,
                    user_id,
                    op: Some(op),
                })
            }),
    ]
}

proptest! {
    #[test]
    fn every_envelope_round_trips(from_node in any::<u32>(), body in body()) {
        let e = Envelope { from_node, body: Some(body) };
        let bytes = encode_envelope(&e);
        let back = decode_envelope(&bytes, MAX_ENVELOPE_BYTES).expect("decodes");
        prop_assert_eq!(back, e);
    }

    #[test]
    fn every_batch_round_trips(from_node in any::<u32>(), bodies in proptest::collection::vec(body(), 0..6)) {
        let envelopes = bodies
            .into_iter()
            .map(|body| Envelope { from_node, body: Some(body) })
            .collect();
        let e = Envelope { from_node, body: Some(envelope::Body::Batch(Batch { envelopes })) };
        let bytes = encode_envelope(&e);
        let back = decode_envelope(&bytes, MAX_ENVELOPE_BYTES).expect("decodes");
        prop_assert_eq!(back, e);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_envelope(&bytes, MAX_ENVELOPE_BYTES);
    }

    #[test]
    fn truncated_envelopes_fail_or_decode_a_prefix(body in body(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_envelope(&Envelope { from_node: 7, body: Some(body) });
        let cut = cut.index(bytes.len().max(1));
        let _ = decode_envelope(&bytes[..cut], MAX_ENVELOPE_BYTES);
    }
}

#[test]
fn oversized_and_empty_envelopes_are_refused() {
    let big = Envelope {
        from_node: 1,
        body: Some(envelope::Body::FanOut(FanOut {
            room_id: 1,
            seq: Some(1),
            tail: Bytes::from(vec![b'x'; 2048]),
            skip_user: None,
            epoch: 1,
            sent_at_ms: 0,
            traceparent: String::new(),
            accepted_at_ms: 0,
        })),
    };
    let bytes = encode_envelope(&big);
    assert!(matches!(
        decode_envelope(&bytes, 1024),
        Err(EnvelopeError::TooLarge(_, 1024))
    ));
    assert!(decode_envelope(&bytes, MAX_ENVELOPE_BYTES).is_ok());
    let empty = encode_envelope(&Envelope {
        from_node: 1,
        body: None,
    });
    assert!(matches!(
        decode_envelope(&empty, MAX_ENVELOPE_BYTES),
        Err(EnvelopeError::Empty)
    ));
    // A length prefix claiming far more than the buffer holds.
    assert!(matches!(
        decode_envelope(&[0x3a, 0xff, 0xff, 0xff, 0x7f, 1], MAX_ENVELOPE_BYTES),
        Err(EnvelopeError::Decode(_))
    ));
}
