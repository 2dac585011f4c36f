//! The Kafka journal: a message is durable once the broker acknowledged it (`acks=all`, idempotent
//! producer); the persister ([`crate::persister`]) writes the topic into the store later.
//!
//! - [`record`]: key (room id), value (`banter.v1.ChatMessage`) and partition (Kafka's murmur2);
//! - [`producer`]: the producer, its delivery reports, per-partition settle counts, and its
//!   replacement after a failure that bumps the idempotent epoch (a tansu limitation);
//! - [`admin`]: client settings, topic creation and the start-up checks;
//! - [`tail`]: reading what a partition holds beyond the persister group's committed offset.
//!
//! **Append** encodes the message once (into a per-thread buffer that librdkafka copies) and enqueues it
//! synchronously on the producer in call order; its delivery report goes to the room's sink (from
//! librdkafka's polling thread): appends are pipelined, and a room's records keep their order (one
//! partition per room, idempotent producer). A full producer queue fails the append at once.
//!
//! **Fence**: a node that takes shards writes a fence record to every partition before it serves
//! them; readers ignore a former owner's records behind it (see [`fence`]).
//!
//! **last_seq / read_after** see what is journaled but not yet stored. First they wait until every
//! append enqueued on the room's partition before the call has been settled by the broker (acknowledged
//! or failed) — a room restarting after a crash must see what its predecessor left in flight. Only
//! that partition's appends are waited for, so a busy node does not delay an activation (a full
//! producer flush would wait for appends that keep coming). Then they read the group's committed
//! offset, the store, and the partition from that offset to the high watermark, in that order: the
//! records before the committed offset were stored before it was committed, so store + tail cover all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use banter_actors::model::{ChatMessage, RoomId, Seq};
use banter_actors::ports::{AppendSink, Journal, JournalError, Store};
use banter_actors::shard::{Epoch, ShardId, Term};
use banter_actors::trace::TraceParent;
use banter_telemetry::otel;
use futures::future::BoxFuture;
use rdkafka::message::{Header, OwnedHeaders};
use tracing::info;

use crate::config::KafkaConfig;

pub(crate) mod admin;
pub(crate) mod fence;
mod producer;
pub(crate) mod record;
mod tail;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use admin::prepare_topics;

use producer::JournalProducer;
use record::RoomKey;
use tail::TailReader;

/// Header carrying the W3C trace context of the SEND.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Extra time a settle waits beyond `message.timeout.ms`, by which every delivery report has come.
const SETTLE_MARGIN: Duration = Duration::from_secs(5);

/// The Kafka journal; cheap to clone.
#[derive(Clone)]
pub struct KafkaJournal {
    inner: Arc<Inner>,
}

struct Inner {
    producer: Arc<JournalProducer>,
    topic: String,
    partitions: i32,
    store: Arc<dyn Store>,
    tail: TailReader,
    settle_timeout: Duration,
    read_timeout: Duration,
}

