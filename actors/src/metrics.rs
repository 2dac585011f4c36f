//! The actors' metrics: what happened to the chat messages rooms were given. The names are
//! described to the recorder by [`describe_metrics`]; sessions count the SENDs they refuse before
//! any room sees them under the same name.

/// Chat messages made durable and acknowledged (counter).
pub const MESSAGES_ACCEPTED: &str = "banter_messages_accepted_total";
/// Chat messages refused (counter, label `reason`): by a session, `rate_limit` (the user's send
/// budget), `invalid` (body, header, destination or attachments), `not_member`, `unavailable` (the
/// sender's actor could not check its attachments); by the room, `not_stored` (the journal refused
/// the append) and `unknown_outcome` (the journal could not tell).
pub const MESSAGES_REFUSED: &str = "banter_messages_refused_total";

/// The reasons of [`MESSAGES_REFUSED`], each exported from the start at zero.
pub const REFUSED_REASONS: [&str; 6] = [
    "rate_limit",
    "invalid",
    "not_member",
    "unavailable",
    "not_stored",
    "unknown_outcome",
];

/// Describes these metrics to the installed recorder and exports each series at zero, so that a
/// rate or an alert over them has a series before the first event.
pub fn describe_metrics() {
    use ::metrics::{Unit, describe_counter};
    describe_counter!(
        MESSAGES_ACCEPTED,
        Unit::Count,
        "chat messages made durable and acknowledged"
    );
    describe_counter!(
        MESSAGES_REFUSED,
        Unit::Count,
        "chat messages refused, by reason"
    );
    describe_counter!(
        crate::source::EVENTS_SKIPPED,
        Unit::Count,
        "frames of an ingest source skipped, by feed and reason (malformed, oversized, unknown_action, invalid, not_journaled, not_applied)"
    );
    describe_counter!(
        crate::source::EVENTS_HANDLED,
        Unit::Count,
        "events of an ingest source handled, by feed and outcome (posted, edited, deleted, unchanged, filtered)"
    );
    ::metrics::counter!(MESSAGES_ACCEPTED).increment(0);
    for reason in REFUSED_REASONS {
        ::metrics::counter!(MESSAGES_REFUSED, "reason" => reason).increment(0);
    }
}

/// Counts a message refused by a room or a session (see [`MESSAGES_REFUSED`]).
pub fn refused(reason: &'static str) {
    ::metrics::counter!(MESSAGES_REFUSED, "reason" => reason).increment(1);
}
