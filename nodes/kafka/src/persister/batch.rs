//! [`BatchBuffer`]: what the persister received and has not yet written, and when it must write it.
//!
//! Pure (no I/O, the clock is passed in), so its rules are unit-tested: a batch is ready at
//! `max_rows` records or `max_age` after its first record, whichever comes first; taking it yields the
//! rows grouped per room in seq order, the dead letters, the fences raised, and per partition the
//! offset to commit once all of it is written (one past the last record received, whether it made a
//! row or was skipped).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use banter_actors::model::ChatMessage;
use banter_actors::ports::JournalFence;

/// A record that can never be stored, with why.
#[derive(Debug)]
pub(crate) struct DeadLetter<S> {
    /// Partition it came from.
    pub(crate) partition: i32,
    /// Its offset there.
    pub(crate) offset: i64,
    /// Short reason, for the `dlq-reason` header and the metric label.
    pub(crate) reason: &'static str,
    /// The full error text.
    pub(crate) detail: String,
    /// The original record.
    pub(crate) source: S,
}

/// A decoded record waiting to be written.
#[derive(Debug)]
pub(crate) struct Row<S> {
    /// Partition it came from.
    pub(crate) partition: i32,
    /// Its offset there.
    pub(crate) offset: i64,
    /// The message.
    pub(crate) message: ChatMessage,
    /// The original record (for the dead-letter topic, should the store refuse it).
    pub(crate) source: S,
}

/// A batch taken from a [`BatchBuffer`].
#[derive(Debug)]
pub(crate) struct Batch<S> {
    /// Messages to insert, grouped per room, in seq order within a room.
    pub(crate) messages: Vec<ChatMessage>,
    /// Where each message came from (same index as `messages`).
    pub(crate) origins: Vec<(i32, i64, S)>,
    /// Records to send to the dead-letter topic.
    pub(crate) dead: Vec<DeadLetter<S>>,
    /// Fences raised by the batch's fence records, to store before its offsets are committed.
    pub(crate) fences: Vec<JournalFence>,
    /// Per partition, the offset to commit once everything above is written.
    pub(crate) offsets: Vec<(i32, i64)>,
}

impl<S> Batch<S> {
    /// Returns the number of records in the batch.
    pub(crate) fn len(&self) -> usize {
        self.messages.len() + self.dead.len()
    }
}

/// Records received and not yet taken for writing.
#[derive(Debug)]
pub(crate) struct BatchBuffer<S> {
    rows: Vec<Row<S>>,
    dead: Vec<DeadLetter<S>>,
    fences: Vec<JournalFence>,
    next_offsets: BTreeMap<i32, i64>,
    first_at: Option<Instant>,
    max_rows: usize,
    max_age: Duration,
}

impl<S> BatchBuffer<S> {
    /// Returns an empty buffer whose batches are ready at `max_rows` records or `max_age` old.
    pub(crate) fn new(max_rows: usize, max_age: Duration) -> Self {
        BatchBuffer {
            rows: Vec::with_capacity(max_rows.max(1)),
            dead: Vec::new(),
            fences: Vec::new(),
            next_offsets: BTreeMap::new(),
            first_at: None,
            max_rows: max_rows.max(1),
            max_age,
        }
    }

    fn note(&mut self, partition: i32, offset: i64, now: Instant) {
        let next = self.next_offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        self.first_at.get_or_insert(now);
    }

    /// Adds a decoded record received at `now`.
    pub(crate) fn push_row(
        &mut self,
        partition: i32,
        offset: i64,
        message: ChatMessage,
        source: S,
        now: Instant,
    ) {
        self.note(partition, offset, now);
        self.rows.push(Row {
            partition,
            offset,
            message,
            source,
        });
    }

    /// Adds a record that can never be stored, received at `now`.
    pub(crate) fn push_dead(
        &mut self,
        partition: i32,
        offset: i64,
        reason: &'static str,
        detail: String,
        source: S,
        now: Instant,
    ) {
        self.note(partition, offset, now);
        self.dead.push(DeadLetter {
            partition,
            offset,
            reason,
            detail,
            source,
        });
    }

