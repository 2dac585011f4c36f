//! The in-process journal of the embedded default: a group-commit writer in front of the store.
//!
//! Appends are queued in call order on one writer task, which writes everything queued (up to
//! `max_batch`) in one store transaction and then reports the batch to the rooms' sinks, one report
//! per run of consecutive seqs of a room: a message is acknowledged only once its row is committed, so
//! it survives `kill -9`. [`Journal::last_seq`] goes through the same
//! queue, behind every append queued before it: a room that restarts after a crash learns its last seq
//! only after the appends its previous activation left in flight are settled, so no seq is reused.
//! Here the journal's records are the store's rows, so [`Journal::read_after`] reads the store.
//!
//! A row the store did not insert (its `(room_id, seq)` was taken) fails its append, unless the row
//! stored under that seq is this very message (a replay): the seq belongs to another message.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use banter_actors::model::{ChatMessage, RoomId, Seq};
use banter_actors::ports::{AppendSink, Journal, JournalError, Store};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

enum Op {
    Append(ChatMessage, Arc<dyn AppendSink>),
    LastSeq(RoomId, oneshot::Sender<Result<Seq, JournalError>>),
    ReadAfter(
        RoomId,
        Seq,
        u32,
        oneshot::Sender<Result<Vec<ChatMessage>, JournalError>>,
    ),
}

/// The in-process journal.
#[derive(Clone)]
pub struct LocalJournal {
    tx: mpsc::Sender<Op>,
}

