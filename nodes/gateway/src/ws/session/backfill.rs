//! A resume's backfill: the acknowledged messages a subscriber missed below the room's ring, from the
//! store and, where the store lags a journal that does not write through (Kafka), from the journal.
//!
//! It streams: a page is read, written out (under the session's write deadline), then the next one,
//! so a resume of a long history holds one page at a time. Backfills running at once on the node are
//! capped (`ws.max_concurrent_backfills`); a resume that cannot start one in time is refused with an
//! ERROR (the client resumes again later from the same seq).

use std::collections::HashMap;

use banter_actors::encode::RoomFrames;
use banter_actors::model::{ChatMessage, RoomId, Seq, UserId};
use banter_actors::ports::Ports;
use tokio::time::timeout;
use tracing::warn;

use super::{CALL_TIMEOUT, Session};
use crate::ws::frames::{Fatal, fatal};

/// Messages read (from the store or the journal) per page of a backfill.
const BACKFILL_PAGE: u32 = 200;

impl Session {
    /// Writes the acknowledged messages with seq in `(after, to]`, oldest first; returns the last seq
    /// written.
    ///
    /// The store's pages come first. With a journal that does not write through (Kafka), the store
    /// lags while the persister is behind: the part of the range above the store's newest message is
    /// read from the journal, here in the session task, as REST history does (`http::history`). When
    /// that read fails the subscription fails too, rather than resume with a gap.
    pub(super) async fn backfill(
        &mut self,
        room: RoomId,
        sub_id: &str,
        mut after: Seq,
        to: Seq,
    ) -> Result<Seq, Fatal> {
        let permits = self.state.backfills.clone();
        let _permit = match timeout(CALL_TIMEOUT, permits.acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                crate::metrics::refused("backfill_busy");
                return Err(fatal(
                    "server busy: too many resumes in progress; subscribe again with the same 'since'",
                ));
            }
        };
        let ports = self.state.ports.clone();
        let names: HashMap<UserId, String> = ports
            .store
            .members(room)
            .await
            .map_err(|e| fatal(format!("cannot read history: {e}")))?
            .into_iter()
            .map(|m| (m.user_id, m.username))
            .collect();
        let frames = RoomFrames::new(room);
        while after < to {
            let page = ports
                .store
                .messages_after(room, after, BACKFILL_PAGE)
                .await
                .map_err(|e| fatal(format!("cannot read history: {e}")))?;
            let full = page.len() >= BACKFILL_PAGE as usize;
            for m in page.iter().filter(|m| m.seq <= to) {
                let name = names.get(&m.sender_id).map_or("", String::as_str);
                self.write_tail(sub_id, &frames.message_tail(m, name));
                after = m.seq;
                self.flush_if_large().await?;
            }
            self.flush().await?;
            if !full || page.last().is_some_and(|m| m.seq >= to) {
                break;
            }
        }
        if after < to && !ports.journal.writes_through() {
            loop {
                let page = journal_page(&ports, room, after, to).await?;
                let Some(last) = page.last().map(|m| m.seq) else {
                    break;
                };
                for m in &page {
                    let name = names.get(&m.sender_id).map_or("", String::as_str);
                    self.write_tail(sub_id, &frames.message_tail(m, name));
                    self.flush_if_large().await?;
                }
                after = last;
                self.flush().await?;
                if after >= to {
                    break;
                }
            }
            if after < to {
                warn!(
                    room_id = %room, after, to,
                    "backfill: acknowledged messages are missing from the journal"
                );
            }
        }
        Ok(after.max(to))
    }
}

/// Reads from the journal up to a page of the acknowledged messages with seq in `(after, to]`, oldest
/// first, each seq once.
async fn journal_page(
    ports: &Ports,
    room: RoomId,
    after: Seq,
    to: Seq,
) -> Result<Vec<ChatMessage>, Fatal> {
    let limit = u32::try_from(to - after)
        .unwrap_or(u32::MAX)
        .min(BACKFILL_PAGE);
    let mut read = ports
        .journal
        .read_after(room, after, limit)
        .await
        .map_err(|e| fatal(format!("cannot read history, try again: {e}")))?;
    read.retain(|m| m.seq > after && m.seq <= to);
    read.sort_by_key(|m| m.seq);
    read.dedup_by_key(|m| m.seq);
    Ok(read)
}