    /// Adds a fence record received at `now`, with the fences it raised.
    pub(crate) fn push_fences(
        &mut self,
        partition: i32,
        offset: i64,
        raised: impl IntoIterator<Item = JournalFence>,
        now: Instant,
    ) {
        self.note(partition, offset, now);
        self.fences.extend(raised);
    }

    /// Adds a record that is neither stored nor a dead letter (a fence shuts it out), received at
    /// `now`: only its offset counts.
    pub(crate) fn push_skipped(&mut self, partition: i32, offset: i64, now: Instant) {
        self.note(partition, offset, now);
    }

    /// Returns the number of records held.
    pub(crate) fn len(&self) -> usize {
        self.rows.len() + self.dead.len()
    }

    /// Tells whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    /// Returns when the held records must be written at the latest, if any are held.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.first_at.map(|t| t + self.max_age)
    }

    /// Tells whether the held records make a batch at `now`: enough of them, or old enough.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.len() >= self.max_rows || self.deadline().is_some_and(|d| d <= now)
    }

    /// Tells whether the buffer holds a full batch (the persister stops fetching then, while it is
    /// still writing the previous one).
    pub(crate) fn full(&self) -> bool {
        self.len() >= self.max_rows
    }

    /// Takes everything held as one batch and empties the buffer.
    pub(crate) fn take(&mut self) -> Batch<S> {
        let mut rows = std::mem::take(&mut self.rows);
        // Grouped per room, seq order within a room (a room's records arrive in order already; the
        // sort is stable and cheap).
        rows.sort_by_key(|r| (r.message.room_id, r.message.seq));
        let (messages, origins) = rows
            .into_iter()
            .map(|r| (r.message, (r.partition, r.offset, r.source)))
            .unzip();
        let offsets = std::mem::take(&mut self.next_offsets).into_iter().collect();
        self.first_at = None;
        Batch {
            messages,
            origins,
            dead: std::mem::take(&mut self.dead),
            fences: std::mem::take(&mut self.fences),
            offsets,
        }
    }

    /// Drops every record of the given partitions (revoked: their new owner reads them again from the
    /// committed offset); returns how many were dropped.
    pub(crate) fn drop_partitions(&mut self, partitions: &[i32]) -> usize {
        let before = self.len();
        self.rows.retain(|r| !partitions.contains(&r.partition));
        self.dead.retain(|d| !partitions.contains(&d.partition));
        self.fences.retain(|f| !partitions.contains(&f.partition));
        self.next_offsets.retain(|p, _| !partitions.contains(p));
        if self.next_offsets.is_empty() {
            self.first_at = None;
        }
        before - self.len()
    }
}

#[cfg(test)]
mod tests {
    use banter_actors::model::{RoomId, UserId};
    use banter_actors::shard::{Epoch, ShardId};
    use uuid::Uuid;

    use super::*;

    fn msg(room: i64, seq: u64) -> ChatMessage {
        ChatMessage {
            room_id: RoomId(room),
            seq,
            message_id: Uuid::now_v7(),
            sender_id: UserId(1),
            body: format!("{room}/{seq}"),
            created_at_ms: 0,
            nonce: None,
            attachments: Vec::new(),
            ..Default::default()
        }
    }

    #[test]
    fn ready_on_rows_or_age_whichever_first() {
        let t0 = Instant::now();
        let mut b = BatchBuffer::<()>::new(3, Duration::from_millis(100));
        assert!(b.is_empty() && !b.ready(t0) && b.deadline().is_none());
        b.push_row(0, 10, msg(1, 1), (), t0);
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(!b.ready(t0 + Duration::from_millis(99)));
        assert!(b.ready(t0 + Duration::from_millis(100)));
        // Later records do not move the deadline.
        b.push_row(0, 11, msg(1, 2), (), t0 + Duration::from_millis(50));
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(!b.ready(t0 + Duration::from_millis(60)) && !b.full());
        b.push_dead(
            1,
            4,
            "undecodable",
            "x".into(),
            (),
            t0 + Duration::from_millis(60),
        );
        assert!(b.ready(t0 + Duration::from_millis(60)) && b.full());
    }

