//! Reading the tail of one partition: the records from the persister group's committed offset (or the
//! start of the log when it has none) up to the high watermark, i.e. what the journal holds that the
//! store may lack.
//!
//! A room lives in one partition, so a room activation reads that partition alone, with a plain
//! consumer assigned to it (no group membership, nothing committed), reading the group's committed
//! offset only to know where to start. Consumers are pooled (a few, behind a semaphore), so a burst
//! of activations neither opens a connection per room nor an unbounded number of them. librdkafka's
//! calls block: they run on the blocking pool.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use banter_actors::model::ChatMessage;
use banter_actors::ports::JournalError;
use banter_actors::shard::{Epoch, ShardId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::debug;

use super::fence::{self, Fences};
use super::record;

/// Most tail reads running at once (and consumers kept for them).
const MAX_READERS: usize = 4;

/// Longest single poll, so a deadline is noticed.
const POLL_SLICE: Duration = Duration::from_millis(200);

/// Offsets `[start, end)` of a partition that may hold records the store lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// The persister group's committed offset, or the log start when it has none.
    pub(crate) start: i64,
    /// The high watermark: one past the last durable record.
    pub(crate) end: i64,
}

/// Reads partition tails with pooled consumers.
pub(crate) struct TailReader {
    config: ClientConfig,
    topic: String,
    pool: Mutex<Vec<BaseConsumer>>,
    permits: Semaphore,
}

impl TailReader {
    /// Returns a reader of `topic` that starts from the committed offsets of consumer group `group`;
    /// `base` holds the brokers.
    pub(crate) fn new(base: &ClientConfig, topic: &str, group: &str) -> TailReader {
        let mut config = base.clone();
        config
            .set("group.id", group)
            // A reader never commits, never joins the group and never moves its offsets.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50");
        TailReader {
            config,
            topic: topic.to_owned(),
            pool: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_READERS),
        }
    }

    /// Takes a consumer from the pool (waiting while [`MAX_READERS`] are in use), or makes one.
    pub(crate) async fn lease(&self) -> Result<Lease<'_>, JournalError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| unavailable("journal reader closed"))?;
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let consumer = match pooled {
            Some(c) => c,
            None => self
                .config
                .create::<BaseConsumer>()
                .map_err(|e| unavailable(format!("cannot create a Kafka consumer: {e}")))?,
        };
        Ok(Lease {
            reader: self,
            consumer: Some(consumer),
            _permit: permit,
        })
    }
}

/// A consumer leased from a [`TailReader`]; goes back to the pool on drop (unless a read failed).
pub(crate) struct Lease<'a> {
    reader: &'a TailReader,
    consumer: Option<BaseConsumer>,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut pool)) = (self.consumer.take(), self.reader.pool.lock()) {
            pool.push(c);
        }
    }
}

