//! W3C trace context (`traceparent`) that travels with a message from the client's SEND frame through
//! the journal (as a Kafka header) to the persister, so one trace can show one message end to end.

use std::fmt::Write as _;

/// A validated W3C `traceparent` value: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent(String);

impl TraceParent {
    /// Parses a `traceparent` header; returns `None` unless it is a valid version-00 value with
    /// non-zero ids (the W3C rules), so a client cannot inject arbitrary text into headers.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let b = value.as_bytes();
        if b.len() != 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' || &b[..2] != b"00" {
            return None;
        }
        let hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        let (trace, parent, flags) = (&b[3..35], &b[36..52], &b[53..55]);
        let zero = |s: &[u8]| s.iter().all(|c| *c == b'0');
        (hex(trace) && hex(parent) && hex(flags) && !zero(trace) && !zero(parent))
            .then(|| TraceParent(value.to_owned()))
    }

    /// Starts a new trace with random ids (for a SEND that carried none), not sampled: whether a
    /// trace is kept is decided where its spans are made (the OTLP exporter's ratio), never by a
    /// root the node made up.
    pub fn new_root() -> TraceParent {
        let trace: u128 = rand::random::<u128>().max(1);
        let parent: u64 = rand::random::<u64>().max(1);
        let mut s = String::with_capacity(55);
        let _ = write!(s, "00-{trace:032x}-{parent:016x}-00");
        TraceParent(s)
    }

    /// Returns the header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the 32-hex-digit trace id.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    /// Tells whether the trace is sampled (its flags have the `sampled` bit): only then does a hop
    /// make a span of it.
    pub fn is_sampled(&self) -> bool {
        u8::from_str_radix(&self.0[53..55], 16).is_ok_and(|flags| flags & 1 == 1)
    }
}

/// Spans of a message's hops through the actors (its room, its fan-out), made only while its trace
/// is sampled and exported: a port, which `banter-telemetry` implements over OpenTelemetry;
/// [`NoSpans`] makes none.
pub trait Spans: Send + Sync + 'static {
    /// Begins span `name` under `parent`; `None` when no span is made (the trace is not sampled, or
    /// nothing is exported), which costs the caller nothing more.
    fn begin(&self, name: &'static str, parent: &TraceParent) -> Option<Box<dyn HopSpan>>;
}

/// A span begun by [`Spans::begin`]; dropped without [`HopSpan::end`], it ends then.
pub trait HopSpan: Send + Sync {
    /// The `traceparent` that names this span as the parent of what the hop causes.
    fn traceparent(&self) -> TraceParent;
    /// Sets an integer attribute.
    fn set(&mut self, key: &'static str, value: i64);
    /// Ends the span now, failed with `error` when there is one.
    fn end(self: Box<Self>, error: Option<&str>);
}

/// Makes no span: a node that exports no trace, and the actors' unit tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSpans;

impl Spans for NoSpans {
    fn begin(&self, _: &'static str, _: &TraceParent) -> Option<Box<dyn HopSpan>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    #[test]
    fn parses_the_w3c_example_and_refuses_the_rest() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceParent::parse(ok)
                .map(|t| t.trace_id().to_owned())
                .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nx:y",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_sampled_flag_is_read_from_the_flags() {
        let t = |flags: &str| {
            TraceParent::parse(&format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"
            ))
            .expect("valid")
        };
        assert!(t("01").is_sampled());
        assert!(t("03").is_sampled());
        assert!(!t("00").is_sampled());
        assert!(!t("02").is_sampled());
        assert!(!TraceParent::new_root().is_sampled());
    }

    #[test]
    fn new_roots_are_valid_and_distinct() {
        let (a, b) = (TraceParent::new_root(), TraceParent::new_root());
        assert!(TraceParent::parse(a.as_str()).is_some());
        assert_ne!(a, b);
    }
}