    #[test]
    fn take_groups_rooms_in_seq_order_and_commits_past_the_last_offset() {
        let t0 = Instant::now();
        let mut b = BatchBuffer::new(100, Duration::from_secs(1));
        // Two partitions interleaved; rooms 5 and 2 share partition 0.
        b.push_row(0, 7, msg(5, 1), "a", t0);
        b.push_row(1, 3, msg(9, 4), "b", t0);
        b.push_row(0, 8, msg(2, 1), "c", t0);
        b.push_row(0, 9, msg(5, 2), "d", t0);
        b.push_dead(1, 4, "undecodable", "bad".into(), "e", t0);
        b.push_row(1, 5, msg(9, 5), "f", t0);
        let batch = b.take();
        let keys: Vec<_> = batch
            .messages
            .iter()
            .map(|m| (m.room_id.0, m.seq))
            .collect();
        assert_eq!(keys, [(2, 1), (5, 1), (5, 2), (9, 4), (9, 5)]);
        let sources: Vec<_> = batch.origins.iter().map(|o| o.2).collect();
        assert_eq!(sources, ["c", "a", "d", "b", "f"]);
        assert_eq!(batch.origins[0], (0, 8, "c"));
        assert_eq!(batch.dead.len(), 1);
        assert_eq!((batch.dead[0].partition, batch.dead[0].offset), (1, 4));
        assert_eq!(batch.offsets, [(0, 10), (1, 6)]);
        assert_eq!(batch.len(), 6);
        // The buffer starts over.
        assert!(b.is_empty() && b.deadline().is_none());
        assert_eq!(b.len(), 0);
        assert!(b.take().offsets.is_empty());
    }

    #[test]
    fn skipped_records_and_fences_move_the_offsets_and_age_the_batch() {
        let t0 = Instant::now();
        let mut b = BatchBuffer::<()>::new(100, Duration::from_millis(10));
        let fence = JournalFence {
            partition: 2,
            shard: ShardId(4),
            epoch: Epoch(3),
        };
        b.push_fences(2, 5, [fence], t0);
        b.push_skipped(2, 6, t0);
        b.push_skipped(0, 1, t0);
        assert_eq!(b.len(), 0, "no rows, no dead letters");
        assert!(!b.is_empty() && !b.full());
        assert!(b.ready(t0 + Duration::from_millis(10)), "offsets to commit");
        let batch = b.take();
        assert_eq!(batch.offsets, [(0, 2), (2, 7)]);
        assert_eq!(batch.fences, [fence]);
        assert!(batch.messages.is_empty() && batch.dead.is_empty());
        b.push_fences(2, 8, [fence], t0);
        b.push_fences(
            1,
            8,
            [JournalFence {
                partition: 1,
                ..fence
            }],
            t0,
        );
        b.drop_partitions(&[2]);
        assert_eq!(
            b.take().fences,
            [JournalFence {
                partition: 1,
                ..fence
            }]
        );
    }

    #[test]
    fn revoked_partitions_are_dropped() {
        let t0 = Instant::now();
        let mut b = BatchBuffer::new(100, Duration::from_secs(1));
        b.push_row(0, 1, msg(1, 1), (), t0);
        b.push_row(1, 1, msg(2, 1), (), t0);
        b.push_dead(1, 2, "invalid", String::new(), (), t0);
        assert_eq!(b.drop_partitions(&[1]), 2);
        let batch = b.take();
        assert_eq!(batch.offsets, [(0, 2)]);
        assert_eq!(batch.messages.len(), 1);
        b.push_row(3, 1, msg(2, 1), (), t0);
        assert_eq!(b.drop_partitions(&[3]), 1);
        assert!(b.is_empty() && b.deadline().is_none());
    }
}
