//! Ceilings of the stack, measured beside Banter in the same run:
//! - [`produce`]: rdkafka producing Banter's journal records (same encoding, keys, header, producer
//!   settings) straight to the same broker: the broker's own ceiling for the write path;
//! - [`consume`]: rdkafka reading the journal topic alone: the broker's read ceiling, which bounds the
//!   persister as much as the database does;
//! - [`insert`]: plain multi-row INSERTs of the rows the persister stored, in the same batch size, into
//!   a copy of the `messages` table in the same database: the database's ceiling;
//! - [`drain`]: the persister's rate, read from outside as the row count of `messages` grows.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use banter_proto::v1::ChatMessage;
use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sqlx::{MySql, QueryBuilder, Row};

/// A measured rate.
#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    /// What was measured.
    pub what: String,
    /// Items (records, rows).
    pub items: u64,
    /// Seconds.
    pub secs: f64,
    /// Items per second.
    pub per_sec: f64,
}

impl Rate {
    fn new(what: impl Into<String>, items: u64, took: Duration) -> Rate {
        let secs = took.as_secs_f64().max(1e-9);
        Rate {
            what: what.into(),
            items,
            secs,
            per_sec: items as f64 / secs,
        }
    }
}

/// How to produce the ceiling records.
#[derive(Clone, Debug, Serialize)]
pub struct ProduceSpec {
    /// Bootstrap brokers.
    pub brokers: String,
    /// Topic (created with `partitions` when missing).
    pub topic: String,
    /// Partitions.
    pub partitions: i32,
    /// Records.
    pub messages: u64,
    /// Body bytes of each record's message.
    pub body_bytes: usize,
    /// Rooms the records are spread over (the record key).
    pub rooms: u64,
    /// `linger.ms`, as the journal's.
    pub linger_ms: u64,
}

/// Produces `messages` journal records as fast as the broker acknowledges them (all enqueued at
/// once, as the journal pipelines its appends) and returns the rate.
pub async fn produce(spec: &ProduceSpec) -> Result<Rate> {
    let producer = warm_producer(spec).await?;
    let records: Vec<(String, Vec<u8>)> = (0..spec.messages).map(|i| record(spec, i)).collect();
    let started = Instant::now();
    let mut acks = Vec::with_capacity(records.len());
    for (key, value) in &records {
        acks.push(enqueue(&producer, spec, key, value)?);
    }
    for ack in futures::future::join_all(acks).await {
        ack.context("delivery report lost")?
            .map_err(|(e, _)| e)
            .context("produce")?;
    }
    let took = started.elapsed();
    producer.flush(Duration::from_secs(10)).context("flush")?;
    Ok(Rate::new(
        "rdkafka produce (broker ceiling)",
        spec.messages,
        took,
    ))
}

/// A producer with the journal's settings, its topic created and one record acknowledged (the
/// connection and the producer id are set up outside any measurement, as in a running journal).
async fn warm_producer(spec: &ProduceSpec) -> Result<FutureProducer> {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &spec.brokers);
    ensure_topic(&base, spec).await?;
    let producer: FutureProducer = base
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", spec.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "60000")
        .set("partitioner", "murmur2_random")
        .create()
        .context("producer")?;
    producer
        .send(
            FutureRecord::to(&spec.topic).key("0").payload("warm-up"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .context("warm-up record")?;
    Ok(producer)
}

/// Journal record `i` of a run: key = room id, value = the `banter.v1.ChatMessage` encoding, rooms
/// taken in turn.
fn record(spec: &ProduceSpec, i: u64) -> (String, Vec<u8>) {
    let rooms = spec.rooms.max(1);
    let room = (i % rooms) as i64 + 1;
    let m = ChatMessage {
        room_id: room,
        seq: i / rooms + 1,
        message_id: uuid::Uuid::now_v7().as_bytes().to_vec().into(),
        sender_id: 1,
        body: "x".repeat(spec.body_bytes),
        created_at_ms: 1_700_000_000_000,
        nonce: None,
        epoch: 0,
        shard: 0,
        attachments: Vec::new(),
        ..Default::default()
    };
    (room.to_string(), m.encode_to_vec())
}

/// Enqueues one record with a `traceparent` header, as the journal does.
fn enqueue(
    producer: &FutureProducer,
    spec: &ProduceSpec,
    key: &str,
    value: &[u8],
) -> Result<rdkafka::producer::DeliveryFuture> {
    let headers = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    });
    let record = FutureRecord::to(&spec.topic)
        .key(key)
        .payload(value)
        .headers(headers);
    producer
        .send_result(record)
        .map_err(|(e, _)| e)
        .context("enqueue")
}

