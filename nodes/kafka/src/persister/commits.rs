//! Committing offsets: a task that commits, synchronously and one commit at a time, the offsets of
//! the batches the writer has stored, while the writer goes on with the next batch.
//!
//! A batch's offsets are handed over only once its rows are committed in the store (and its dead
//! letters acknowledged), so an offset is never committed before what precedes it is stored. Commits
//! are not on the writer's path: on tansu a commit waits behind the broker's reads and took 300–700 ms
//! while the group caught up (*measured*), where an insert of 500 rows takes 10–20 ms. Offsets queued
//! while a commit runs are merged (the newest per partition) into the next one; a failed commit is
//! retried with backoff, merged with what came since. Only partitions this member still owns are
//! committed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::GroupConsumer;

/// First pause after a failed commit; doubles up to `max_backoff`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Offsets stored and not yet committed: the next offset to commit per partition.
#[derive(Default)]
struct Queue {
    offsets: Mutex<BTreeMap<i32, i64>>,
    wake: Notify,
}

impl Queue {
    fn merge(&self, offsets: impl IntoIterator<Item = (i32, i64)>) {
        let mut queued = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        for (partition, next) in offsets {
            let o = queued.entry(partition).or_insert(next);
            *o = (*o).max(next);
        }
    }

    fn take(&self) -> BTreeMap<i32, i64> {
        std::mem::take(&mut *self.offsets.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The committing task and its queue.
pub(super) struct Committer {
    queue: Arc<Queue>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Committer {
    /// Starts committing offsets of `topic` with `consumer`.
    pub(super) fn start(
        consumer: Arc<GroupConsumer>,
        topic: String,
        max_backoff: Duration,
    ) -> Committer {
        let queue = Arc::new(Queue::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(
            consumer,
            topic,
            queue.clone(),
            max_backoff.max(MIN_BACKOFF),
            stopped,
        ));
        Committer { queue, stop, task }
    }

    /// Queues the offsets of a stored batch.
    pub(super) fn push(&self, offsets: &[(i32, i64)]) {
        self.queue.merge(offsets.iter().copied());
        self.queue.wake.notify_one();
    }

    /// Commits what is queued (one attempt, within `timeout`), then stops.
    pub(super) async fn close(self, timeout: Duration) {
        let _ = self.stop.send(true);
        self.queue.wake.notify_one();
        let mut task = self.task;
        if tokio::time::timeout(timeout, &mut task).await.is_err() {
            task.abort();
            debug!("last offsets not committed; they are read again at restart");
        }
    }
}

async fn run(
    consumer: Arc<GroupConsumer>,
    topic: String,
    queue: Arc<Queue>,
    max_backoff: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let stopping = *stopped.borrow();
        let offsets = queue.take();
        if offsets.is_empty() {
            if stopping {
                return;
            }
            tokio::select! {
                () = queue.wake.notified() => {}
                changed = stopped.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let (c, t, o) = (consumer.clone(), topic.clone(), offsets.clone());
        let committed = tokio::task::spawn_blocking(move || commit(&c, &t, &o))
            .await
            .unwrap_or(Err(KafkaError::Canceled));
        match committed {
            Ok(()) => backoff = MIN_BACKOFF,
            Err(e) if stopping => {
                debug!(error = %e, "last offsets not committed; they are read again at restart");
                return;
            }
            Err(e) => {
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "offsets not committed");
                // Newer offsets queued meanwhile win; the failed ones cover the other partitions.
                queue.merge(offsets);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    changed = stopped.changed() => if changed.is_err() { return },
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// Commits, synchronously, the offsets of the partitions this member still owns.
fn commit(consumer: &GroupConsumer, topic: &str, offsets: &BTreeMap<i32, i64>) -> KafkaResult<()> {
    let ctx = consumer.context();
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for (&partition, &next) in offsets.iter().filter(|(p, _)| ctx.owns(**p)) {
        tpl.add_partition_offset(topic, partition, Offset::Offset(next))?;
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    consumer.commit(&tpl, CommitMode::Sync)
}

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn queued_offsets_merge_to_the_newest_per_partition() {
        let q = Queue::default();
        q.merge([(0, 10), (1, 5)]);
        q.merge([(0, 7), (2, 3)]);
        q.merge([(1, 9)]);
        assert_eq!(
            q.take().into_iter().collect::<Vec<_>>(),
            [(0, 10), (1, 9), (2, 3)]
        );
        assert!(q.take().is_empty());
    }
}
