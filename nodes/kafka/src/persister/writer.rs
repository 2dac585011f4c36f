//! Writing one batch: rows into the store (finding the rows it refuses for good), then the fences it
//! raised, then dead letters to their topic; the loop then hands its offsets to the committer (`super::commits`). Each step is
//! recorded in [`Pending`], so a retry after a failure resumes where the last attempt stopped.

use std::sync::Arc;
use std::time::Duration;

use banter_actors::ports::{Store, StoreError};
use banter_telemetry::otel;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use tracing::{debug, info, warn};

use super::batch::{Batch, DeadLetter};
use super::dead_letter;
use crate::metrics as m;

/// What the loop and the writer task share.
pub(super) struct Shared {
    pub(super) store: Arc<dyn Store>,
    pub(super) dead_letters: DeadLetters,
    pub(super) dead_letter_topic: String,
    pub(super) send_timeout: Duration,
}

/// The dead-letter producer, created at the first dead letter.
pub(super) struct DeadLetters {
    config: rdkafka::ClientConfig,
    producer: tokio::sync::OnceCell<FutureProducer>,
}

impl DeadLetters {
    /// A producer to be created with `config` when first needed.
    pub(super) fn new(config: rdkafka::ClientConfig) -> DeadLetters {
        DeadLetters {
            config,
            producer: tokio::sync::OnceCell::new(),
        }
    }

    /// The producer, created now if it is the first dead letter (a failure is retried next time).
    async fn producer(&self) -> Result<&FutureProducer, String> {
        self.producer
            .get_or_try_init(|| async {
                self.config
                    .create()
                    .map_err(|e| format!("cannot create the dead-letter producer: {e}"))
            })
            .await
    }
}

/// A batch on its way to the store, with how far it got (a retry resumes there).
pub(super) struct Pending {
    pub(super) batch: Batch<OwnedMessage>,
    pub(super) stored: bool,
    pub(super) fences_stored: bool,
    pub(super) dead_letters_sent: usize,
}

impl Pending {
    /// A batch not written yet.
    pub(super) fn new(batch: Batch<OwnedMessage>) -> Pending {
        Pending {
            batch,
            stored: false,
            fences_stored: false,
            dead_letters_sent: 0,
        }
    }
}

/// Why writing a batch stopped short.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    /// The store is unavailable (or failed in a way not tied to a row).
    #[error("store: {0}")]
    Store(String),
    /// The dead-letter topic did not take a record.
    #[error("dead-letter topic: {0}")]
    DeadLetter(String),
}

/// Writes a batch: rows into the store, then dead letters to their topic. Resumes where an earlier
/// attempt stopped.
pub(super) async fn write(shared: Arc<Shared>, mut p: Pending) -> (Pending, Result<(), Failure>) {
    let started = std::time::Instant::now();
    if !p.stored {
        let since = std::time::SystemTime::now();
        match store_rows(&shared, &mut p.batch).await {
            Ok(inserted) => {
                metrics::counter!(m::PERSISTER_ROWS).increment(inserted);
                p.stored = true;
                trace_rows(&p.batch, since);
            }
            Err(e) => return (p, Err(Failure::Store(e))),
        }
    }
    // Before the offsets move past the fence records: a reader starting there needs them.
    if !p.fences_stored {
        if let Err(e) = shared.store.raise_journal_fences(&p.batch.fences).await {
            return (p, Err(Failure::Store(e.to_string())));
        }
        p.fences_stored = true;
    }
    while let Some(d) = p.batch.dead.get(p.dead_letters_sent) {
        let producer = match shared.dead_letters.producer().await {
            Ok(producer) => producer,
            Err(e) => return (p, Err(Failure::DeadLetter(e))),
        };
        if let Err(e) = dead_letter::send(
            producer,
            &shared.dead_letter_topic,
            &d.source,
            d.reason,
            &d.detail,
            shared.send_timeout,
        )
        .await
        {
            return (p, Err(Failure::DeadLetter(e)));
        }
        metrics::counter!(m::PERSISTER_DEAD_LETTERS, "reason" => d.reason).increment(1);
        info!(
            partition = d.partition,
            offset = d.offset,
            reason = d.reason,
            "record sent to the dead-letter topic"
        );
        p.dead_letters_sent += 1;
    }
    metrics::counter!(m::PERSISTER_BATCHES).increment(1);
    metrics::histogram!(m::PERSISTER_BATCH_RECORDS).record(p.batch.len() as f64);
    metrics::histogram!(m::PERSISTER_FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
    debug!(
        records = p.batch.len(),
        dead = p.batch.dead.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "persister batch stored"
    );
    (p, Ok(()))
}

/// Records each stored row of an exported trace as a `mysql.insert` span under its record's
/// `kafka.produce` span (the `traceparent` header), lasting the batch's insert, and the batch as a
/// `persister.batch` span of its own linked to those rows' spans; the batch's size is an attribute.
/// Rows of traces not exported cost a header lookup.
fn trace_rows(batch: &Batch<OwnedMessage>, since: std::time::SystemTime) {
    use rdkafka::message::{Headers, Message};
    if !otel::exporting() {
        return;
    }
    let rows = i64::try_from(batch.messages.len()).unwrap_or(i64::MAX);
    let mut traced = Vec::new();
    for (message, (_, _, record)) in batch.messages.iter().zip(&batch.origins) {
        let traceparent = record.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == crate::journal::TRACEPARENT_HEADER)
                .and_then(|h| std::str::from_utf8(h.value?).ok())
        });
        if let Some(traceparent) = traceparent.filter(|t| otel::sampled(t)) {
            traced.push(traceparent);
            otel::record(
                "mysql.insert",
                otel::Kind::Client,
                traceparent,
                since,
                vec![
                    otel::KeyValue::new("banter.room_id", message.room_id.0),
                    otel::KeyValue::new("banter.seq", i64::try_from(message.seq).unwrap_or(-1)),
                    otel::KeyValue::new("banter.batch_rows", rows),
                ],
            );
        }
    }
    otel::record_linked(
        "persister.batch",
        otel::Kind::Client,
        traced,
        since,
        vec![otel::KeyValue::new("banter.batch_rows", rows)],
    );
}