impl Lease<'_> {
    /// Runs `f` with the consumer on the blocking pool; a failed call drops the consumer.
    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&BaseConsumer, &str) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let consumer = self
            .consumer
            .take()
            .ok_or_else(|| unavailable("journal reader lost its consumer"))?;
        let topic = self.reader.topic.clone();
        let (consumer, result) = tokio::task::spawn_blocking(move || {
            let r = f(&consumer, &topic);
            // A consumer whose call failed is dropped here: closing it blocks.
            (r.is_ok().then_some(consumer), r)
        })
        .await
        .map_err(|e| unavailable(format!("journal reader failed: {e}")))?;
        self.consumer = consumer;
        result
    }

    /// Returns the offsets of `partition` that may hold records not yet stored: from the group's
    /// committed offset (everything before it is in the store) to the high watermark.
    pub(crate) async fn span(
        &mut self,
        partition: i32,
        deadline: Instant,
    ) -> Result<Span, JournalError> {
        self.blocking(move |c, topic| {
            let mut tpl = TopicPartitionList::with_capacity(1);
            tpl.add_partition(topic, partition);
            let committed = c
                .committed_offsets(tpl, left(deadline)?)
                .map_err(|e| unavailable(format!("cannot read committed offsets: {e}")))?;
            let committed =
                committed
                    .find_partition(topic, partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
            let (low, high) = c
                .fetch_watermarks(topic, partition, left(deadline)?)
                .map_err(|e| unavailable(format!("cannot read watermarks: {e}")))?;
            let start = committed.map_or(low, |o| o.max(low));
            Ok(Span {
                start: start.min(high),
                end: high,
            })
        })
        .await
    }

    /// Folds every decodable message keyed `key` in `span` of `partition`, in log order, into `acc`,
    /// but those a fence shuts out: `fenced` are the partition's stored fences (read after the span's
    /// start was, so they cover it), and the fence records in the span apply from where they stand.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn read<A, F>(
        &mut self,
        partition: i32,
        span: Span,
        key: record::RoomKey,
        fenced: Vec<(ShardId, Epoch)>,
        deadline: Instant,
        mut acc: A,
        mut fold: F,
    ) -> Result<A, JournalError>
    where
        A: Send + 'static,
        F: FnMut(&mut A, ChatMessage) + Send + 'static,
    {
        if span.start >= span.end {
            return Ok(acc);
        }
        self.blocking(move |c, topic| {
            let mut tpl = TopicPartitionList::with_capacity(1);
            tpl.add_partition_offset(topic, partition, Offset::Offset(span.start))
                .map_err(|e| unavailable(format!("bad offset: {e}")))?;
            c.assign(&tpl)
                .map_err(|e| unavailable(format!("cannot assign partition: {e}")))?;
            let mut fences = Fences::default();
            fences.load(partition, &fenced);
            let mut visit = |m| fold(&mut acc, m);
            let result = scan(
                c,
                partition,
                span,
                key.as_bytes(),
                fences,
                deadline,
                &mut visit,
            );
            let _ = c.unassign();
            result.map(|()| acc)
        })
        .await
    }
}

fn scan(
    c: &BaseConsumer,
    partition: i32,
    span: Span,
    key: &[u8],
    mut fences: Fences,
    deadline: Instant,
    visit: &mut impl FnMut(ChatMessage),
) -> Result<(), JournalError> {
    loop {
        let slice = left(deadline)?.min(POLL_SLICE);
        match c.poll(slice) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(()),
            // Transient client errors (a broker reconnecting) are retried until the deadline.
            Some(Err(e)) => debug!(partition, error = %e, "journal tail read error"),
            Some(Ok(m)) => {
                if m.partition() != partition || m.offset() < span.start {
                    continue;
                }
                if m.offset() >= span.end {
                    return Ok(());
                }
                if fence::is_fence(m.headers()) {
                    match fence::decode(m.payload()) {
                        Ok(terms) => {
                            for term in terms {
                                fences.raise(partition, term);
                            }
                        }
                        Err(e) => debug!(partition, offset = m.offset(), error = %e, "bad fence"),
                    }
                } else if m.key() == Some(key) {
                    match record::decode(m.key(), m.payload()) {
                        Ok((msg, term)) if fences.admits(partition, term) => visit(msg),
                        Ok((msg, term)) => {
                            debug!(partition, offset = m.offset(), seq = msg.seq, shard = %term.shard, epoch = %term.epoch, "fenced record skipped")
                        }
                        // The persister dead-letters it; the room never wrote it.
                        Err(e) => {
                            debug!(partition, offset = m.offset(), error = %e, "skipped record")
                        }
                    }
                }
                if m.offset() + 1 >= span.end {
                    return Ok(());
                }
            }
        }
    }
}

/// Returns the time left before `deadline`, or the timeout error.
fn left(deadline: Instant) -> Result<Duration, JournalError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(unavailable("timed out reading the journal"))
    } else {
        Ok(left)
    }
}

fn unavailable(msg: impl Into<String>) -> JournalError {
    JournalError::Unavailable(msg.into())
}
