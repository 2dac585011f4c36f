//! The ring: a room's most recent acknowledged messages, each with the frame tail subscribers got.
//!
//! **Invariant**: the ring holds every acknowledged message of the room from its first entry's seq up
//! to the room's acknowledged seq, in seq order. The only holes are seqs that were never acknowledged
//! (their append failed). Resume (replay after `since`) and history (the journaled tail the store may
//! not have yet) both rely on it: whatever lies in that range and is not in the ring was never
//! acknowledged.

//!
//! An edit or a delete is an item of its own (it has a seq); when it enters the ring it is also
//! applied to its message, when the ring holds it: the message's record and frame then show its
//! latest body (or its tombstone) to history readers and resuming subscribers, and a delete blanks
//! the ring's edits of it, so its text is nowhere in memory either.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::Window;
use crate::encode::RoomFrames;
use crate::model::{ChatMessage, MessageKind, Seq};

/// One acknowledged message: the record (for history), its encoded frame tail (for replay) and its
/// sender's name (to encode the frame again when an event changes it).
struct Entry {
    message: ChatMessage,
    tail: Bytes,
    sender: Arc<str>,
}

/// The most recent acknowledged messages of a room, at most `capacity` of them.
pub(super) struct Ring {
    entries: VecDeque<Entry>,
    capacity: usize,
    frames: RoomFrames,
}

impl Ring {
    /// Returns an empty ring that keeps the newest `capacity` messages (at least one) of the room
    /// whose frames `frames` encodes.
    pub(super) fn new(capacity: usize, frames: RoomFrames) -> Ring {
        Ring {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            frames,
        }
    }

    /// Appends the newest acknowledged message, dropping the oldest when full.
    pub(super) fn push(&mut self, message: ChatMessage, tail: Bytes, sender: Arc<str>) {
        debug_assert!(
            self.entries
                .back()
                .is_none_or(|last| last.message.seq < message.seq),
            "ring entries rise by seq"
        );
        if self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.apply(&message);
        self.entries.push_back(Entry {
            message,
            tail,
            sender,
        });
    }

    /// Returns the held message with `seq`.
    pub(super) fn get(&self, seq: Seq) -> Option<&ChatMessage> {
        let at = self.entries.partition_point(|e| e.message.seq < seq);
        self.entries
            .get(at)
            .map(|e| &e.message)
            .filter(|m| m.seq == seq)
    }

    /// Applies an edit or a delete to the message it changes, when held (see the module doc).
    fn apply(&mut self, event: &ChatMessage) {
        let Some(target) = event.kind.target() else {
            return;
        };
        let at = self.entries.partition_point(|e| e.message.seq < target);
        let Some(entry) = self.entries.get_mut(at).filter(|e| e.message.seq == target) else {
            return;
        };
        if !entry.message.apply(event) {
            return;
        }
        entry.tail = self.frames.message_tail(&entry.message, &entry.sender);
        if matches!(event.kind, MessageKind::Delete(_)) {
            for e in self.entries.range_mut(at + 1..) {
                if e.message.kind == MessageKind::Edit(target) && !e.message.body.is_empty() {
                    e.message.body = String::new();
                    e.tail = self.frames.message_tail(&e.message, &e.sender);
                }
            }
        }
    }

    /// Inserts in seq order a message acknowledged late (its outcome was unknown while higher seqs
    /// were acknowledged); one older than every message of a full ring is not kept.
    pub(super) fn insert(&mut self, message: ChatMessage, tail: Bytes, sender: Arc<str>) {
        let at = self
            .entries
            .partition_point(|e| e.message.seq < message.seq);
        if self
            .entries
            .get(at)
            .is_some_and(|e| e.message.seq == message.seq)
        {
            return;
        }
        let full = self.entries.len() >= self.capacity;
        if full && at == 0 {
            return;
        }
        self.apply(&message);
        let entry = Entry {
            message,
            tail,
            sender,
        };
        if full {
            self.entries.pop_front();
            self.entries.insert(at - 1, entry);
        } else {
            self.entries.insert(at, entry);
        }
    }

