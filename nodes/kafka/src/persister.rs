//! The persister: a member of a Kafka consumer group that writes the journal topic into the store.
//!
//! - [`batch`]: [`batch::BatchBuffer`], the pure batching rules (size or age, per-room grouping, the
//!   offsets to commit);
//! - [`dead_letter`]: the dead-letter topic's headers and producer;
//! - `writer`: writing one batch (rows, then dead letters), resumable after a failure;
//! - `commits`: the task that commits the offsets of stored batches, in order, off the writer's path;
//! - `supervise`: restarts the consumer loop from the committed offsets after a panic;
//! - [`lag`]: the consumer lag gauges ([`lag::LagMonitor`]).
//!
//! One task runs the loop: it receives records, decodes them into the buffer (an undecodable or
//! invalid record becomes a dead letter there; a fence record raises the partition's fences, and a
//! record they shut out — a former shard owner's late write — is skipped and counted, see
//! [`crate::journal::fence`]; a partition starts from its stored fences), and when the buffer is ready hands it as one batch to a
//! writer task, while it goes on receiving. The writer inserts the rows (multi-row, idempotent on
//! `(room_id, seq)`) and sends the dead letters; only then are the batch's offsets handed to the
//! committer, which commits them synchronously while the next batch is written. One batch is written
//! at a time, so committed offsets only move forward; while it is written and the buffer already holds
//! a full batch, the loop stops receiving (librdkafka keeps prefetching, within its queue bounds).
//!
//! Failures:
//! - rows the store refuses for good (a message id stored under another seq, a room that does not
//!   exist) are found one room, then one row at a time, and go to the dead-letter topic; the rest is
//!   stored: a bad record never blocks its partition. The seq of a refused row of an existing room is
//!   reserved in the store first (`Store::reserve_seq`), so the room's `last_seq` still counts it once
//!   the committed offset has moved past the record;
//! - a store outage (`Unavailable`, or any other error not tied to a row) pauses fetching and retries
//!   the same batch with exponential backoff (up to `max_backoff_ms`), then resumes: nothing is skipped;
//! - a rebalance drops the buffered records of revoked partitions (their new owner reads them again
//!   from the committed offset: inserts are idempotent), and commits only what this member still owns;
//! - a panic in a batch writer (or in the loop) ends the loop as a shutdown would, without writing what
//!   it buffered; the supervisor (`supervise`) counts it, waits a backoff and starts the loop again on
//!   a fresh consumer, which resumes from the committed offsets: nothing is lost, nothing stored twice.
//!
//! The group's lag (`banter_persister_lag{topic, partition}`) is not the member's to report: every
//! node on the Kafka journal runs a [`lag::LagMonitor`], so the lag of a group whose members are all
//! down is still reported.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use banter_actors::ports::Store;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::{KafkaConfig, PersisterConfig};
use crate::journal::admin;
use crate::journal::fence::{self, Fences};
use crate::journal::record::{self, Entry};
use crate::metrics as m;

pub(crate) mod batch;
mod commits;
pub(crate) mod dead_letter;
pub mod lag;
mod supervise;
#[cfg(test)]
mod tests;
mod writer;

use batch::BatchBuffer;
use commits::Committer;
use supervise::{Exit, Supervisor};
use writer::{Failure, Pending, Shared, write};

