//! History pages: the store's keyset page, completed with the acknowledged messages the store does not
//! hold yet.
//!
//! With a journal that writes through (the in-process one) the store has every acknowledged message,
//! and a page is one store query. With the Kafka journal a persister writes the store later, so while it
//! lags the newest acknowledged messages are only in the journal. A page is then:
//!
//! 1. the store's page (`messages_before`), whose newest seq is `stored_top`;
//! 2. the room's answer (`RoomMessage::GetRecent`, through the routes, wherever the room lives,
//!    activating it when it is not): its acknowledged seq and, from its ring, the acknowledged messages above `stored_top`
//!    and below `before`. When the store is up to date this is one comparison in the room, and the
//!    page is the store's page;
//! 3. only when the ring does not reach back that far (a persister behind by more than the ring), the
//!    journal's [`Journal::read_after`](banter_actors::ports::Journal::read_after), read here, never
//!    in the room's handler;
//! 4. merged newest first. When the journal's part fills the page before reaching `stored_top`, the
//!    page is that part alone and `next_before` points right below it, so keyset paging skips nothing.
//!
//! When the room or the journal cannot answer (a broker outage, a room that cannot start), the
//! answer is [`HistoryError::Unavailable`] (a 503 `history_unavailable` with `Retry-After`), never the
//! store's page alone: that page may lack acknowledged messages the store has not got yet, and a
//! client could not tell it from the whole history.

use std::time::Duration;

use axum::http::StatusCode;
use banter_actors::model::{ChatMessage, MessageKind, RoomId, Seq};
use banter_actors::ports::{Ports, StoreError};
use banter_actors::room::Window;
use banter_actors::route::Routes;
use tracing::{instrument, warn};

use crate::error::ApiError;

/// Why a page of history could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HistoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The room or the journal did not answer: the acknowledged messages the store does not hold
    /// yet cannot be known.
    #[error("the newest messages are unavailable: {0}")]
    Unavailable(String),
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Store(e) => e.into(),
            HistoryError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "history_unavailable",
                "the newest messages of this room cannot be read right now, try again",
            )
            .retry_after(RETRY_AFTER),
        }
    }
}

/// `Retry-After` of a 503 `history_unavailable`.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A page of history.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// Newest first.
    pub(crate) messages: Vec<ChatMessage>,
    /// `before` of the next (older) page; `None` on the last page.
    pub(crate) next_before: Option<Seq>,
}

/// Returns up to `limit` (at least one) acknowledged messages of `room` with a seq below `before` (all
/// when `None`), newest first, whether or not the store has them yet.
#[instrument(skip_all, fields(room_id = %room))]
pub(crate) async fn read_page(
    ports: &Ports,
    routes: &dyn Routes,
    room: RoomId,
    before: Option<Seq>,
    limit: u32,
) -> Result<Page, HistoryError> {
    let limit = limit.max(1);
    let stored = ports.store.messages_before(room, before, limit).await?;
    if ports.journal.writes_through() {
        return Ok(messages_only(store_page(stored, limit)));
    }
    let stored_top = stored.first().map_or(0, |m| m.seq);
    let recent = routes
        .recent(room, stored_top, before, limit)
        .await
        .map_err(|e| unavailable(room)(e.to_string()))?;
    let window = match recent.window {
        Some(window) => window,
        None => journal_window(ports, room, stored_top, before, recent.acked_seq, limit)
            .await
            .map_err(unavailable(room))?,
    };
    Ok(messages_only(merge(stored, stored_top, window, limit)))
}

/// A page as people read it: the messages alone, each as the page's own edits and deletes leave it
/// (the store and the ring applied those they hold already; a journaled tail the store lacks may
/// hold some of its own). Keyset paging is unchanged: `next_before` was set by seq, events
/// included, so a page may show fewer messages than asked for and still have a next one.
fn messages_only(mut page: Page) -> Page {
    let events: Vec<ChatMessage> = page
        .messages
        .iter()
        .filter(|m| m.kind != MessageKind::Post)
        .rev()
        .cloned()
        .collect();
    page.messages.retain(|m| m.kind == MessageKind::Post);
    // Oldest event first, so the latest edit wins.
    for event in &events {
        if let Some(target) = event.kind.target()
            && let Ok(at) = page.messages.binary_search_by(|m| target.cmp(&m.seq))
        {
            page.messages[at].apply(event);
        }
    }
    page
}

/// Returns the mapping of why the journaled tail is out of reach to the error, logged.
fn unavailable(room: RoomId) -> impl FnOnce(String) -> HistoryError {
    move |why| {
        warn!(room_id = %room, %why, "history unavailable: the journaled tail is out of reach");
        HistoryError::Unavailable(why)
    }
}

/// Reads from the journal the newest `limit` acknowledged messages above `after` and below `before`
/// (the room acknowledged up to `acked`), as a [`Window`].
async fn journal_window(
    ports: &Ports,
    room: RoomId,
    after: Seq,
    before: Option<Seq>,
    acked: Seq,
    limit: u32,
) -> Result<Window, String> {
    let upper = before.map_or(acked, |b| b.saturating_sub(1).min(acked));
    if upper <= after {
        return Ok(Window {
            from: after,
            messages: Vec::new(),
        });
    }
    // At most `limit` seqs lie in (from, upper]: the newest page, whether or not it reaches `after`.
    let from = after.max(upper.saturating_sub(Seq::from(limit)));
    let read = ports
        .journal
        .read_after(room, from, limit)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages: Vec<ChatMessage> = read
        .into_iter()
        .filter(|m| m.seq > from && m.seq <= upper)
        .collect();
    messages.sort_by_key(|m| std::cmp::Reverse(m.seq));
    messages.dedup_by_key(|m| m.seq);
    Ok(Window { from, messages })
}

/// Returns the page of the store alone.
fn store_page(messages: Vec<ChatMessage>, limit: u32) -> Page {
    let next_before = next_before(&messages, limit);
    Page {
        messages,
        next_before,
    }
}

/// Returns `before` of the page after a full one ending at a seq above 1.
fn next_before(messages: &[ChatMessage], limit: u32) -> Option<Seq> {
    match messages.last() {
        Some(m) if messages.len() as u64 >= u64::from(limit) && m.seq > 1 => Some(m.seq),
        _ => None,
    }
}

/// Merges the store's page (whose newest seq is `stored_top`) with a window of acknowledged messages
/// above it into one page of at most `limit` messages, newest first, each seq once.
fn merge(stored: Vec<ChatMessage>, stored_top: Seq, window: Window, limit: u32) -> Page {
    if window.from > stored_top {
        // Acknowledged messages lie between the window and the store's page: they come on the next
        // page, which starts right below the window.
        return Page {
            messages: window.messages,
            next_before: Some(window.from + 1),
        };
    }
    let from = window.from;
    let mut messages = window.messages;
    // The window holds every acknowledged message above `from`: the store's copies are not needed.
    messages.extend(stored.into_iter().filter(|m| m.seq <= from));
    messages.truncate(limit as usize);
    store_page(messages, limit)
}

#[cfg(test)]
mod tests;