/// Returns the dead-letter reason of a store error that no retry can fix, tied to a row.
fn refusal(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::Conflict(_) => Some("conflict"),
        StoreError::NotFound => Some("room-not-found"),
        StoreError::Unavailable(_) | StoreError::Other(_) => None,
    }
}

/// Inserts the batch's rows. When the store refuses the batch for a row's sake, finds the refused rows
/// (per room, then per row in a refused room), moves them to the dead letters and stores the rest.
/// Returns the rows inserted; an error means "try again later".
async fn store_rows(shared: &Shared, batch: &mut Batch<OwnedMessage>) -> Result<u64, String> {
    if batch.messages.is_empty() {
        return Ok(0);
    }
    let store = &shared.store;
    match store.insert_messages(&batch.messages).await {
        Ok(n) => return Ok(n),
        Err(e) if refusal(&e).is_some() => {
            warn!(rows = batch.messages.len(), error = %e, "store refused the batch; finding the refused rows");
        }
        Err(e) => return Err(e.to_string()),
    }
    let mut inserted = 0;
    let mut refused: Vec<(usize, &'static str, String)> = Vec::new();
    let mut start = 0;
    while start < batch.messages.len() {
        let room = batch.messages[start].room_id;
        let end = start
            + batch.messages[start..]
                .iter()
                .take_while(|m| m.room_id == room)
                .count();
        match store.insert_messages(&batch.messages[start..end]).await {
            Ok(n) => inserted += n,
            Err(e) if refusal(&e).is_some() => {
                for i in start..end {
                    match store
                        .insert_messages(std::slice::from_ref(&batch.messages[i]))
                        .await
                    {
                        Ok(n) => inserted += n,
                        Err(e) => match refusal(&e) {
                            Some(reason) => refused.push((i, reason, e.to_string())),
                            None => return Err(e.to_string()),
                        },
                    }
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        start = end;
    }
    // A refused row of a room that exists had its seq given out: reserve it before the offsets move past
    // the record (the journal's tail no longer shows it then), so the room never gives it out again.
    for (i, reason, _) in &refused {
        if *reason == "conflict" {
            let m = &batch.messages[*i];
            store
                .reserve_seq(m.room_id, m.seq)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let messages = std::mem::take(&mut batch.messages);
    let origins = std::mem::take(&mut batch.origins);
    let mut refused = refused.into_iter().peekable();
    for (i, (message, (partition, offset, source))) in messages.into_iter().zip(origins).enumerate()
    {
        match refused.next_if(|(r, _, _)| *r == i) {
            Some((_, reason, detail)) => {
                warn!(room_id = %message.room_id, seq = message.seq, partition, offset, reason, "row to the dead-letter topic");
                batch.dead.push(DeadLetter {
                    partition,
                    offset,
                    reason,
                    detail,
                    source,
                });
            }
            None => {
                batch.messages.push(message);
                batch.origins.push((partition, offset, source));
            }
        }
    }
    Ok(inserted)
}