/// First pause after a failed write; doubles up to `max_backoff_ms`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait for the batch being written when the node stops.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// A running persister.
pub struct Persister {
    worker: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl Persister {
    /// Joins the consumer group on the journal topic and starts writing it into `store`.
    pub async fn start(
        kafka: &KafkaConfig,
        config: &PersisterConfig,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Persister> {
        let consumer = group_consumer(kafka, config)?;
        // Not idempotent: a retry may write a dead letter twice, which is harmless, while an idempotent
        // producer whose send timed out bumps its epoch, which tansu cannot take (see
        // journal::kafka::producer).
        // Created at the first dead letter: an idle producer's polling thread costs ~1% of a core
        // (see journal::producer), and most persisters never send one.
        let mut dead_letters = admin::client_config(kafka);
        dead_letters
            .set("enable.idempotence", "false")
            .set("acks", "all")
            .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
            .set("partitioner", "murmur2_random");
        let shared = Arc::new(Shared {
            store,
            dead_letters: writer::DeadLetters::new(dead_letters),
            dead_letter_topic: kafka.dead_letter_topic.clone(),
            send_timeout: Duration::from_millis(kafka.message_timeout_ms),
        });
        let (shutdown, rx) = watch::channel(false);
        let supervisor = Supervisor {
            kafka: kafka.clone(),
            config: config.clone(),
            shared,
        };
        let worker = tokio::spawn(supervisor.run(consumer, rx));
        info!(group = %config.group_id, topic = %kafka.topic, "persister started");
        Ok(Persister { worker, shutdown })
    }

    /// Stops: finishes the batch being written, writes what is buffered (once, without retrying),
    /// then leaves the group. A loop waiting to restart after a panic stops there.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.worker.await;
    }
}

/// Creates a member of the persister group, subscribed to the journal topic; it starts from the
/// group's committed offsets once the group assigns it partitions.
fn group_consumer(
    kafka: &KafkaConfig,
    config: &PersisterConfig,
) -> anyhow::Result<Arc<GroupConsumer>> {
    let consumer: GroupConsumer = admin::client_config(kafka)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A member killed with -9 must not hold its partitions for long (ARCHITECTURE.md §10).
        .set("session.timeout.ms", "6000")
        // With the eager assignors tansu never hands a dead member's partitions to the others
        // (measured, ../shared/ARCHITECTURE.md §9): in a cluster the survivors would never store
        // them. Cooperative-sticky does, within ~11 s; a partition may be read by two members for a
        // moment, which idempotent inserts absorb. Its heartbeat must be short (3 s storms).
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("heartbeat.interval.ms", "1000")
        // A caught-up consumer's fetch waits at most this long for new records.
        .set("fetch.wait.max.ms", "100")
        .create_with_context(Rebalances::default())
        .context("failed to create the persister's Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.topic])
        .context("failed to subscribe to the journal topic")?;
    Ok(Arc::new(consumer))
}

/// Rebalance bookkeeping, filled by librdkafka's callbacks (they run inside the consumer's poll).
#[derive(Default)]
struct Rebalances {
    /// Partitions currently assigned.
    assigned: Mutex<HashSet<i32>>,
    /// Partitions revoked since the loop last looked.
    revoked: Mutex<Vec<i32>>,
    /// Bumped at every assignment, so a paused consumer pauses new partitions too.
    generation: AtomicU64,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            info!(partitions = ?parts, "persister partitions revoked");
            if let Ok(mut a) = self.assigned.lock() {
                for p in &parts {
                    a.remove(p);
                }
            }
            if let Ok(mut r) = self.revoked.lock() {
                r.extend(parts);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            info!(partitions = ?parts, "persister partitions assigned");
            if let Ok(mut a) = self.assigned.lock() {
                a.extend(parts);
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Rebalances {
    fn owns(&self, partition: i32) -> bool {
        self.assigned
            .lock()
            .map(|a| a.contains(&partition))
            .unwrap_or(false)
    }

    fn take_revoked(&self) -> Vec<i32> {
        self.revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

type GroupConsumer = StreamConsumer<Rebalances>;

/// The consumer loop of one consumer (see the module doc); the supervisor makes a new one after a
/// panic.
struct Worker {
    consumer: Arc<GroupConsumer>,
    shared: Arc<Shared>,
    committer: Committer,
    buffer: BatchBuffer<OwnedMessage>,
    max_backoff: Duration,
    /// Assignment generation that was paused, when fetching is paused.
    paused: Option<u64>,
    /// Batches stored, counted for the supervisor (which outlives a panicking loop).
    stored: Arc<AtomicU64>,
    /// The fences of the partitions read so far (see [`crate::journal::fence`]).
    fences: Fences,
    /// A record of a partition whose stored fences are not loaded yet, and when to try loading them.
    held: Option<(OwnedMessage, Instant)>,
}

impl Worker {
    /// Returns the loop of `consumer`, writing into the store of `shared`.
    fn new(
        consumer: Arc<GroupConsumer>,
        shared: Arc<Shared>,
        kafka: &KafkaConfig,
        config: &PersisterConfig,
        stored: Arc<AtomicU64>,
    ) -> Worker {
        let max_backoff = Duration::from_millis(config.max_backoff_ms).max(MIN_BACKOFF);
        Worker {
            buffer: BatchBuffer::new(config.batch_rows, Duration::from_millis(config.batch_ms)),
            max_backoff,
            paused: None,
            committer: Committer::start(consumer.clone(), kafka.topic.clone(), max_backoff),
            consumer,
            shared,
            stored,
            fences: Fences::default(),
            held: None,
        }
    }

    /// Runs until shutdown, or until a batch writer panics.
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Exit {
        let consumer = self.consumer.clone();
        let mut writing: Option<JoinHandle<(Pending, Result<(), Failure>)>> = None;
        let mut retry: Option<(Pending, Instant)> = None;
        let mut backoff = MIN_BACKOFF;
        let mut exit = Exit::Stopped;
        loop {
            self.apply_revoked();
            self.release_held(backoff).await;
            let now = Instant::now();
            if writing.is_none() {
                let next = match retry.take() {
                    Some((p, due)) if due <= now => Some(p),
                    Some(r) => {
                        retry = Some(r);
                        None
                    }
                    None if self.buffer.ready(now.into_std()) => {
                        Some(Pending::new(self.buffer.take()))
                    }
                    None => None,
                };
                if let Some(p) = next {
                    writing = Some(tokio::spawn(write(self.shared.clone(), p)));
                }
            }
            // An outage pauses fetching (the loop keeps polling: rebalances, liveness). A full buffer
            // while a batch is being written only stops receiving for that while: librdkafka keeps
            // what it prefetched (bounded by queued.max.messages.kbytes), where a pause would purge it.
            self.pause(retry.is_some());
            let receiving = !(writing.is_some() && self.buffer.full()) && self.held.is_none();
            let wake = match (&retry, &writing) {
                (Some((_, due)), _) => Some(*due),
                (None, None) => self.buffer.deadline().map(Instant::from_std),
                (None, Some(_)) => None,
            };
            let wake = match (wake, &self.held) {
                (Some(w), Some((_, due))) => Some(w.min(*due)),
                (w, held) => w.or(held.as_ref().map(|h| h.1)),
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                done = async {
                    match writing.as_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                }, if writing.is_some() => {
                    writing = None;
                    match done {
                        Ok((p, Ok(()))) => {
                            backoff = MIN_BACKOFF;
                            self.committer.push(&p.batch.offsets);
                            self.stored.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((p, Err(failure))) => {
                            if self.gone(&p) {
                                debug!(%failure, "batch of revoked partitions dropped");
                            } else {
                                warn!(%failure, retry_in_ms = backoff.as_millis() as u64, "persister batch not finished; fetching paused");
                                retry = Some((p, Instant::now() + backoff));
                                backoff = (backoff * 2).min(self.max_backoff);
                            }
                        }
                        Err(e) => {
                            // Its offsets were never committed: the restarted loop reads it again.
                            // Nothing after it may be committed before that.
                            error!(error = %e, buffered = self.buffer.len(), "persister batch writer panicked; the loop restarts from the committed offsets");
                            exit = Exit::WriterPanicked;
                            break;
                        }
                    }
                }
                received = consumer.recv(), if receiving => self.receive(received),
                () = sleep_until(wake), if wake.is_some() => {}
            }
        }
        drop(consumer);
        let failing = exit == Exit::WriterPanicked || retry.is_some();
        self.finish(writing, failing).await;
        exit
    }

    /// Tells whether every partition of a batch went to another member (nothing left to commit).
    fn gone(&self, p: &Pending) -> bool {
        let ctx = self.consumer.context();
        !p.batch.offsets.iter().any(|(part, _)| ctx.owns(*part))
    }

    /// Drops the buffered records of the partitions revoked since the last call, and forgets
    /// their fences: their next owner reads them again from the committed offset.
    fn apply_revoked(&mut self) {
        let revoked = self.consumer.context().take_revoked();
        if !revoked.is_empty() {
            let dropped = self.buffer.drop_partitions(&revoked);
            debug!(dropped, "dropped buffered records of revoked partitions");
            for p in revoked {
                self.fences.forget(p);
            }
        }
    }

    fn receive(&mut self, received: KafkaResult<BorrowedMessage<'_>>) {
        let msg = match received {
            Ok(msg) => msg,
            Err(e) => {
                warn!(error = %e, "persister consumer error");
                return;
            }
        };
        // A revocation seen by the poll that returned this record applies before the record: when
        // the partition was revoked and assigned again (a cooperative rebalance may do that within
        // one poll), this is the first record read again from the committed offset, and dropping
        // it with the old ones would commit past it once the next batch is stored.
        self.apply_revoked();
        let (partition, offset) = (msg.partition(), msg.offset());
        if !self.consumer.context().owns(partition) {
            debug!(
                partition,
                offset, "record of a partition not owned; skipped"
            );
            return;
        }
        let msg = msg.detach();
        if self.fences.loaded(partition) {
            self.classify(msg);
        } else {
            // Judged once the partition's stored fences are loaded, at the top of the loop.
            self.held = Some((msg, Instant::now()));
        }
    }

    /// Loads the stored fences of the held record's partition and classifies it; when the store
    /// fails, holds it on and tries again after `backoff` (nothing is received meanwhile).
    async fn release_held(&mut self, backoff: Duration) {
        let Some((msg, due)) = self.held.take() else {
            return;
        };
        let partition = msg.partition();
        if !self.consumer.context().owns(partition) {
            return;
        }
        if due > Instant::now() {
            self.held = Some((msg, due));
            return;
        }
        match self.shared.store.journal_fences(partition).await {
            Ok(stored) => {
                self.fences.load(partition, &stored);
                self.classify(msg);
            }
            Err(e) => {
                warn!(partition, error = %e, "cannot read the partition's fences; retrying");
                self.held = Some((msg, Instant::now() + backoff));
            }
        }
    }

    /// Puts a record of a partition whose fences are known into the buffer: a fence raises them, a
    /// message they shut out is skipped, a record that does not decode becomes a dead letter.
    fn classify(&mut self, msg: OwnedMessage) {
        let (partition, offset) = (msg.partition(), msg.offset());
        let now = std::time::Instant::now();
        let fence = fence::is_fence(msg.headers());
        match record::read(msg.key(), msg.payload(), fence) {
            Ok(Entry::Message(message, term)) if self.fences.admits(partition, term) => {
                self.buffer.push_row(partition, offset, message, msg, now)
            }
            Ok(Entry::Message(message, term)) => {
                metrics::counter!(m::PERSISTER_FENCED).increment(1);
                warn!(partition, offset, room_id = %message.room_id, seq = message.seq, shard = %term.shard, epoch = %term.epoch, "a former owner's late record, behind a fence: skipped");
                self.buffer.push_skipped(partition, offset, now);
            }
            Ok(Entry::Fence(terms)) => {
                let raised: Vec<_> = terms
                    .into_iter()
                    .filter_map(|t| self.fences.raise(partition, t))
                    .collect();
                self.buffer.push_fences(partition, offset, raised, now);
            }
            Err(e) => {
                warn!(partition, offset, reason = e.reason(), error = %e, "record to the dead-letter topic");
                self.buffer
                    .push_dead(partition, offset, e.reason(), e.to_string(), msg, now);
            }
        }
    }

    /// Pauses or resumes fetching on the whole assignment.
    fn pause(&mut self, want: bool) {
        let consumer = &self.consumer;
        let generation = consumer.context().generation.load(Ordering::Acquire);
        match (want, self.paused) {
            (true, Some(g)) if g == generation => {}
            (true, _) => {
                if let Ok(assignment) = consumer.assignment()
                    && consumer.pause(&assignment).is_ok()
                {
                    self.paused = Some(generation);
                }
            }
            (false, Some(_)) => {
                if let Ok(assignment) = consumer.assignment() {
                    let _ = consumer.resume(&assignment);
                }
                self.paused = None;
            }
            (false, None) => {}
        }
    }

    /// On shutdown: waits for the batch being written, writes what is buffered once (unless the
    /// store is failing or a writer panicked), commits the offsets of what was stored, then leaves the
    /// group.
    async fn finish(
        mut self,
        writing: Option<JoinHandle<(Pending, Result<(), Failure>)>>,
        failing: bool,
    ) {
        let mut failing = failing;
        if let Some(h) = writing {
            match tokio::time::timeout(STOP_WAIT, h).await {
                Ok(Ok((p, Ok(())))) => self.committer.push(&p.batch.offsets),
                _ => failing = true,
            }
        }
        if !failing && !self.buffer.is_empty() {
            let p = Pending::new(self.buffer.take());
            match tokio::time::timeout(STOP_WAIT, write(self.shared.clone(), p)).await {
                Ok((p, Ok(()))) => self.committer.push(&p.batch.offsets),
                Ok((_, Err(failure))) => {
                    debug!(%failure, "last batch not written; it is read again at restart");
                }
                Err(_) => debug!("last batch not written in time; it is read again at restart"),
            }
        }
        self.committer.close(STOP_WAIT).await;
        // Closing the consumer leaves the group, which blocks.
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        debug!("persister consumer closed");
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
