//! The trace a SEND starts on this node.

use banter_actors::model::RoomId;
use banter_actors::trace::TraceParent;
use banter_telemetry::otel;

/// The trace context a SEND's message carries: the client's own `traceparent` when it sent a valid
/// one, else a new trace. While spans are exported and the trace is kept (the client's sampled
/// flag, or the sampling ratio for a new one), a `stomp.send` span of this node joins it, is kept in
/// `span`, and the message carries the span's context instead, so what the message causes
/// elsewhere hangs under it.
pub(super) fn send_trace(
    header: Option<&str>,
    room: RoomId,
    span: &mut Option<tracing::Span>,
) -> TraceParent {
    let client = header.and_then(TraceParent::parse);
    // Decided before any span is made: a message whose trace is not kept costs none.
    if !otel::keep_trace(client.as_ref().map(TraceParent::as_str)) {
        return client.unwrap_or_else(TraceParent::new_root);
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
    ours
}