impl LocalJournal {
    /// Starts the writer task over `store`, writing at most `max_batch` messages per transaction and
    /// queueing at most `max_queue` operations; past that, appends fail at once ("journal overloaded")
    /// rather than letting memory grow while the store is slow.
    pub fn start(store: Arc<dyn Store>, max_batch: usize, max_queue: usize) -> LocalJournal {
        let (tx, rx) = mpsc::channel(max_queue.max(1));
        tokio::spawn(writer(store, rx, max_batch.max(1)));
        LocalJournal { tx }
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Op>, max_batch: usize) {
    let commit_seconds = metrics::histogram!(crate::metrics::JOURNAL_COMMIT_SECONDS);
    let commit_messages = metrics::histogram!(crate::metrics::JOURNAL_COMMIT_MESSAGES);
    let mut batch: Vec<ChatMessage> = Vec::with_capacity(max_batch);
    let mut sinks: Vec<Arc<dyn AppendSink>> = Vec::with_capacity(max_batch);
    let mut runs = Runs::default();
    let mut carried: Option<Op> = None;
    loop {
        let first = match carried.take() {
            Some(op) => op,
            None => match rx.recv().await {
                Some(op) => op,
                None => return,
            },
        };
        match first {
            Op::LastSeq(room, reply) => {
                let r = store
                    .last_seq(room)
                    .await
                    .map_err(|e| JournalError::Unavailable(e.to_string()));
                let _ = reply.send(r);
                continue;
            }
            Op::ReadAfter(room, after, limit, reply) => {
                let r = store
                    .messages_after(room, after, limit)
                    .await
                    .map_err(|e| JournalError::Unavailable(e.to_string()));
                let _ = reply.send(r);
                continue;
            }
            Op::Append(m, sink) => {
                batch.push(m);
                sinks.push(sink);
            }
        }
        // Take whatever else is already queued, up to a full batch; stop at a barrier.
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Op::Append(m, sink)) => {
                    batch.push(m);
                    sinks.push(sink);
                }
                Ok(op @ (Op::LastSeq(..) | Op::ReadAfter(..))) => {
                    carried = Some(op);
                    break;
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        // A panic in the store fails the batch (its senders hear of it) instead of the writer.
        let result = match AssertUnwindSafe(store.insert_messages(&batch))
            .catch_unwind()
            .await
        {
            Ok(r) => r.map_err(|e| JournalError::Unavailable(e.to_string())),
            Err(_) => Err(JournalError::Unavailable("journal write panicked".into())),
        };
        commit_seconds.record(started.elapsed().as_secs_f64());
        commit_messages.record(batch.len() as f64);
        let outcomes = match result {
            Ok(n) if n >= batch.len() as u64 => {
                debug!(batch = batch.len(), inserted = n, "journal batch committed");
                vec![Ok(()); batch.len()]
            }
            Ok(n) => {
                warn!(
                    batch = batch.len(),
                    inserted = n,
                    "journal batch committed with rows not inserted"
                );
                not_inserted(store.as_ref(), &batch).await
            }
            Err(e) => {
                warn!(batch = batch.len(), error = %e, "journal batch failed");
                vec![Err(e); batch.len()]
            }
        };
        runs.report(&batch, &mut sinks, &outcomes);
        batch.clear();
    }
}

/// Returns the outcome of each message of a batch the store inserted only partly: a message is
/// stored when the row under its `(room_id, seq)` is this message; otherwise the seq was taken.
async fn not_inserted(store: &dyn Store, batch: &[ChatMessage]) -> Vec<Result<(), JournalError>> {
    let mut out = Vec::with_capacity(batch.len());
    for m in batch {
        let stored = store
            .messages_after(m.room_id, m.seq - 1, 1)
            .await
            .map_err(|e| JournalError::Unavailable(e.to_string()));
        out.push(match stored {
            Ok(rows) if rows.first().is_some_and(|r| r.seq == m.seq && r.message_id == m.message_id) => {
                Ok(())
            }
            Ok(_) => {
                warn!(room_id = %m.room_id, seq = m.seq, "journal append refused: the seq is taken");
                Err(JournalError::Unavailable(format!(
                    "seq {} of room {} is taken",
                    m.seq, m.room_id
                )))
            }
            Err(e) => Err(e),
        });
    }
    out
}

/// Tells whether two outcomes can be reported as one.
fn same(a: &Result<(), JournalError>, b: &Result<(), JournalError>) -> bool {
    match (a, b) {
        (Ok(()), Ok(())) => true,
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

/// Groups a committed batch into runs of consecutive seqs per sink, so a room hears once per commit
/// however many of its messages the commit held. Kept across batches for its allocations.
#[derive(Default)]
struct Runs {
    /// Sink (by address) → index of its open run in `runs`.
    open: HashMap<usize, usize>,
    runs: Vec<Run>,
}

/// A run of consecutive seqs of one sink with one outcome: sink, first, last, outcome.
type Run = (Arc<dyn AppendSink>, Seq, Seq, Result<(), JournalError>);

impl Runs {
    fn report(
        &mut self,
        batch: &[ChatMessage],
        sinks: &mut Vec<Arc<dyn AppendSink>>,
        outcomes: &[Result<(), JournalError>],
    ) {
        for ((m, sink), outcome) in batch.iter().zip(sinks.drain(..)).zip(outcomes) {
            let key = Arc::as_ptr(&sink).cast::<()>() as usize;
            match self.open.get(&key).map(|&i| &mut self.runs[i]) {
                Some((_, _, last, run)) if *last + 1 == m.seq && same(run, outcome) => {
                    *last = m.seq;
                }
                _ => {
                    self.open.insert(key, self.runs.len());
                    self.runs.push((sink, m.seq, m.seq, outcome.clone()));
                }
            }
        }
        for (sink, first, last, outcome) in self.runs.drain(..) {
            sink.settled(first, last, outcome);
        }
        self.open.clear();
    }
}

fn closed() -> JournalError {
    JournalError::Unavailable("journal stopped".into())
}

/// Why the writer's queue refused an operation.
fn refused(e: mpsc::error::TrySendError<Op>) -> JournalError {
    match e {
        mpsc::error::TrySendError::Full(_) => {
            JournalError::Unavailable("journal overloaded".into())
        }
        mpsc::error::TrySendError::Closed(_) => closed(),
    }
}

impl LocalJournal {
    /// Queues an operation behind everything queued before it and awaits its answer.
    fn request<T: Send + 'static>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Op,
    ) -> BoxFuture<'static, Result<T, JournalError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.try_send(op(tx)).map_err(refused);
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or_else(|_| Err(closed()))
        })
    }
}

impl Journal for LocalJournal {
    fn append(
        &self,
        message: &ChatMessage,
        _term: banter_actors::shard::Term,
        _trace: &banter_actors::trace::TraceParent,
        sink: &Arc<dyn AppendSink>,
    ) {
        // try_send keeps the call order (a room's appends stay in seq order) without awaiting.
        if let Err(e) = self.tx.try_send(Op::Append(message.clone(), sink.clone())) {
            sink.settled(message.seq, message.seq, Err(refused(e)));
        }
    }

