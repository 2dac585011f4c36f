//! Metric names this crate updates, with their help texts ([`describe_metrics`]).

/// Seconds one commit of the in-process journal took, `fsync` included (histogram).
pub const JOURNAL_COMMIT_SECONDS: &str = "banter_journal_commit_seconds";
/// Messages in one commit of the in-process journal (histogram).
pub const JOURNAL_COMMIT_MESSAGES: &str = "banter_journal_commit_messages";

/// Describes this crate's metrics to the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_histogram};
    describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "time one commit of the in-process journal took (its messages wait for it)"
    );
    describe_histogram!(
        JOURNAL_COMMIT_MESSAGES,
        Unit::Count,
        "messages in one commit of the in-process journal"
    );
}
