//! The in-process journal of the embedded default: a group-commit writer in front of the store.
//!
//! Appends are queued in call order on one writer task, which writes everything queued (up to
//! `max_batch`) in one store transaction and then completes each append: a message is acknowledged
//! only once its row is committed, so it survives `kill -9`. [`Journal::last_seq`] goes through the same
//! queue, behind every append queued before it: a room that restarts after a crash learns its last seq
//! only after the appends its previous activation left in flight are settled, so no seq is reused.
//! Here the journal's records are the store's rows, so [`Journal::read_after`] reads the store.

use std::sync::Arc;

use banter_actors::model::{ChatMessage, RoomId, Seq};
use banter_actors::ports::{Journal, JournalError, Store};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

enum Op {
    Append(ChatMessage, oneshot::Sender<Result<(), JournalError>>),
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
    let mut batch: Vec<ChatMessage> = Vec::with_capacity(max_batch);
    let mut waiters: Vec<oneshot::Sender<Result<(), JournalError>>> = Vec::with_capacity(max_batch);
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
            Op::Append(m, w) => {
                batch.push(m);
                waiters.push(w);
            }
        }
        // Take whatever else is already queued, up to a full batch; stop at a barrier.
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Op::Append(m, w)) => {
                    batch.push(m);
                    waiters.push(w);
                }
                Ok(op @ (Op::LastSeq(..) | Op::ReadAfter(..))) => {
                    carried = Some(op);
                    break;
                }
                Err(_) => break,
            }
        }
        let result = store
            .insert_messages(&batch)
            .await
            .map_err(|e| JournalError::Unavailable(e.to_string()));
        match &result {
            Ok(n) => debug!(batch = batch.len(), inserted = n, "journal batch committed"),
            Err(e) => warn!(batch = batch.len(), error = %e, "journal batch failed"),
        }
        let outcome = result.map(|_| ());
        for w in waiters.drain(..) {
            let _ = w.send(outcome.clone());
        }
        batch.clear();
    }
}

fn closed() -> JournalError {
    JournalError::Unavailable("journal stopped".into())
}

impl LocalJournal {
    /// Queues an operation behind everything queued before it and awaits its answer.
    fn request<T: Send + 'static>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, JournalError>>) -> Op,
    ) -> BoxFuture<'static, Result<T, JournalError>> {
        let (tx, rx) = oneshot::channel();
        // try_send keeps the call order (a room's appends stay in seq order) without awaiting.
        let sent = self.tx.try_send(op(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                JournalError::Unavailable("journal overloaded".into())
            }
            mpsc::error::TrySendError::Closed(_) => closed(),
        });
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or_else(|_| Err(closed()))
        })
    }
}

impl Journal for LocalJournal {
    fn append(
        &self,
        message: ChatMessage,
        _trace: banter_actors::trace::TraceParent,
    ) -> BoxFuture<'static, Result<(), JournalError>> {
        self.request(|tx| Op::Append(message, tx))
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