    /// Returns the seq of the oldest message held.
    pub(super) fn first_seq(&self) -> Option<Seq> {
        self.entries.front().map(|e| e.message.seq)
    }

    /// Returns the frame tails of the messages with a seq above `since`, oldest first.
    pub(super) fn tails_after(&self, since: Seq) -> Vec<(Seq, Bytes)> {
        let start = self.entries.partition_point(|e| e.message.seq <= since);
        self.entries
            .range(start..)
            .map(|e| (e.message.seq, e.tail.clone()))
            .collect()
    }

    /// Returns the newest `limit` (at least one) acknowledged messages with a seq in `(after, upper]`,
    /// where `upper` is at most the room's acknowledged seq, as a [`Window`] — or `None` when the ring
    /// does not reach back far enough to know them all.
    pub(super) fn window(&self, after: Seq, upper: Seq, limit: usize) -> Option<Window> {
        if upper <= after {
            return Some(Window {
                from: after,
                messages: Vec::new(),
            });
        }
        let limit = limit.max(1);
        let first = self.first_seq()?;
        let lo = self.entries.partition_point(|e| e.message.seq <= after);
        let hi = self.entries.partition_point(|e| e.message.seq <= upper);
        let messages: Vec<ChatMessage> = self
            .entries
            .range(lo..hi)
            .rev()
            .take(limit)
            .map(|e| e.message.clone())
            .collect();
        match messages.last() {
            // A full page: by the invariant, nothing between its oldest message and `upper` is missing.
            Some(oldest) if messages.len() == limit => Some(Window {
                from: oldest.seq - 1,
                messages,
            }),
            // The ring starts at or before `after + 1`: it holds all of the range.
            _ if first <= after + 1 => Some(Window {
                from: after,
                messages,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::model::{RoomId, UserId};

    fn ring(capacity: usize, seqs: impl IntoIterator<Item = Seq>) -> Ring {
        let mut ring = Ring::new(capacity, RoomFrames::new(RoomId(1)));
        for seq in seqs {
            let message = ChatMessage {
                room_id: RoomId(1),
                seq,
                message_id: Uuid::now_v7(),
                sender_id: UserId(1),
                body: format!("m{seq}"),
                created_at_ms: 0,
                nonce: None,
                attachments: Vec::new(),
                ..Default::default()
            };
            ring.push(
                message,
                Bytes::from(format!("tail {seq}")),
                Arc::from("ann"),
            );
        }
        ring
    }

    fn seqs(w: &Window) -> (Seq, Vec<Seq>) {
        (w.from, w.messages.iter().map(|m| m.seq).collect())
    }

    #[test]
    fn keeps_the_newest_capacity_messages() {
        let r = ring(4, 1..=10);
        assert_eq!(r.first_seq(), Some(7));
        let tails: Vec<Seq> = r.tails_after(8).into_iter().map(|(s, _)| s).collect();
        assert_eq!(tails, [9, 10]);
        assert_eq!(r.tails_after(0).len(), 4);
        assert!(r.tails_after(10).is_empty());
        assert_eq!(r.tails_after(8)[0].1, Bytes::from("tail 9"));
    }

    #[test]
    fn a_window_the_ring_covers_is_answered_newest_first() {
        let r = ring(8, 3..=10);
        // All of (4, 10]: the ring starts below 5.
        let w = r.window(4, 10, 50).expect("covered");
        assert_eq!(seqs(&w), (4, vec![10, 9, 8, 7, 6, 5]));
        // The ring starts exactly at after + 1.
        let w = r.window(2, 10, 50).expect("covered");
        assert_eq!(seqs(&w), (2, (3..=10).rev().collect()));
        // `upper` below the newest message (a `before`).
        let w = r.window(4, 7, 50).expect("covered");
        assert_eq!(seqs(&w), (4, vec![7, 6, 5]));
        // Nothing above `after`: the one comparison of the common case.
        let w = r.window(10, 10, 50).expect("empty window");
        assert_eq!(seqs(&w), (10, vec![]));
        assert_eq!(
            seqs(&ring(4, []).window(0, 0, 50).expect("empty")),
            (0, vec![])
        );
    }

    #[test]
    fn a_full_page_is_answered_even_when_the_ring_starts_above_the_window() {
        let r = ring(8, 3..=10);
        let w = r.window(0, 10, 3).expect("a full page");
        assert_eq!(seqs(&w), (7, vec![10, 9, 8]));
        let w = r.window(0, 10, 8).expect("a full page");
        assert_eq!(seqs(&w), (2, (3..=10).rev().collect()));
    }

    #[test]
    fn a_window_reaching_below_the_ring_is_not_answered() {
        let r = ring(8, 3..=10);
        assert!(r.window(0, 10, 9).is_none(), "seqs 1 and 2 are not held");
        assert!(r.window(1, 5, 50).is_none(), "seq 2 is not held");
        assert!(r.window(0, 2, 50).is_none(), "wholly below the ring");
        assert!(ring(4, []).window(0, 3, 50).is_none(), "an empty ring");
    }

    #[test]
    fn a_late_message_is_inserted_in_seq_order() {
        let mut r = ring(4, [3, 4, 6, 7]);
        let late = ring(1, [5]).entries.pop_front().expect("one entry");
        r.insert(late.message, late.tail, late.sender);
        let tails: Vec<Seq> = r.tails_after(0).into_iter().map(|(s, _)| s).collect();
        assert_eq!(tails, [4, 5, 6, 7], "the oldest goes to make room");
        let older = ring(1, [2]).entries.pop_front().expect("one entry");
        r.insert(older.message, older.tail, older.sender);
        assert_eq!(r.first_seq(), Some(4), "older than a full ring: not kept");
    }

    #[test]
    fn holes_of_failed_appends_do_not_hide_messages() {
        // Seq 6 was never acknowledged.
        let r = ring(8, [3, 4, 5, 7, 8]);
        let w = r.window(3, 8, 50).expect("covered");
        assert_eq!(seqs(&w), (3, vec![8, 7, 5, 4]));
        let w = r.window(0, 8, 2).expect("a full page");
        assert_eq!(seqs(&w), (6, vec![8, 7]));
    }

    fn event(seq: Seq, kind: MessageKind, body: &str) -> ChatMessage {
        ChatMessage {
            room_id: RoomId(1),
            seq,
            message_id: Uuid::now_v7(),
            sender_id: UserId(1),
            body: body.into(),
            created_at_ms: seq as i64 * 10,
            kind,
            ..Default::default()
        }
    }

    fn push(r: &mut Ring, m: ChatMessage) {
        let tail = r.frames.message_tail(&m, "ann");
        r.push(m, tail, Arc::from("ann"));
    }

    #[test]
    fn an_edit_and_a_delete_change_the_held_message_and_its_frame() {
        let mut r = ring(8, 1..=3);
        push(&mut r, event(4, MessageKind::Edit(2), "better"));
        let m = r.get(2).expect("held");
        assert_eq!(
            (m.body.as_str(), m.marks.edited_at_ms),
            ("better", Some(40))
        );
        let replay = r.tails_after(1);
        assert!(
            String::from_utf8_lossy(&replay[0].1).contains("better"),
            "the replayed frame shows the latest body"
        );
        push(&mut r, event(5, MessageKind::Delete(2), ""));
        let m = r.get(2).expect("held");
        assert_eq!((m.body.as_str(), m.marks.deleted_at_ms), ("", Some(50)));
        assert_eq!(
            r.get(4).expect("the edit").body,
            "",
            "the edit's text is gone too"
        );
        let frames: Vec<String> = r
            .tails_after(0)
            .iter()
            .map(|(_, t)| String::from_utf8_lossy(t).into_owned())
            .collect();
        assert!(
            frames
                .iter()
                .all(|f| !f.contains("better") && !f.contains("m2"))
        );
        // A later edit of the deleted message changes nothing; an event of a message the ring does
        // not hold is kept all the same.
        push(&mut r, event(6, MessageKind::Edit(2), "again"));
        assert_eq!(r.get(2).expect("held").body, "");
        push(&mut r, event(7, MessageKind::Delete(99), ""));
        assert_eq!(r.tails_after(6).len(), 1);
        assert!(r.get(99).is_none());
    }
}
