//! Tests of the persister against a real broker and a real MariaDB (see
//! [`crate::journal::testkit`]: skipped without them unless `BANTER_REQUIRE_KAFKA=1` /
//! `BANTER_REQUIRE_MYSQL=1`). Each test has its own topics, consumer group and database.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_actors::model::{ChatMessage, NewUser, RoomId, RoomKind, Seq, UserId};
use banter_actors::ports::{Journal, Store, append_and_wait};
use banter_actors::trace::TraceParent;
use futures::future::join_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::*;
use crate::config::KafkaConfig;
use crate::journal::KafkaJournal;
use crate::journal::testkit::{
    TestBroker, broker_or_skip, kafka_config, mysql_or_skip, persister_config,
};
use crate::persister::lag::LagMonitor;
use banter_store::MySqlStore;

mod fences;
mod restart;
mod throughput;

use banter_store::fixture::message as msg;

/// A test's MariaDB database with a user and `rooms` rooms.
struct Db {
    store: MySqlStore,
    name: String,
    user: UserId,
    rooms: Vec<RoomId>,
}

impl Db {
    async fn create(server: &str, rooms: usize) -> Db {
        let (store, name) = MySqlStore::connect_fresh_database(server)
            .await
            .expect("test database");
        let (user, ids) = banter_store::fixture::seed(&store, rooms).await;
        Db {
            store,
            name,
            user,
            rooms: ids,
        }
    }

    fn dyn_store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    async fn seqs(&self, room: RoomId) -> Vec<Seq> {
        let rows: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM messages WHERE room_id = ? ORDER BY seq")
                .bind(room.0)
                .fetch_all(self.store.pool())
                .await
                .expect("seqs");
        rows.into_iter().map(|s| s as Seq).collect()
    }

    async fn drop(self) {
        self.store
            .drop_database(&self.name)
            .await
            .expect("drop database");
    }
}

/// Appends `seqs` of every room, pipelined; returns the messages after every append was acknowledged.
async fn append_all(
    journal: &KafkaJournal,
    rooms: &[RoomId],
    seqs: std::ops::RangeInclusive<Seq>,
    sender: UserId,
) -> Vec<ChatMessage> {
    let mut sent = Vec::new();
    let mut acks = Vec::new();
    for seq in seqs {
        for &room in rooms {
            let m = msg(room, seq, sender);
            acks.push(append_and_wait(journal, &m, &TraceParent::new_root()));
            sent.push(m);
        }
    }
    for ack in join_all(acks).await {
        ack.expect("append acknowledged");
    }
    sent
}

async fn produce_raw(kafka: &KafkaConfig, key: &[u8], value: &[u8]) {
    let producer: FutureProducer = crate::journal::admin::client_config(kafka)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::to(&kafka.topic).key(key).payload(value),
            Timeout::After(Duration::from_secs(10)),
        )
        .await
        .expect("raw record delivered");
}

/// A persister with the lag gauges a node runs beside it ([`LagMonitor`]).
struct WithLag {
    persister: Persister,
    lag: LagMonitor,
}

impl WithLag {
    async fn stop(self) {
        self.persister.stop().await;
        self.lag.stop().await;
    }
}

/// Starts a persister and the lag gauges, as a node does.
async fn start_persister(
    kafka: &KafkaConfig,
    config: &PersisterConfig,
    store: Arc<dyn Store>,
) -> anyhow::Result<WithLag> {
    Ok(WithLag {
        persister: Persister::start(kafka, config, store).await?,
        lag: LagMonitor::start(kafka, config)?,
    })
}

/// Waits until `check` holds, failing the test after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Returns the lag gauges of `topic` as the metrics endpoint renders them.
fn lag_of(topic: &str) -> BTreeMap<i32, f64> {
    let prefix = format!("{}{{", crate::metrics::PERSISTER_LAG);
    banter_telemetry::render()
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&format!("topic=\"{topic}\"")))
        .filter_map(|l| {
            let p = l
                .split("partition=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()?;
            let v = l.rsplit(' ').next()?.parse().ok()?;
            Some((p, v))
        })
        .collect()
}

/// Reads `n` records of the dead-letter topic from its start.
fn read_dead_letters(kafka: &KafkaConfig, n: usize) -> Vec<OwnedMessage> {
    // librdkafka wants a group even for a plain assignment; this one never commits.
    let consumer: BaseConsumer = crate::journal::admin::client_config(kafka)
        .set("group.id", "test-reader")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..kafka.partitions {
        tpl.add_partition_offset(&kafka.dead_letter_topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            out.push(m.detach());
        }
    }
    out
}