thread_local! {
    /// Encoding buffer: librdkafka copies the payload, so one buffer per thread serves every append.
    static PAYLOAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl KafkaJournal {
    /// Prepares the topics (see [`prepare_topics`]) and starts the producer. `group` is the persister
    /// group whose committed offsets mark what the store holds; `store` answers for the rest.
    pub async fn start(
        kafka: &KafkaConfig,
        group: &str,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<KafkaJournal> {
        let partitions = prepare_topics(kafka).await?;
        let base = admin::client_config(kafka);
        let mut config = base.clone();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", kafka.linger_ms.to_string())
            .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
            .set(
                "queue.buffering.max.messages",
                kafka.max_queued_messages.max(1).to_string(),
            )
            // The journal sets each record's partition itself, with this same function.
            .set("partitioner", "murmur2_random");
        let producer = JournalProducer::start(config, partitions)
            .context("failed to create the Kafka producer")?;
        info!(brokers = %kafka.brokers, topic = %kafka.topic, partitions, "kafka journal ready");
        Ok(KafkaJournal {
            inner: Arc::new(Inner {
                producer,
                topic: kafka.topic.clone(),
                partitions,
                store,
                tail: TailReader::new(&base, &kafka.topic, group),
                settle_timeout: Duration::from_millis(kafka.message_timeout_ms) + SETTLE_MARGIN,
                read_timeout: Duration::from_millis(kafka.read_timeout_ms.max(1)),
            }),
        })
    }

    /// Returns the partition count of the journal topic.
    pub fn partitions(&self) -> i32 {
        self.inner.partitions
    }

    /// Returns the partition that holds `room`.
    pub fn partition_of(&self, room: RoomId) -> i32 {
        record::partition_for(RoomKey::new(room).as_bytes(), self.inner.partitions)
    }

    /// Waits (at most `timeout`) for every enqueued append to be settled; for shutdown.
    pub async fn flush(&self, timeout: Duration) {
        self.inner.producer.flush(timeout).await;
    }
}

impl Inner {
    fn append(
        &self,
        message: &ChatMessage,
        term: Term,
        trace: &TraceParent,
        sink: &Arc<dyn AppendSink>,
    ) {
        let key = RoomKey::new(message.room_id);
        let partition = record::partition_for(key.as_bytes(), self.partitions);
        // While the trace is exported, the record carries its `kafka.produce` span's context (ended
        // by the delivery report), so the persister's spans hang under it.
        let (span, traceparent) =
            match otel::start("kafka.produce", otel::Kind::Producer, trace.as_str()) {
                Some((span, traceparent)) => (Some(span), Some(traceparent)),
                None => (None, None),
            };
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: TRACEPARENT_HEADER,
            value: Some(traceparent.as_deref().unwrap_or(trace.as_str())),
        });
        PAYLOAD.with_borrow_mut(|payload| {
            payload.clear();
            record::encode_into(message, term, payload);
            let record = producer::Record {
                topic: &self.topic,
                partition,
                key: key.as_bytes(),
                payload,
                headers,
                span,
            };
            self.producer.send(record, sink.clone(), message.seq);
        });
    }

    /// Returns the stored fences of `partition`: read after the committed offset was, they cover it
    /// (the persister stores fences before it commits offsets past them).
    async fn fences(&self, partition: i32) -> Result<Vec<(ShardId, Epoch)>, JournalError> {
        self.store
            .journal_fences(partition)
            .await
            .map_err(store_unavailable)
    }

    /// Writes one fence record for `terms` to every partition, on the appends' producer (so in each
    /// partition it comes before the taker's first append), and waits until each is acknowledged.
    async fn fence(&self, terms: Vec<Term>) -> Result<(), JournalError> {
        if terms.is_empty() {
            return Ok(());
        }
        let value = fence::encode(&terms);
        let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
        let sink: Arc<dyn AppendSink> = Arc::new(FenceAcks(tx));
        for partition in 0..self.partitions {
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: fence::FENCE_HEADER,
                value: Some("1"),
            });
            let record = producer::Record {
                topic: &self.topic,
                partition,
                key: fence::FENCE_KEY,
                payload: &value,
                headers,
                span: None,
            };
            self.producer.send(record, sink.clone(), 0);
        }
        drop(sink);
        let all = async {
            for _ in 0..self.partitions {
                acks.recv()
                    .await
                    .unwrap_or_else(|| Err(JournalError::Unavailable("journal stopped".into())))?;
            }
            Ok(())
        };
        let fenced = tokio::time::timeout(self.settle_timeout, all)
            .await
            .unwrap_or_else(|_| {
                Err(JournalError::Unknown(
                    "fence not acknowledged in time".into(),
                ))
            });
        if fenced.is_ok() {
            metrics::counter!(crate::metrics::JOURNAL_FENCES).increment(1);
        }
        fenced
    }

    async fn last_seq(&self, room: RoomId) -> Result<Seq, JournalError> {
        let key = RoomKey::new(room);
        let partition = record::partition_for(key.as_bytes(), self.partitions);
        self.producer.settle(partition, self.settle_timeout).await?;
        let deadline = Instant::now() + self.read_timeout;
        let mut lease = self.tail.lease().await?;
        let span = lease.span(partition, deadline).await?;
        let fenced = self.fences(partition).await?;
        let stored = self.store.last_seq(room).await.map_err(store_unavailable)?;
        let found = lease
            .read(
                partition,
                span,
                key,
                fenced,
                deadline,
                0,
                |max: &mut Seq, m| {
                    *max = (*max).max(m.seq);
                },
            )
            .await?;
        Ok(stored.max(found))
    }

    async fn read_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<ChatMessage>, JournalError> {
        let key = RoomKey::new(room);
        let partition = record::partition_for(key.as_bytes(), self.partitions);
        self.producer.settle(partition, self.settle_timeout).await?;
        let deadline = Instant::now() + self.read_timeout;
        let mut lease = self.tail.lease().await?;
        let span = lease.span(partition, deadline).await?;
        let fenced = self.fences(partition).await?;
        let stored = self
            .store
            .messages_after(room, after, limit)
            .await
            .map_err(store_unavailable)?;
        let tail = lease
            .read(
                partition,
                span,
                key,
                fenced,
                deadline,
                Vec::new(),
                move |acc: &mut Vec<ChatMessage>, m| {
                    if m.seq > after {
                        acc.push(m);
                    }
                },
            )
            .await?;
        Ok(merge(stored, tail, limit as usize))
    }
}

/// The sink of a fence's records: each outcome goes to the fence's waiter.
struct FenceAcks(tokio::sync::mpsc::UnboundedSender<Result<(), JournalError>>);

impl AppendSink for FenceAcks {
    fn settled(&self, _first: Seq, _last: Seq, result: Result<(), JournalError>) {
        let _ = self.0.send(result);
    }
}

/// Returns the first `limit` messages by seq of the union of `stored` and `tail`, each seq once.
fn merge(stored: Vec<ChatMessage>, tail: Vec<ChatMessage>, limit: usize) -> Vec<ChatMessage> {
    let mut all = stored;
    all.extend(tail);
    all.sort_by_key(|m| m.seq);
    all.dedup_by_key(|m| m.seq);
    all.truncate(limit);
    all
}

fn store_unavailable(e: banter_actors::ports::StoreError) -> JournalError {
    JournalError::Unavailable(format!("store: {e}"))
}

impl Journal for KafkaJournal {
    fn append(
        &self,
        message: &ChatMessage,
        term: Term,
        trace: &TraceParent,
        sink: &Arc<dyn AppendSink>,
    ) {
        self.inner.append(message, term, trace, sink);
    }

    fn fence(&self, terms: &[Term]) -> BoxFuture<'static, Result<(), JournalError>> {
        let (inner, terms) = (self.inner.clone(), terms.to_vec());
        Box::pin(async move { inner.fence(terms).await })
    }

    fn last_seq(&self, room: RoomId) -> BoxFuture<'static, Result<Seq, JournalError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.last_seq(room).await })
    }

    fn read_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<ChatMessage>, JournalError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.read_after(room, after, limit).await })
    }
}
