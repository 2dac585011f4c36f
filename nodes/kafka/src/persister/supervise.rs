//! Supervision of the consumer loop: a panic in a batch writer (or in the loop itself) does not stop
//! the persister.
//!
//! The loop that saw its writer panic ends as on shutdown, except that it writes nothing more: the
//! offsets of the batches stored before are committed, the panicked batch and what was buffered after
//! it are dropped, and the consumer leaves the group. After a backoff the supervisor starts a new loop
//! on a fresh consumer, which the group assigns partitions from the committed offsets. Offsets are
//! committed only after the store committed the rows, so whatever the dead loop had not committed is
//! read again and inserted again, idempotently on `(room_id, seq)`: nothing is lost and no row is
//! stored twice (a dead letter of the panicked batch may be sent twice, as after any retry).
//!
//! Each restart is logged at error and counted in `banter_persister_restarts_total`. The backoff
//! doubles from [`RESTART_MIN_BACKOFF`] up to `max_backoff_ms` while restarted loops panic before
//! storing a batch — a panic that recurs on the same records holds their partitions back, visibly,
//! rather than skipping them — and starts over once a loop has stored one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::writer::Shared;
use super::{GroupConsumer, Worker, group_consumer};
use crate::config::{KafkaConfig, PersisterConfig};
use crate::metrics as m;

/// First wait before a restart; doubles up to the persister's `max_backoff_ms`.
pub(super) const RESTART_MIN_BACKOFF: Duration = Duration::from_millis(200);

/// How a run of the consumer loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Exit {
    /// Told to stop.
    Stopped,
    /// A batch writer panicked: the loop stopped without writing what it buffered.
    WriterPanicked,
}

/// What the supervisor needs to start a consumer loop again.
pub(super) struct Supervisor {
    pub(super) kafka: KafkaConfig,
    pub(super) config: PersisterConfig,
    pub(super) shared: Arc<Shared>,
}

impl Supervisor {
    /// Runs the consumer loop on `first`, then on a fresh consumer after each panic, until shutdown.
    pub(super) async fn run(self, first: Arc<GroupConsumer>, mut shutdown: watch::Receiver<bool>) {
        let max_backoff =
            Duration::from_millis(self.config.max_backoff_ms).max(RESTART_MIN_BACKOFF);
        let mut backoff = RESTART_MIN_BACKOFF;
        let mut next = Some(first);
        let stored = Arc::new(AtomicU64::new(0));
        while !*shutdown.borrow() {
            let consumer = match next.take() {
                Some(c) => c,
                None => match group_consumer(&self.kafka, &self.config) {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(
                            error = format!("{e:#}"),
                            retry_in_ms = backoff.as_millis() as u64,
                            "persister consumer not recreated"
                        );
                        if !wait(&mut shutdown, backoff).await {
                            break;
                        }
                        backoff = (backoff * 2).min(max_backoff);
                        continue;
                    }
                },
            };
            let before = stored.load(Ordering::Relaxed);
            let worker = Worker::new(
                consumer,
                self.shared.clone(),
                &self.kafka,
                &self.config,
                stored.clone(),
            );
            let reason = match tokio::spawn(worker.run(shutdown.clone())).await {
                Ok(Exit::Stopped) => break,
                Ok(Exit::WriterPanicked) => "batch writer panicked",
                Err(e) if e.is_panic() => {
                    error!(error = %e, "persister consumer loop panicked");
                    "consumer loop panicked"
                }
                // Cancelled: the runtime is shutting down.
                Err(_) => break,
            };
            if stored.load(Ordering::Relaxed) > before {
                backoff = RESTART_MIN_BACKOFF;
            }
            metrics::counter!(m::PERSISTER_RESTARTS).increment(1);
            error!(
                reason,
                restart_in_ms = backoff.as_millis() as u64,
                "persister restarts from the committed offsets"
            );
            if !wait(&mut shutdown, backoff).await {
                break;
            }
            backoff = (backoff * 2).min(max_backoff);
        }
        info!("persister stopped");
    }
}

/// Waits `delay`; returns `false` when shutdown comes first.
async fn wait(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => !*shutdown.borrow(),
        _ = shutdown.changed() => false,
    }
}
