//! The `[store]` section of the node configuration.

use serde::{Deserialize, Serialize};

/// Store settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `mysql://USER:PASS@HOST:PORT/DB`. Default: empty, meaning
    /// `sqlite://<data_dir>/banter.db`.
    pub url: String,
    /// When an SQLite commit counts as durable, hence when a message is acknowledged on the embedded
    /// node: `full` (default) syncs the write-ahead log to disk at every commit, so a RECEIPT survives
    /// a power cut; `normal` syncs only at checkpoints, so a RECEIPT survives the process being
    /// killed (`kill -9`) but not a power cut or an OS crash, and a commit costs no `fsync` (about ten
    /// times lower send → RECEIPT latency at 1,000 msgs/s here, BENCHMARKS.md). MySQL ignores it.
    pub sqlite_synchronous: SqliteSynchronous,
}

/// See [`StoreConfig::sqlite_synchronous`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Every commit is on disk before it is acknowledged.
    #[default]
    Full,
    /// Commits are in the OS's hands; the log is synced at checkpoints.
    Normal,
}