    fn last_seq(&self, room: RoomId) -> BoxFuture<'static, Result<Seq, JournalError>> {
        self.request(|tx| Op::LastSeq(room, tx))
    }

    fn read_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<ChatMessage>, JournalError>> {
        self.request(|tx| Op::ReadAfter(room, after, limit, tx))
    }

    /// An append resolves once its row is committed in the store.
    fn writes_through(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use banter_actors::shard::Term;

    use banter_actors::model::UserId;
    use banter_actors::trace::TraceParent;

    use super::*;
    use crate::SqliteStore;
    use crate::fixture::message as msg;

    type Report = (Seq, Seq, bool);

    /// Records the reports it gets.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Report>>);

    impl AppendSink for Recorder {
        fn settled(&self, first: Seq, last: Seq, result: Result<(), JournalError>) {
            self.0
                .lock()
                .expect("recorder")
                .push((first, last, result.is_ok()));
        }
    }

    impl Recorder {
        fn reports(&self) -> Vec<Report> {
            self.0.lock().expect("recorder").clone()
        }
    }

    async fn store_with_rooms(n: usize) -> (Arc<dyn Store>, UserId, Vec<RoomId>) {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open("sqlite::memory:")
                .await
                .expect("in-memory store"),
        );
        let (user, rooms) = crate::fixture::seed(store.as_ref(), n).await;
        (store, user, rooms)
    }

    async fn wait_for(recorder: &Recorder, reports: usize) -> Vec<Report> {
        for _ in 0..500 {
            if recorder.reports().len() >= reports {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        recorder.reports()
    }

    #[tokio::test]
    async fn a_commit_is_reported_once_per_room_run() {
        let (store, user, rooms) = store_with_rooms(2).await;
        let journal = LocalJournal::start(store.clone(), 64, 1024);
        let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let (sink_a, sink_b): (Arc<dyn AppendSink>, Arc<dyn AppendSink>) = (a.clone(), b.clone());
        let trace = TraceParent::new_root();
        // Interleaved, all queued before the writer runs (current-thread runtime): one commit.
        for seq in 1..=3 {
            journal.append(&msg(rooms[0], seq, user), Term::SINGLE, &trace, &sink_a);
            if seq <= 2 {
                journal.append(&msg(rooms[1], seq, user), Term::SINGLE, &trace, &sink_b);
            }
        }
        assert_eq!(wait_for(&a, 1).await, [(1, 3, true)]);
        assert_eq!(wait_for(&b, 1).await, [(1, 2, true)]);
        assert_eq!(store.last_seq(rooms[0]).await.expect("seq"), 3);
        assert_eq!(store.last_seq(rooms[1]).await.expect("seq"), 2);

        // A commit the store refuses (a message id stored under another seq) fails each of its
        // appends, and none is stored.
        let mut clash = msg(rooms[0], 4, user);
        clash.message_id = store.messages_after(rooms[0], 0, 1).await.expect("read")[0].message_id;
        journal.append(&msg(rooms[1], 3, user), Term::SINGLE, &trace, &sink_b);
        journal.append(&clash, Term::SINGLE, &trace, &sink_a);
        assert_eq!(wait_for(&a, 2).await[1], (4, 4, false));
        assert_eq!(wait_for(&b, 2).await[1], (3, 3, false));
        assert_eq!(store.last_seq(rooms[1]).await.expect("seq"), 2);
    }

    #[tokio::test]
    async fn a_row_whose_seq_is_taken_fails_its_append_and_a_replay_succeeds() {
        let (store, user, rooms) = store_with_rooms(1).await;
        let room = rooms[0];
        let journal = LocalJournal::start(store.clone(), 64, 1024);
        let recorder = Arc::new(Recorder::default());
        let sink: Arc<dyn AppendSink> = recorder.clone();
        let trace = TraceParent::new_root();
        // Seq 2 is taken by another message (say, a row a persister wrote for a previous owner).
        let taken = msg(room, 2, user);
        assert_eq!(
            store
                .insert_messages(std::slice::from_ref(&taken))
                .await
                .expect("insert"),
            1
        );
        let first = msg(room, 1, user);
        assert_eq!(
            store
                .insert_messages(std::slice::from_ref(&first))
                .await
                .expect("insert"),
            1
        );
        // Seq 1 again with the same message (a replay), 2 with another message, 3 new: one commit.
        journal.append(&first, Term::SINGLE, &trace, &sink);
        journal.append(&msg(room, 2, user), Term::SINGLE, &trace, &sink);
        journal.append(&msg(room, 3, user), Term::SINGLE, &trace, &sink);
        assert_eq!(
            wait_for(&recorder, 3).await,
            [(1, 1, true), (2, 2, false), (3, 3, true)]
        );
        let rows = store.messages_after(room, 0, 10).await.expect("read");
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1].message_id, taken.message_id,
            "seq 2 keeps its first message"
        );
    }

    #[tokio::test]
    async fn a_full_queue_fails_the_append_at_once() {
        let (store, user, rooms) = store_with_rooms(1).await;
        let journal = LocalJournal::start(store, 64, 2);
        let recorder = Arc::new(Recorder::default());
        let sink: Arc<dyn AppendSink> = recorder.clone();
        let trace = TraceParent::new_root();
        for seq in 1..=3 {
            journal.append(&msg(rooms[0], seq, user), Term::SINGLE, &trace, &sink);
        }
        // The third did not fit in the queue of two: reported before the writer ran.
        assert_eq!(recorder.reports(), [(3, 3, false)]);
        let mut reports = wait_for(&recorder, 2).await;
        reports.sort_unstable();
        assert_eq!(reports, [(1, 2, true), (3, 3, false)]);
    }
}
