//! The journal's producer: enqueues records, reports each append to its sink from its delivery report, counts
//! what is settled per partition (for [`JournalProducer::settle`]), and replaces itself after a delivery
//! failure that makes librdkafka bump its idempotent producer epoch.
//!
//! Why the replacement: when an idempotent producer's message times out (the broker stayed down past
//! `message.timeout.ms`), librdkafka bumps the producer epoch and goes on with the same producer id.
//! tansu 0.6 (the test and local broker) never records that epoch: the next produce makes its storage
//! task panic, and the broker then fails every request until restarted — and again after, as long as
//! that producer lives (*measured*). A fresh producer gets a fresh producer id instead. On Apache Kafka
//! the replacement costs one `InitProducerId`; the appends still queued in the old producer are purged,
//! as they would have timed out anyway.
//!
//! A timed-out or purged append may have been written by the broker all the same (the request was sent,
//! only its answer is missing): it settles with [`JournalError::Unknown`], and the room reads the
//! journal to find out. Other failures settle with [`JournalError::Unavailable`] (not stored).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use banter_actors::model::Seq;
use banter_actors::ports::{AppendSink, JournalError};
use banter_telemetry::otel;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::Notify;
use tracing::warn;

/// Shortest time between two producer replacements.
const REPLACE_INTERVAL: Duration = Duration::from_secs(1);

/// How long one call of the polling thread lasts (see [`Polled`]).
const POLL_CALL: Duration = Duration::from_secs(1);

/// A producer and the thread that serves its delivery reports.
///
/// rdkafka's `ThreadedProducer` polls in calls of 100 ms, and `BaseProducer::poll` spins through
/// the last millisecond of every call (it passes librdkafka its remaining time in whole
/// milliseconds, so 0 until the deadline): ~1% of a core per idle producer, most of an idle node's
/// CPU (*measured*). Calls of [`POLL_CALL`] cut that tenfold; a delivery report still wakes the
/// call at once. The thread is told to stop when this is dropped, and ends within a call, holding
/// the last reference to the producer (so librdkafka's teardown never blocks an async task).
struct Polled {
    producer: Arc<BaseProducer<Deliveries>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Polled {
    fn start(config: &ClientConfig, counters: &Arc<Counters>) -> KafkaResult<Polled> {
        let producer: Arc<BaseProducer<Deliveries>> =
            Arc::new(config.create_with_context(Deliveries(counters.clone()))?);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (polled, stopped) = (producer.clone(), stop.clone());
        std::thread::Builder::new()
            .name("journal-producer-poll".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    polled.poll(POLL_CALL);
                }
            })
            .map_err(|e| {
                KafkaError::ClientCreation(format!("cannot start the poll thread: {e}"))
            })?;
        Ok(Polled { producer, stop })
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Where a record's delivery report goes: the sink of its room and the record's seq, the record's
/// `kafka.produce` span when its trace is exported, and when it was enqueued.
type Completion = (Arc<dyn AppendSink>, Seq, Option<otel::Pending>, Instant);

/// One record to enqueue.
pub(crate) struct Record<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) key: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) headers: OwnedHeaders,
    /// Its span (see [`Completion`]).
    pub(crate) span: Option<otel::Pending>,
}

/// What every producer the journal runs shares.
struct Counters {
    /// Appends enqueued per partition. The lock spans the enqueue and the count, so a count read under
    /// it covers exactly the first appends of librdkafka's queue for the partition (whose delivery
    /// reports come in that order).
    enqueued: Box<[Mutex<u64>]>,
    /// Appends settled (acknowledged or failed) per partition.
    settled: Box<[AtomicU64]>,
    /// Producers replaced whose queued appends are not all settled yet.
    retiring: AtomicUsize,
    /// Woken by a delivery failure after which the producer must be replaced.
    replace: Notify,
    appends: metrics::Counter,
    errors: metrics::Counter,
    produce: metrics::Histogram,
}

/// Delivery reports of one producer.
struct Deliveries(Arc<Counters>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Completion>;

    fn delivery(&self, result: &DeliveryResult<'_>, completion: Box<Completion>) {
        let c = &self.0;
        let (partition, outcome) = match result {
            Ok(m) => {
                c.appends.increment(1);
                (m.partition(), Ok(()))
            }
            Err((e, m)) => {
                c.errors.increment(1);
                if bumps_epoch(e) {
                    c.replace.notify_one();
                }
                (m.partition(), Err(delivery_error(e)))
            }
        };
        if let Some(n) = usize::try_from(partition)
            .ok()
            .and_then(|p| c.settled.get(p))
        {
            n.fetch_add(1, Ordering::AcqRel);
        }
        let (sink, seq, span, enqueued) = *completion;
        c.produce.record(enqueued.elapsed().as_secs_f64());
        if let Some(span) = span {
            span.end(outcome.as_ref().err().map(|e| e.to_string()).as_deref());
        }
        sink.settled(seq, seq, outcome);
    }
}

/// Returns the journal error of a failed delivery: [`JournalError::Unknown`] when the broker may have
/// written the record (its request timed out or was purged after it was sent), else
/// [`JournalError::Unavailable`].
fn delivery_error(e: &KafkaError) -> JournalError {
    let msg = format!("not acknowledged by Kafka: {e}");
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::PurgeQueue
            | RDKafkaErrorCode::PurgeInflight,
        ) => JournalError::Unknown(msg),
        _ => JournalError::Unavailable(msg),
    }
}

/// Tells whether librdkafka answers this delivery failure by bumping the idempotent producer's epoch
/// (or by giving up on the producer altogether).
fn bumps_epoch(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::OutOfOrderSequenceNumber
                | RDKafkaErrorCode::UnknownProducerId
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    )
}

