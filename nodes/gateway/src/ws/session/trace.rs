//! The trace a SEND starts on this node.

use banter_actors::model::RoomId;
use banter_actors::trace::TraceParent;
use banter_telemetry::otel;

/// The trace context a SEND's message carries: the client's own `traceparent` when it sent a valid
/// one, else a new trace. While spans are exported, a `stomp.send` span of this node joins the
/// client's trace (or starts one, kept with the sampling ratio), is kept in `span`, and the message
/// carries the span's context instead, so what the message causes elsewhere hangs under it.
pub(super) fn send_trace(
    header: Option<&str>,
    room: RoomId,
    span: &mut Option<tracing::Span>,
) -> TraceParent {
    let client = header.and_then(TraceParent::parse);
    if !otel::exporting() {
        return client.unwrap_or_else(TraceParent::new_root);
    }
    let send = tracing::info_span!("stomp.send", otel.kind = "server", room_id = room.0);
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