/// Returns how many records the dead-letter topic holds.
fn dead_letter_count(kafka: &KafkaConfig) -> i64 {
    let consumer: BaseConsumer = crate::journal::admin::client_config(kafka)
        .set("group.id", "test-reader")
        .create()
        .expect("consumer");
    (0..kafka.partitions)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(&kafka.dead_letter_topic, p, Duration::from_secs(10))
                .expect("watermarks");
            high - low
        })
        .sum()
}

fn header<'a>(m: &'a OwnedMessage, key: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

async fn setup(test: &str, rooms: usize) -> Option<(TestBroker, Db)> {
    let mysql = mysql_or_skip(test)?;
    let broker = broker_or_skip(test).await?;
    banter_telemetry::install();
    Some((broker, Db::create(&mysql, rooms).await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_every_record_once_in_order_and_dead_letters_what_it_cannot() {
    let Some((broker, db)) = setup(
        "stores_every_record_once_in_order_and_dead_letters_what_it_cannot",
        4,
    )
    .await
    else {
        return;
    };
    let kafka = kafka_config(&broker.brokers, 3);
    let config = persister_config(&kafka);
    let store = db.dyn_store();
    let journal = KafkaJournal::start(&kafka, &config.group_id, store.clone())
        .await
        .expect("journal");
    let (rooms, user) = (db.rooms.clone(), db.user);
    let per_room: Seq = 120;
    let sent = append_all(&journal, &rooms, 1..=per_room, user).await;

    // Journaled, not stored: the journal knows, the store does not (no persister yet).
    for &room in &rooms {
        assert_eq!(store.last_seq(room).await.expect("store"), 0);
        assert_eq!(journal.last_seq(room).await.expect("journal"), per_room);
    }
    let tail = journal
        .read_after(rooms[3], per_room - 3, 10)
        .await
        .expect("read after");
    assert_eq!(
        tail.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [per_room - 2, per_room - 1, per_room]
    );

    // Records the store can never take, between good ones: garbage under room 0's key, a message of a
    // room that does not exist, and a message id already stored under another seq (room 1, seq 1's).
    let garbage = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff not a chat message";
    produce_raw(&kafka, rooms[0].to_string().as_bytes(), garbage).await;
    let ghost = RoomId(rooms[3].0 + 1000);
    append_all(&journal, &[ghost], 1..=1, user).await;
    let first_of_room1 = sent
        .iter()
        .find(|m| m.room_id == rooms[1] && m.seq == 1)
        .expect("sent");
    let mut reused = msg(rooms[1], per_room + 1, user);
    reused.message_id = first_of_room1.message_id;
    append_and_wait(&journal, &reused, &TraceParent::new_root())
        .await
        .expect("appended");
    append_all(&journal, &rooms[..1], per_room + 1..=per_room + 10, user).await;

    let persister = start_persister(&kafka, &config, store.clone())
        .await
        .expect("persister");
    let expected: Vec<Seq> = vec![per_room + 10, per_room, per_room, per_room];
    let total: i64 = expected.iter().sum::<Seq>() as i64;
    eventually(Duration::from_secs(60), "every storable row", || async {
        db.count("messages").await >= total
    })
    .await;
    for (&room, &last) in rooms.iter().zip(&expected) {
        assert_eq!(
            db.seqs(room).await,
            (1..=last).collect::<Vec<_>>(),
            "room {room}"
        );
    }
    let stored = store
        .messages_after(rooms[2], 0, 1000)
        .await
        .expect("messages");
    let sent_room2: Vec<_> = sent.iter().filter(|m| m.room_id == rooms[2]).collect();
    assert_eq!(stored.len(), sent_room2.len());
    for (s, m) in stored.iter().zip(sent_room2) {
        assert_eq!(s, m);
    }

    // The three refused records, each with its reason and origin (a dead letter may still be on its
    // way when the rows are in: a conflict first reserves its seq in the store).
    eventually(Duration::from_secs(30), "three dead letters", || async {
        dead_letter_count(&kafka) >= 3
    })
    .await;
    assert_eq!(dead_letter_count(&kafka), 3);
    let dead = read_dead_letters(&kafka, 3);
    let reasons: BTreeSet<_> = dead
        .iter()
        .filter_map(|m| header(m, "dlq-reason"))
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["conflict", "room-not-found", "undecodable"])
    );
    for m in &dead {
        assert_eq!(header(m, "dlq-topic"), Some(kafka.topic.as_str()));
        assert!(
            header(m, "dlq-partition")
                .and_then(|p| p.parse::<i32>().ok())
                .is_some()
        );
        assert!(
            header(m, "dlq-offset")
                .and_then(|o| o.parse::<i64>().ok())
                .is_some()
        );
        assert!(header(m, "dlq-error").is_some_and(|e| !e.is_empty()));
    }
    let undecodable = dead
        .iter()
        .find(|m| header(m, "dlq-reason") == Some("undecodable"))
        .expect("undecodable dead letter");
    assert_eq!(undecodable.payload(), Some(&garbage[..]));
    assert_eq!(undecodable.key(), Some(rooms[0].to_string().as_bytes()));
    let conflict = dead
        .iter()
        .find(|m| header(m, "dlq-reason") == Some("conflict"))
        .expect("conflict dead letter");
    assert!(
        header(conflict, TRACEPARENT).is_some(),
        "original headers kept"
    );

    // Everything is committed: the lag drains to 0 on every partition.
    eventually(Duration::from_secs(30), "lag 0", || async {
        let lag = lag_of(&kafka.topic);
        lag.len() == kafka.partitions as usize && lag.values().all(|v| *v == 0.0)
    })
    .await;
    // The dead-lettered row's seq stays taken though neither the store nor the tail holds the row:
    // a room activating now continues above it.
    assert_eq!(store.last_seq(rooms[1]).await.expect("store"), per_room + 1);
    assert_eq!(
        journal.last_seq(rooms[1]).await.expect("journal"),
        per_room + 1
    );
    let text = banter_telemetry::render();
    assert!(
        text.contains("banter_persister_dead_letters_total{reason=\"undecodable\"}"),
        "{text}"
    );
    persister.stop().await;

    // The tail past the committed offset, with the persister stopped: store + journal.
    append_all(&journal, &rooms[2..3], per_room + 1..=per_room + 3, user).await;
    assert_eq!(store.last_seq(rooms[2]).await.expect("store"), per_room);
    assert_eq!(
        journal.last_seq(rooms[2]).await.expect("journal"),
        per_room + 3
    );
    let window = journal
        .read_after(rooms[2], per_room - 2, 10)
        .await
        .expect("read after");
    assert_eq!(
        window.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (per_room - 1..=per_room + 3).collect::<Vec<_>>()
    );
    db.drop().await;
}

const TRACEPARENT: &str = crate::journal::TRACEPARENT_HEADER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_pauses_consumption_and_loses_nothing() {
    let Some((broker, db)) = setup("a_store_outage_pauses_consumption_and_loses_nothing", 2).await
    else {
        return;
    };
    let kafka = kafka_config(&broker.brokers, 2);
    let config = persister_config(&kafka);
    let store = db.dyn_store();
    let journal = KafkaJournal::start(&kafka, &config.group_id, store.clone())
        .await
        .expect("journal");
    let persister = start_persister(&kafka, &config, store.clone())
        .await
        .expect("persister");
    let (rooms, user) = (db.rooms.clone(), db.user);
    append_all(&journal, &rooms, 1..=20, user).await;
    eventually(Duration::from_secs(30), "the first rows", || async {
        db.count("messages").await == 40
    })
    .await;

    // The table disappears: every insert fails as a store error, not as a refused row.
    sqlx::query("RENAME TABLE messages TO messages_offline")
        .execute(db.store.pool())
        .await
        .expect("rename");
    append_all(&journal, &rooms, 21..=220, user).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        db.count("messages_offline").await,
        40,
        "nothing written during the outage"
    );
    eventually(
        Duration::from_secs(10),
        "lag to show the outage",
        || async { lag_of(&kafka.topic).values().sum::<f64>() >= 400.0 },
    )
    .await;

    sqlx::query("RENAME TABLE messages_offline TO messages")
        .execute(db.store.pool())
        .await
        .expect("rename back");
    eventually(
        Duration::from_secs(30),
        "every row after the outage",
        || async { db.count("messages").await == 440 },
    )
    .await;
    for &room in &rooms {
        assert_eq!(db.seqs(room).await, (1..=220).collect::<Vec<_>>());
    }
    eventually(Duration::from_secs(30), "lag 0", || async {
        let lag = lag_of(&kafka.topic);
        !lag.is_empty() && lag.values().all(|v| *v == 0.0)
    })
    .await;
    assert_eq!(
        dead_letter_count(&kafka),
        0,
        "an outage dead-letters nothing"
    );
    persister.stop().await;
    db.drop().await;
}
