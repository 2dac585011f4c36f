//! The actors' spans ([`banter_actors::trace::Spans`]) over OpenTelemetry: a room makes a
//! `room.publish` span of each sampled message it journals, whose context the journal's
//! `kafka.produce` span and the fan-out to other nodes hang under.

use std::sync::Arc;

use banter_actors::trace::{HopSpan, NoSpans, Spans, TraceParent};
use opentelemetry::KeyValue;
use opentelemetry::trace::Span as _;

use crate::otel::{self, Kind};

/// The actors' spans for this process: [`OtelSpans`] while traces are exported, else [`NoSpans`].
pub fn spans() -> Arc<dyn Spans> {
    if otel::exporting() {
        Arc::new(OtelSpans)
    } else {
        Arc::new(NoSpans)
    }
}

/// Makes the actors' spans as OpenTelemetry spans, for sampled traces only.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtelSpans;

impl Spans for OtelSpans {
    fn begin(&self, name: &'static str, parent: &TraceParent) -> Option<Box<dyn HopSpan>> {
        if !parent.is_sampled() {
            return None;
        }
        let (span, traceparent) = otel::begin(name, Kind::Internal, parent.as_str())?;
        let traceparent = TraceParent::parse(&traceparent)?;
        Some(Box::new(Hop { span, traceparent }))
    }
}

/// A span of a hop, open.
struct Hop {
    span: opentelemetry_sdk::trace::Span,
    traceparent: TraceParent,
}

impl HopSpan for Hop {
    fn traceparent(&self) -> TraceParent {
        self.traceparent.clone()
    }

    fn set(&mut self, key: &'static str, value: i64) {
        self.span.set_attribute(KeyValue::new(key, value));
    }

    fn end(mut self: Box<Self>, error: Option<&str>) {
        if let Some(error) = error {
            self.span
                .set_status(opentelemetry::trace::Status::error(error.to_owned()));
        }
        self.span.end();
    }
}
