//! Metric names this crate updates, with their help texts ([`describe_metrics`]).

/// Consumer lag of the persister group per partition: high watermark minus committed offset (gauge,
/// labels `topic` and `partition`).
pub const PERSISTER_LAG: &str = "banter_persister_lag";
/// Rows the persister inserted into the store (counter).
pub const PERSISTER_ROWS: &str = "banter_persister_rows_total";
/// Batches the persister wrote: rows stored, dead letters sent (counter).
pub const PERSISTER_BATCHES: &str = "banter_persister_batches_total";
/// Records the persister sent to the dead-letter topic (counter, label `reason`).
pub const PERSISTER_DEAD_LETTERS: &str = "banter_persister_dead_letters_total";
/// Records the persister skipped because a fence shuts them out: a former owner's late writes
/// (counter).
pub const PERSISTER_FENCED: &str = "banter_persister_fenced_total";
/// Journal fences written by this node for the shards it took (counter).
pub const JOURNAL_FENCES: &str = "banter_journal_fences_total";
/// Restarts of the persister's consumer loop after a panic (counter).
pub const PERSISTER_RESTARTS: &str = "banter_persister_restarts_total";
/// Appends the Kafka journal had acknowledged by the broker (counter).
pub const JOURNAL_APPENDS: &str = "banter_journal_appends_total";
/// Appends the Kafka journal could not make durable (counter).
pub const JOURNAL_APPEND_ERRORS: &str = "banter_journal_append_errors_total";
/// Time from enqueueing an append to its delivery report from the broker, acknowledged or not
/// (histogram, seconds).
pub const JOURNAL_PRODUCE_SECONDS: &str = "banter_journal_produce_seconds";
/// Records in one batch the persister wrote, rows and dead letters (histogram).
pub const PERSISTER_BATCH_RECORDS: &str = "banter_persister_batch_records";
/// Time the persister took to write one batch: rows, fences, dead letters, retries included
/// (histogram, seconds).
pub const PERSISTER_FLUSH_SECONDS: &str = "banter_persister_flush_seconds";

/// Describes this crate's metrics to the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        PERSISTER_LAG,
        Unit::Count,
        "records of the partition not yet committed by the persister group"
    );
    describe_counter!(PERSISTER_ROWS, Unit::Count, "rows the persister inserted");
    describe_counter!(
        PERSISTER_BATCHES,
        Unit::Count,
        "batches the persister wrote (rows stored, dead letters sent)"
    );
    describe_counter!(
        PERSISTER_DEAD_LETTERS,
        Unit::Count,
        "records sent to the dead-letter topic, by reason"
    );
    describe_counter!(
        PERSISTER_FENCED,
        Unit::Count,
        "records skipped as a former shard owner's late writes (behind a fence)"
    );
    describe_counter!(
        JOURNAL_FENCES,
        Unit::Count,
        "fences written to every journal partition for shards this node took"
    );
    describe_counter!(
        PERSISTER_RESTARTS,
        Unit::Count,
        "restarts of the persister's consumer loop after a panic"
    );
    describe_counter!(
        JOURNAL_APPENDS,
        Unit::Count,
        "appends acknowledged by the Kafka broker"
    );
    describe_counter!(
        JOURNAL_APPEND_ERRORS,
        Unit::Count,
        "appends the Kafka journal could not make durable"
    );
    describe_histogram!(
        JOURNAL_PRODUCE_SECONDS,
        Unit::Seconds,
        "time from enqueueing an append to the broker's answer"
    );
    describe_histogram!(
        PERSISTER_BATCH_RECORDS,
        Unit::Count,
        "records in one batch the persister wrote"
    );
    describe_histogram!(
        PERSISTER_FLUSH_SECONDS,
        Unit::Seconds,
        "time the persister took to write one batch"
    );
}

/// Exports every counter at zero, so that a rate or an alert over it has a series before the first
/// event (called by a node that runs the Kafka journal or the persister).
pub fn export_at_zero() {
    for name in [
        PERSISTER_ROWS,
        PERSISTER_BATCHES,
        PERSISTER_FENCED,
        JOURNAL_FENCES,
        PERSISTER_RESTARTS,
        JOURNAL_APPENDS,
        JOURNAL_APPEND_ERRORS,
    ] {
        metrics::counter!(name).increment(0);
    }
    for reason in crate::journal::record::RecordError::REASONS {
        metrics::counter!(PERSISTER_DEAD_LETTERS, "reason" => reason).increment(0);
    }
}
