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

/// Describes this crate's metrics to the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge};
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
}
