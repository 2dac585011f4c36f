//! What a session counts: it is open ([`crate::metrics::SESSIONS_OPEN`]), the frames and bytes it
//! reads and writes, how many outbound items it found waiting at each wake-up, the SENDs it refused and the
//! typing and read frames it coalesced, the age of the oldest chat message in each write (from its
//! room accepting it: [`crate::metrics::SEND_DELIVER`]), and for each SEND with a `receipt` header the time from
//! reading the frame to writing its RECEIPT ([`crate::metrics::SEND_RECEIPT`]): when the SEND's
//! trace is exported, also a `stomp.receipt` span of that wait under its `stomp.send` span.
//!
//! Updates happen per socket read, per write and per message, never per delivered frame; an idle
//! session holds no more than an empty map.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use banter_actors::trace::TraceParent;
use banter_telemetry::otel;
use tokio::time::Instant;

use super::trace::SendTrace;
use crate::metrics;
use crate::ws::frames::Fatal;

/// SENDs waiting for their RECEIPT that a session times at most; past it, later ones go untimed
/// (each is bounded anyway by the user's send budget).
const MAX_TIMED: usize = 1024;

/// A session's metrics; dropping it counts the session closed.
pub(super) struct Meter {
    /// When each SEND still waiting for its RECEIPT was read, and its trace, by a hash of its
    /// receipt id.
    waiting: HashMap<u64, (Instant, SendTrace)>,
    hasher: RandomState,
    /// When the room accepted the oldest chat message of the frames not written yet (ms since
    /// the Unix epoch), if any.
    oldest_ms: Option<i64>,
}

impl Meter {
    /// Counts a session open.
    pub(super) fn open() -> Meter {
        ::metrics::gauge!(metrics::SESSIONS_OPEN).increment(1.0);
        Meter {
            waiting: HashMap::new(),
            hasher: RandomState::new(),
            oldest_ms: None,
        }
    }

    /// A SEND with receipt id `receipt` was read now, under `trace`.
    pub(super) fn sent(&mut self, receipt: &str, trace: SendTrace) {
        if self.waiting.len() < MAX_TIMED {
            self.waiting
                .insert(self.hasher.hash_one(receipt), (Instant::now(), trace));
        }
    }

    /// The RECEIPT of `receipt` is written: its time since the SEND is recorded, and the span of
    /// a slow SEND kept ([`otel::is_slow_send`]) when its trace was not sampled.
    pub(super) fn receipted(&mut self, receipt: &str) {
        if let Some((read, trace)) = self.waiting.remove(&self.hasher.hash_one(receipt)) {
            let waited = read.elapsed();
            ::metrics::histogram!(metrics::SEND_RECEIPT).record(waited.as_secs_f64());
            let read_at = std::time::SystemTime::now() - waited;
            match &trace {
                SendTrace::Sampled(trace) => otel::record(
                    "stomp.receipt",
                    otel::Kind::Internal,
                    trace.as_str(),
                    read_at,
                    Vec::new(),
                ),
                _ if otel::is_slow_send(waited) => trace.keep(read_at, None),
                _ => {}
            }
        }
        if self.waiting.is_empty() && self.waiting.capacity() > 64 {
            // A burst's table is let go once it is answered.
            self.waiting = HashMap::new();
        }
    }

    /// A SEND (with receipt id `receipt`, if it asked for one) failed with `error`; `client` is
    /// its `traceparent`, if valid. When its trace was not sampled, its span is kept anyway.
    pub(super) fn send_failed(
        &mut self,
        receipt: Option<&str>,
        client: Option<TraceParent>,
        error: &str,
    ) {
        if !otel::exporting() {
            return;
        }
        let waiting = receipt.and_then(|r| self.waiting.remove(&self.hasher.hash_one(r)));
        let (read_at, trace) = match waiting {
            Some((read, trace)) => (std::time::SystemTime::now() - read.elapsed(), trace),
            // Refused before it was timed: read just now, and sampled or not by its client alone.
            None => {
                let trace = match client {
                    Some(c) if c.is_sampled() => return,
                    Some(c) => SendTrace::Client(c),
                    None => SendTrace::Unsampled,
                };
                (std::time::SystemTime::now(), trace)
            }
        };
        trace.keep(read_at, Some(error));
    }

    /// A typing or read frame was absorbed into one already passed on.
    pub(super) fn coalesced(kind: &'static str) {
        ::metrics::counter!(metrics::EVENTS_COALESCED, "kind" => kind).increment(1);
    }

    /// `n` bytes were read from the client.
    pub(super) fn read(n: usize) {
        ::metrics::counter!(metrics::WS_BYTES_IN).increment(n as u64);
    }

    /// A chat message its room accepted at `accepted_at_ms` (0: not a chat message) is to be
    /// written.
    pub(super) fn delivering(&mut self, accepted_at_ms: i64) {
        if accepted_at_ms > 0 {
            self.oldest_ms = Some(
                self.oldest_ms
                    .map_or(accepted_at_ms, |o| o.min(accepted_at_ms)),
            );
        }
    }

    /// A frame of `command` was read from the client.
    pub(super) fn frame_in(command: banter_proto::stomp::Command) {
        ::metrics::counter!(metrics::FRAMES_IN, "command" => command.as_str()).increment(1);
    }

    /// `frames` frames of `n` bytes in all were written to the client: the oldest chat message
    /// among them was delivered now. One update per write, not per frame, so a burst costs what
    /// one message does.
    pub(super) fn wrote(&mut self, n: usize, frames: usize) {
        ::metrics::counter!(metrics::WS_BYTES_OUT).increment(n as u64);
        ::metrics::counter!(metrics::FRAMES_OUT).increment(frames as u64);
        if let Some(oldest) = self.oldest_ms.take() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            // Two nodes' clocks: a skew below zero counts as zero.
            let age_ms = now.saturating_sub(oldest).max(0);
            ::metrics::histogram!(metrics::SEND_DELIVER).record(age_ms as f64 / 1000.0);
        }
    }

    /// The session woke up to `n` outbound items waiting.
    pub(super) fn drained(n: usize) {
        ::metrics::histogram!(metrics::SESSION_OUTBOX).record(n as f64);
    }
}

/// Counts a SEND refused before any room saw it, for `reason` (see
/// [`banter_actors::metrics::MESSAGES_REFUSED`]), and hands back the error the client gets.
pub(super) fn refuse(reason: &'static str, error: Fatal) -> Fatal {
    banter_actors::metrics::refused(reason);
    error
}

impl Drop for Meter {
    fn drop(&mut self) {
        ::metrics::gauge!(metrics::SESSIONS_OPEN).decrement(1.0);
    }
}