/// Creates the spec's topic unless it exists.
async fn ensure_topic(base: &ClientConfig, spec: &ProduceSpec) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base.create().context("admin client")?;
    let topic = NewTopic::new(&spec.topic, spec.partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin
        .create_topics([&topic], &options)
        .await
        .context("create topic")?
    {
        match result {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("create topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Reads every record of `topic` from the beginning with rdkafka alone (no group membership, no
/// store) and returns the rate from the first record to the last: what the broker serves one consumer.
pub async fn consume(brokers: &str, topic: &str) -> Result<Rate> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("loadgen-consume-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .context("consumer")?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let meta = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .context("metadata")?;
        let partitions: Vec<i32> = meta
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut expected = 0u64;
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .context("watermarks")?;
            expected += (high - low).max(0) as u64;
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .context("assignment")?;
        }
        if expected == 0 {
            bail!("topic {topic} is empty");
        }
        consumer.assign(&tpl).context("assign")?;
        let mut read = 0u64;
        let mut first = None;
        while read < expected {
            match consumer.poll(Duration::from_secs(30)) {
                Some(Ok(_)) => {
                    first.get_or_insert_with(Instant::now);
                    read += 1;
                }
                Some(Err(e)) => bail!("consume: {e}"),
                None => bail!("consume stalled at {read} of {expected}"),
            }
        }
        let took = first.map_or(Duration::ZERO, |t| t.elapsed());
        Ok(Rate::new(
            "rdkafka consume (broker read ceiling)",
            read,
            took,
        ))
    })
    .await
    .context("consumer task")?
}

/// Copies every row of `messages` into a fresh table of the same definition with plain multi-row
/// INSERTs of `batch` rows, one transaction each, and returns the rate (the table is dropped after).
pub async fn insert(mysql_url: &str, batch: usize) -> Result<Rate> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(mysql_url)
        .await
        .context("connect to MySQL")?;
    let rows = sqlx::query(
        "SELECT room_id, seq, message_id, sender_id, body, created_at_ms FROM messages ORDER BY room_id, seq",
    )
    .fetch_all(&pool)
    .await
    .context("read messages")?;
    if rows.is_empty() {
        bail!("no rows in messages to copy");
    }
    sqlx::query("DROP TABLE IF EXISTS loadgen_insert_ceiling")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE loadgen_insert_ceiling LIKE messages")
        .execute(&pool)
        .await
        .context("create copy table")?;
    let started = Instant::now();
    for chunk in rows.chunks(batch.max(1)) {
        let mut tx = pool.begin().await?;
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO loadgen_insert_ceiling (room_id, seq, message_id, sender_id, body, created_at_ms) ",
        );
        q.push_values(chunk, |mut b, row| {
            b.push_bind(row.get::<i64, _>(0))
                .push_bind(row.get::<i64, _>(1))
                .push_bind(row.get::<Vec<u8>, _>(2))
                .push_bind(row.get::<i64, _>(3))
                .push_bind(row.get::<String, _>(4))
                .push_bind(row.get::<i64, _>(5));
        });
        q.build().execute(&mut *tx).await.context("insert")?;
        tx.commit().await?;
    }
    let took = started.elapsed();
    sqlx::query("DROP TABLE loadgen_insert_ceiling")
        .execute(&pool)
        .await?;
    Ok(Rate::new(
        format!("plain multi-row INSERT, {batch} rows/statement (database ceiling)"),
        rows.len() as u64,
        took,
    ))
}

/// Waits until `messages` holds `expect` rows (or `timeout` passes) and returns the rate from the
/// first new row to the last: the persister's drain rate, seen from the database.
pub async fn drain(mysql_url: &str, expect: u64, timeout: Duration) -> Result<Rate> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(mysql_url)
        .await
        .context("connect to MySQL")?;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM messages")
            .fetch_one(&pool)
            .await
            .map(|n| n as u64)
    };
    let deadline = Instant::now() + timeout;
    let initial = count().await?;
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let n = count().await?;
        let now = Instant::now();
        if first.is_none() && n > initial {
            first = Some((now, n));
        }
        if n >= expect {
            let (t0, n0) = first.unwrap_or((now, n));
            return Ok(Rate::new(
                "persister drain (rows/s into MySQL)",
                n - n0,
                now.duration_since(t0),
            ));
        }
        if now >= deadline {
            bail!("messages has {n} rows of {expect} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// rdkafka alone at a fixed rate: what the broker's produce latency is at that rate.
#[derive(Clone, Debug, Serialize)]
pub struct ProduceLatency {
    /// Offered records per second.
    pub offered: f64,
    /// Records acknowledged.
    pub records: u64,
    /// Enqueue → delivery report.
    pub ack: crate::report::Latency,
}

/// Produces journal records at `rate` per second for `secs` seconds (open loop, 1 ms ticks) and
/// returns the enqueue → acknowledgement latency.
pub async fn produce_at(spec: &ProduceSpec, rate: f64, secs: f64) -> Result<ProduceLatency> {
    let producer = warm_producer(spec).await?;
    let hist = std::sync::Arc::new(std::sync::Mutex::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?,
    ));
    let total = (rate * secs).round() as u64;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut acks = Vec::with_capacity(total as usize);
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(total);
        while sent < due {
            let (key, value) = record(spec, sent);
            let ack = enqueue(&producer, spec, &key, &value)?;
            let at = Instant::now();
            let hist = hist.clone();
            acks.push(tokio::spawn(async move {
                let ok = matches!(ack.await, Ok(Ok(_)));
                let us = at.elapsed().as_micros() as u64;
                hist.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .saturating_record(us.max(1));
                ok
            }));
            sent += 1;
        }
    }
    let mut records = 0;
    for a in acks {
        if a.await.unwrap_or(false) {
            records += 1;
        }
    }
    let hist = hist.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(ProduceLatency {
        offered: rate,
        records,
        ack: crate::report::Latency::of(&hist),
    })
}
