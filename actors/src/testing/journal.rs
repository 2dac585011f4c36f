//! The in-memory [`FakeJournal`]: it holds appends until a test completes them (or completes them at
//! once), and reports to the room's sink synchronously.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::lock;
use crate::model::{ChatMessage, RoomId, Seq};
use crate::ports::{AppendSink, Journal, JournalError};
use crate::shard::Term;

/// What [`FakeJournal::append`] does with a new record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendMode {
    /// The append is durable at once.
    Complete,
    /// The append waits until the test calls [`FakeJournal::complete`].
    Hold,
    /// `append` panics (crashes the calling actor).
    Panic,
}

struct Held {
    sink: Arc<dyn AppendSink>,
}

struct JournalData {
    mode: AppendMode,
    /// Highest durable seq per room.
    durable: HashMap<RoomId, Seq>,
    held: BTreeMap<(RoomId, Seq), Held>,
    /// Every record `append` was called with, in call order.
    log: Vec<ChatMessage>,
    /// The term each record of `log` was written under.
    terms: Vec<Term>,
    /// Records whose append failed, or whose unknown outcome was that they did not land.
    lost: HashSet<(RoomId, Seq)>,
    /// `read_after` fails while this is set.
    fail_reads: bool,
    /// `read_after` calls so far.
    reads: usize,
}

/// A [`Journal`] whose appends the test completes, in any order, or fails.
pub(crate) struct FakeJournal {
    data: Mutex<JournalData>,
}

impl FakeJournal {
    /// Returns a journal in `mode` with nothing journaled.
    pub(crate) fn new(mode: AppendMode) -> Arc<FakeJournal> {
        Arc::new(FakeJournal {
            data: Mutex::new(JournalData {
                mode,
                durable: HashMap::new(),
                held: BTreeMap::new(),
                log: Vec::new(),
                terms: Vec::new(),
                lost: HashSet::new(),
                fail_reads: false,
                reads: 0,
            }),
        })
    }

    /// Changes what later appends do.
    pub(crate) fn set_mode(&self, mode: AppendMode) {
        lock(&self.data).mode = mode;
    }

    /// Pretends `seq` records of `room` were journaled before the test.
    pub(crate) fn set_last_seq(&self, room: RoomId, seq: Seq) {
        lock(&self.data).durable.insert(room, seq);
    }

    /// Returns the term of each record `append` was called with, in call order.
    pub(crate) fn terms(&self) -> Vec<Term> {
        lock(&self.data).terms.clone()
    }

    /// Returns the records `append` was called with, in call order.
    pub(crate) fn appended(&self) -> Vec<ChatMessage> {
        lock(&self.data).log.clone()
    }

    /// Returns the seqs of `room` whose append is held.
    pub(crate) fn held(&self, room: RoomId) -> Vec<Seq> {
        lock(&self.data)
            .held
            .keys()
            .filter(|(r, _)| *r == room)
            .map(|(_, s)| *s)
            .collect()
    }

    /// Completes the held append of `(room, seq)` with `result`; the room's mailbox has the report
    /// when this returns.
    pub(crate) async fn complete(&self, room: RoomId, seq: Seq, result: Result<(), JournalError>) {
        self.complete_run(room, seq, seq, result);
    }

    /// Fails the held append of `(room, seq)` with an unknown outcome; `landed` tells whether the
    /// record is in the journal all the same (a later `read_after` finds it).
    pub(crate) fn complete_unknown(&self, room: RoomId, seq: Seq, landed: bool) {
        let sink = {
            let mut d = lock(&self.data);
            if landed {
                let durable = d.durable.entry(room).or_default();
                *durable = (*durable).max(seq);
            } else {
                d.lost.insert((room, seq));
            }
            d.held.remove(&(room, seq))
        };
        let held = sink.unwrap_or_else(|| panic!("no held append of room {room} seq {seq}"));
        held.sink
            .settled(seq, seq, Err(JournalError::Unknown("timed out".into())));
    }

    /// Makes `read_after` fail (`true`) or work again.
    pub(crate) fn fail_reads(&self, fail: bool) {
        lock(&self.data).fail_reads = fail;
    }

    /// Returns how many times `read_after` was called.
    pub(crate) fn reads(&self) -> usize {
        lock(&self.data).reads
    }

    /// Completes the held appends of `first..=last` of `room` with `result`, in one report as a group
    /// commit makes it.
    pub(crate) fn complete_run(
        &self,
        room: RoomId,
        first: Seq,
        last: Seq,
        result: Result<(), JournalError>,
    ) {
        let mut sink = None;
        {
            let mut d = lock(&self.data);
            if result.is_ok() {
                let durable = d.durable.entry(room).or_default();
                *durable = (*durable).max(last);
            } else {
                d.lost.extend((first..=last).map(|seq| (room, seq)));
            }
            for seq in first..=last {
                let held = d.held.remove(&(room, seq));
                let held =
                    held.unwrap_or_else(|| panic!("no held append of room {room} seq {seq}"));
                sink = Some(held.sink);
            }
        }
        if let Some(sink) = sink {
            sink.settled(first, last, result);
        }
    }
}

impl Journal for FakeJournal {
    fn append(
        &self,
        message: &ChatMessage,
        term: Term,
        _trace: &crate::trace::TraceParent,
        sink: &Arc<dyn AppendSink>,
    ) {
        let mut d = lock(&self.data);
        let (room, seq) = (message.room_id, message.seq);
        d.terms.push(term);
        match d.mode {
            AppendMode::Panic => {
                drop(d);
                panic!("fake journal: append of room {room} seq {seq} panics");
            }
            AppendMode::Complete => {
                d.log.push(message.clone());
                let durable = d.durable.entry(room).or_default();
                *durable = (*durable).max(seq);
                drop(d);
                sink.settled(seq, seq, Ok(()));
            }
            AppendMode::Hold => {
                d.log.push(message.clone());
                d.held.insert((room, seq), Held { sink: sink.clone() });
            }
        }
    }

    fn last_seq(&self, room: RoomId) -> BoxFuture<'static, Result<Seq, JournalError>> {
        let seq = lock(&self.data).durable.get(&room).copied().unwrap_or(0);
        futures::future::ready(Ok(seq)).boxed()
    }

    fn read_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<ChatMessage>, JournalError>> {
        let mut d = lock(&self.data);
        d.reads += 1;
        if d.fail_reads {
            return futures::future::ready(Err(JournalError::Unavailable("down".into()))).boxed();
        }
        let durable = d.durable.get(&room).copied().unwrap_or(0);
        let mut out: Vec<ChatMessage> = d
            .log
            .iter()
            .filter(|m| m.room_id == room && m.seq > after && m.seq <= durable)
            .filter(|m| !d.lost.contains(&(room, m.seq)) && !d.held.contains_key(&(room, m.seq)))
            .cloned()
            .collect();
        out.sort_by_key(|m| m.seq);
        out.truncate(limit as usize);
        futures::future::ready(Ok(out)).boxed()
    }
}
