//! The tail of sampling: spans kept after the fact for messages whose trace was not sampled
//! but that turned out to matter (they failed, or were slow).

use std::sync::atomic::Ordering;
use std::time::Duration;

use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags};
use opentelemetry::{Context, KeyValue};

use super::{Kind, PRE_SAMPLED_ROOTS, SLOW_SEND_MS, TRACER, exporting, message_context};

/// Whether a SEND that waited `waited` for its RECEIPT is slow (`telemetry.slow_send_ms`), so
/// that its span is kept ([`record_kept`]) although its trace was not sampled. Never while
/// export is off.
pub fn is_slow_send(waited: Duration) -> bool {
    exporting() && waited.as_millis() >= u128::from(SLOW_SEND_MS.load(Ordering::Relaxed))
}

/// Records a span `name` that ran from `started` to now, kept whatever the ratio: a child of
/// `parent` (the client's span, a `traceparent`) when valid, else the root of a new trace. The
/// tail of sampling, for a message whose trace was not sampled but that turned out
/// to matter — it failed (`error`, the span's status) or was slow. Its attribute `banter.kept`
/// says which (`error`, `slow`). The hops after the one recording it made no spans (their
/// decision was taken at the root), so such a trace has this one span.
pub fn record_kept(
    name: &'static str,
    kind: Kind,
    parent: Option<&str>,
    started: std::time::SystemTime,
    mut attributes: Vec<KeyValue>,
    error: Option<&str>,
) {
    use opentelemetry::trace::{Span as _, Status, Tracer as _};
    if !exporting() {
        return;
    }
    let Some(tracer) = TRACER.get() else {
        return;
    };
    // Under the client's span, marked sampled so that the parent-based sampler keeps it.
    let context = parent
        .and_then(message_context)
        .map(|cx| {
            let sc = cx.span().span_context().clone();
            Context::new().with_remote_span_context(SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                TraceFlags::SAMPLED,
                true,
                sc.trace_state().clone(),
            ))
        })
        .unwrap_or_default();
    attributes.push(KeyValue::new(
        "banter.kept",
        if error.is_some() { "error" } else { "slow" },
    ));
    // Kept by the root sampler only under a pre-sampled name.
    debug_assert!(
        PRE_SAMPLED_ROOTS.contains(&name),
        "{name} would go by the ratio"
    );
    let mut span = tracer
        .span_builder(name)
        .with_kind(kind.into())
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(tracer, &context);
    if let Some(error) = error {
        span.set_status(Status::error(error.to_owned()));
    }
    span.end();
}
