//! The trace a SEND starts on this node.

use banter_actors::model::RoomId;
use banter_actors::trace::TraceParent;
use banter_telemetry::otel;

/// The trace context a SEND's message carries: the client's own `traceparent` when it sent a valid
/// one, else a new trace. While spans are exported and the trace is kept (the client's sampled
/// flag, or the sampling ratio for a new one), a `stomp.send` span of this node joins it, is kept in
/// `span`, and the message carries the span's context instead, so what the message causes
/// elsewhere hangs under it.
///
/// Also returns what a span kept after the fact (a failed or slow SEND, [`SendTrace::keep`])
/// needs to know of it.
pub(super) fn send_trace(
    header: Option<&str>,
    room: RoomId,
    span: &mut Option<tracing::Span>,
) -> (TraceParent, SendTrace) {
    let client = header.and_then(TraceParent::parse);
    // Decided before any span is made: a message whose trace is not kept costs none.
    if !otel::keep_trace(client.as_ref().map(TraceParent::as_str)) {
        return match client {
            Some(client) => (client.clone(), SendTrace::Client(client)),
            None => (TraceParent::new_root(), SendTrace::Unsampled),
        };
    }
    // A trace per message: not a child of the session's span.
    let send =
        tracing::info_span!(parent: None, "stomp.send", otel.kind = "server", room_id = room.0);
    if let Some(client) = &client {
        otel::follow(&send, client.as_str());
    }
    let ours = otel::traceparent_of(&send)
        .and_then(|t| TraceParent::parse(&t))
        .or(client)
        .unwrap_or_else(TraceParent::new_root);
    *span = Some(send);
    (ours.clone(), SendTrace::Sampled(ours))
}

/// The trace of a SEND, as far as its spans are concerned.
#[derive(Clone, Debug)]
pub(super) enum SendTrace {
    /// Sampled: its hops make spans.
    Sampled(TraceParent),
    /// Not sampled, in the client's trace (its `traceparent`): a span kept after the fact joins it.
    Client(TraceParent),
    /// Not sampled, in no trace of the client's.
    Unsampled,
}

impl SendTrace {
    /// Keeps the `stomp.send` span of a SEND read at `read` that was not sampled but failed
    /// (`error`) or was slow: a root, or a child of the client's span.
    pub(super) fn keep(&self, read: std::time::SystemTime, error: Option<&str>) {
        let parent = match self {
            SendTrace::Sampled(_) => return,
            SendTrace::Client(client) => Some(client.as_str()),
            SendTrace::Unsampled => None,
        };
        otel::record_kept(
            "stomp.send",
            otel::Kind::Server,
            parent,
            read,
            Vec::new(),
            error,
        );
    }
}