/// The journal's producer (see the module doc).
pub(crate) struct JournalProducer {
    current: RwLock<Polled>,
    config: ClientConfig,
    counters: Arc<Counters>,
}

impl JournalProducer {
    /// Starts a producer with `config` for a topic of `partitions` partitions, and the task that
    /// replaces it after a delivery failure (it ends with the producer).
    pub(crate) fn start(
        config: ClientConfig,
        partitions: i32,
    ) -> KafkaResult<Arc<JournalProducer>> {
        let counters = Arc::new(Counters {
            enqueued: (0..partitions).map(|_| Mutex::new(0)).collect(),
            settled: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            retiring: AtomicUsize::new(0),
            replace: Notify::new(),
            appends: metrics::counter!(crate::metrics::JOURNAL_APPENDS),
            errors: metrics::counter!(crate::metrics::JOURNAL_APPEND_ERRORS),
            produce: metrics::histogram!(crate::metrics::JOURNAL_PRODUCE_SECONDS),
        });
        let producer = Polled::start(&config, &counters)?;
        let this = Arc::new(JournalProducer {
            current: RwLock::new(producer),
            config,
            counters,
        });
        tokio::spawn(replace_on_failure(Arc::downgrade(&this)));
        Ok(this)
    }

    /// Enqueues a record; its outcome goes to `sink` as the append of `seq`, from the delivery report,
    /// or at once when it cannot be enqueued.
    pub(crate) fn send(&self, record: Record<'_>, sink: Arc<dyn AppendSink>, seq: Seq) {
        let partition = record.partition;
        let Some(enqueued) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.counters.enqueued.get(p))
        else {
            let e = JournalError::Unavailable(format!("no partition {partition}"));
            if let Some(span) = record.span {
                span.end(Some(&e.to_string()));
            }
            return sink.settled(seq, seq, Err(e));
        };
        let record = BaseRecord::with_opaque_to(
            record.topic,
            Box::new((sink, seq, record.span, Instant::now())),
        )
        .partition(partition)
        .key(record.key)
        .payload(record.payload)
        .headers(record.headers);
        let mut enqueued = lock(enqueued);
        let sent = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .producer
            .send(record);
        match sent {
            Ok(()) => *enqueued += 1,
            Err((e, record)) => {
                drop(enqueued);
                self.counters.errors.increment(1);
                let error = match e {
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                        JournalError::Unavailable("journal overloaded".into())
                    }
                    e => JournalError::Unavailable(format!("cannot enqueue on Kafka: {e}")),
                };
                let (sink, seq, span, _) = *record.delivery_opaque;
                if let Some(span) = span {
                    span.end(Some(&error.to_string()));
                }
                sink.settled(seq, seq, Err(error));
            }
        }
    }

    /// Waits (at most `timeout`) until every append enqueued on `partition` before this call is
    /// settled, and every replaced producer has settled its appends.
    pub(crate) async fn settle(
        &self,
        partition: i32,
        timeout: Duration,
    ) -> Result<(), JournalError> {
        let c = &self.counters;
        let i = usize::try_from(partition).unwrap_or(usize::MAX);
        let (Some(enqueued), Some(settled)) = (c.enqueued.get(i), c.settled.get(i)) else {
            return Ok(());
        };
        let target = *lock(enqueued);
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        while settled.load(Ordering::Acquire) < target || c.retiring.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                return Err(JournalError::Unavailable(
                    "appends in flight were not settled in time".into(),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Waits (at most `timeout`) for every enqueued append to be settled; for shutdown.
    pub(crate) async fn flush(&self, timeout: Duration) {
        let producer = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .producer
            .clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        if let Ok(Err(e)) = flushed {
            warn!(error = %e, "kafka journal not flushed");
        }
    }
}

impl Drop for JournalProducer {
    fn drop(&mut self) {
        // Lets the replacing task see that the producer is gone.
        self.counters.replace.notify_one();
    }
}

/// Replaces the producer after each delivery failure that bumps its epoch, at most once per
/// [`REPLACE_INTERVAL`]; the old producer's queue is purged (its appends fail) before it is dropped.
async fn replace_on_failure(producer: Weak<JournalProducer>) {
    loop {
        let replace = match producer.upgrade() {
            Some(p) => p.counters.clone(),
            None => return,
        };
        replace.replace.notified().await;
        let Some(p) = producer.upgrade() else {
            return;
        };
        match Polled::start(&p.config, &p.counters) {
            Ok(fresh) => {
                let old = std::mem::replace(
                    &mut *p.current.write().unwrap_or_else(PoisonError::into_inner),
                    fresh,
                );
                warn!("kafka producer replaced after a failed delivery");
                p.counters.retiring.fetch_add(1, Ordering::AcqRel);
                let counters = p.counters.clone();
                // Purging and dropping a producer block; its delivery reports settle the counters.
                tokio::task::spawn_blocking(move || {
                    old.producer
                        .purge(PurgeConfig::default().queue().inflight());
                    // Served by its thread until the purge's reports are in.
                    let _ = old.producer.flush(POLL_CALL);
                    drop(old);
                    counters.retiring.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(e) => warn!(error = %e, "cannot replace the kafka producer"),
        }
        drop(p);
        tokio::time::sleep(REPLACE_INTERVAL).await;
    }
}

fn lock(m: &Mutex<u64>) -> std::sync::MutexGuard<'_, u64> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_or_purged_delivery_has_an_unknown_outcome() {
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::PurgeQueue,
            RDKafkaErrorCode::PurgeInflight,
        ] {
            let e = delivery_error(&KafkaError::MessageProduction(code));
            assert!(e.is_unknown(), "{code:?}: {e}");
        }
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            let e = delivery_error(&KafkaError::MessageProduction(code));
            assert!(!e.is_unknown(), "{code:?}: {e}");
        }
    }
}
