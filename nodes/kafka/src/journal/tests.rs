//! Tests of the Kafka journal. Those that need a broker get one from [`super::testkit`] (skipped
//! without one unless `BANTER_REQUIRE_KAFKA=1`); the store is an in-memory SQLite one, empty: what the
//! journal reports comes from the topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_actors::model::{ChatMessage, RoomId, UserId};
use banter_actors::ports::{Journal, Store, append_and_wait};
use banter_actors::trace::TraceParent;
use futures::future::join_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use super::testkit::{broker_or_skip, kafka_config};
use super::*;
use banter_store::SqliteStore;

/// Returns a message; an even seq carries a nonce.
fn msg(room: i64, seq: u64) -> ChatMessage {
    ChatMessage {
        room_id: RoomId(room),
        seq,
        message_id: Uuid::now_v7(),
        sender_id: UserId(7),
        body: format!("message {seq} of room {room}"),
        created_at_ms: 1_700_000_000_000 + seq as i64,
        nonce: nonce_of(seq),
        attachments: Vec::new(),
        ..Default::default()
    }
}

fn nonce_of(seq: u64) -> Option<String> {
    seq.is_multiple_of(2).then(|| format!("nonce-{seq}"))
}

async fn empty_store() -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open("sqlite::memory:")
            .await
            .expect("sqlite store"),
    )
}

#[test]
fn merge_takes_the_lowest_seqs_once() {
    let seqs = |v: &[ChatMessage]| v.iter().map(|m| m.seq).collect::<Vec<_>>();
    let stored = vec![msg(1, 4), msg(1, 5), msg(1, 6)];
    let tail = vec![msg(1, 6), msg(1, 7), msg(1, 8), msg(1, 7)];
    assert_eq!(
        seqs(&merge(stored.clone(), tail.clone(), 10)),
        [4, 5, 6, 7, 8]
    );
    assert_eq!(seqs(&merge(stored, tail, 2)), [4, 5]);
    assert!(merge(Vec::new(), Vec::new(), 5).is_empty());
}

#[tokio::test]
async fn an_unreachable_broker_fails_start_in_bounded_time_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut kafka = kafka_config(&format!("127.0.0.1:{port}"), 1);
    kafka.startup_timeout_ms = 1_500;
    let started = Instant::now();
    let err = KafkaJournal::start(&kafka, "g", empty_store().await)
        .await
        .err()
        .expect("no broker there");
    let text = format!("{err:#}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_appends_resolve_and_the_tail_reads_see_them() {
    let Some(broker) =
        broker_or_skip("pipelined_appends_resolve_and_the_tail_reads_see_them").await
    else {
        return;
    };
    let kafka = kafka_config(&broker.brokers, 3);
    let journal = KafkaJournal::start(&kafka, "nobody-commits", empty_store().await)
        .await
        .expect("journal starts");
    assert_eq!(journal.partitions(), 3);
    let rooms = [11_i64, 12, 13, 14];
    let per_room = 50_u64;
    let trace = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .expect("valid traceparent");
    // Pipelined: every append is started before any is awaited.
    let mut appends = Vec::new();
    for seq in 1..=per_room {
        for room in rooms {
            appends.push(append_and_wait(&journal, &msg(room, seq), &trace));
        }
    }
    // Without awaiting the appends: the tail reads settle the room's partition first.
    assert_eq!(
        journal.last_seq(RoomId(11)).await.expect("last seq"),
        per_room
    );
    for r in join_all(appends).await {
        r.expect("append acknowledged");
    }
    for room in rooms {
        assert_eq!(
            journal.last_seq(RoomId(room)).await.expect("last seq"),
            per_room
        );
    }
    assert_eq!(journal.last_seq(RoomId(99)).await.expect("last seq"), 0);
    let window = journal
        .read_after(RoomId(12), 10, 5)
        .await
        .expect("read after");
    let seqs: Vec<_> = window.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [11, 12, 13, 14, 15]);
    assert!(window.iter().all(|m| m.room_id == RoomId(12)));
    assert_eq!(window[0].body, "message 11 of room 12");
    // The nonce travels with its record, and a record without one reads back without one.
    assert!(window.iter().all(|m| m.nonce == nonce_of(m.seq)));
    assert_eq!(window[1].nonce.as_deref(), Some("nonce-12"));
    assert!(
        journal
            .read_after(RoomId(12), per_room, 5)
            .await
            .expect("read after")
            .is_empty()
    );

    // The record on the wire: key, value, traceparent header, and the room's partition.
    // librdkafka wants a group even for a plain assignment; this one never commits.
    let consumer: BaseConsumer = admin::client_config(&kafka)
        .set("group.id", "test-reader")
        .create()
        .expect("consumer");
    let partition = journal.partition_of(RoomId(13));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&kafka.topic, partition, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let raw = loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) if m.key() == Some(b"13") => break m.detach(),
            Some(Ok(_)) => {}
            other => panic!("no record of room 13: {other:?}"),
        }
    };
    let (decoded, _) = record::decode(raw.key(), raw.payload()).expect("decodes");
    assert_eq!((decoded.room_id, decoded.seq), (RoomId(13), 1));
    let headers = raw.headers().expect("headers");
    let tp = headers
        .iter()
        .find(|h| h.key == TRACEPARENT_HEADER)
        .and_then(|h| h.value)
        .expect("traceparent header");
    assert_eq!(tp, trace.as_str().as_bytes());

    // librdkafka's own murmur2_random puts a key where the journal's function does.
    let producer: FutureProducer = admin::client_config(&kafka)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    for room in [1_i64, 2, 3, 17, 12345, 987_654_321] {
        let key = RoomKey::new(RoomId(room));
        let delivery = producer
            .send(
                FutureRecord::<[u8], [u8]>::to(&kafka.dead_letter_topic)
                    .key(key.as_bytes())
                    .payload(b"x"),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .expect("delivered");
        assert_eq!(
            delivery.partition,
            record::partition_for(key.as_bytes(), kafka.partitions),
            "room {room}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_past_the_timeout_fails_appends_then_they_work_again() {
    let test = "a_broker_down_past_the_timeout_fails_appends_then_they_work_again";
    let Some(mut broker) = broker_or_skip(test).await else {
        return;
    };
    let mut kafka = kafka_config(&broker.brokers, 2);
    kafka.message_timeout_ms = 2_000;
    let journal = KafkaJournal::start(&kafka, "nobody-commits", empty_store().await)
        .await
        .expect("journal starts");
    let trace = TraceParent::new_root();
    append_and_wait(&journal, &msg(5, 1), &trace)
        .await
        .expect("broker up");
    if !broker.kill9() {
        eprintln!("SKIPPED {test}: the broker was not started by the test");
        return;
    }
    // Down past message.timeout.ms: the append fails, it does not hang.
    let started = Instant::now();
    let failed = append_and_wait(&journal, &msg(5, 2), &trace).await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // Back: appends succeed again once the client has reconnected. The failed one bumped the
    // idempotent producer's epoch, which tansu cannot take: the journal replaced its producer.
    broker.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match append_and_wait(&journal, &msg(5, 2), &trace).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "still failing: {e}"),
        }
    }
    for seq in 3..=5 {
        append_and_wait(&journal, &msg(5, seq), &trace)
            .await
            .expect("broker back");
    }
    assert_eq!(journal.last_seq(RoomId(5)).await.expect("last seq"), 5);
    let seqs: Vec<_> = journal
        .read_after(RoomId(5), 0, 10)
        .await
        .expect("read after")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert!(!broker.log().contains("panicked"), "{}", broker.log());
}
