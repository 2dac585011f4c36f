//! The `[journal.kafka]` and `[persister]` sections of the node configuration.

use serde::{Deserialize, Serialize};

/// Kafka journal settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma-separated `host:port`. Default: `127.0.0.1:19092`.
    pub brokers: String,
    /// Topic of chat messages, keyed by room id. Default: `chat.messages`.
    pub topic: String,
    /// Topic that receives the records the persister can never store. Default: `chat.messages.dlq`.
    pub dead_letter_topic: String,
    /// Topic of the ingest sources' raw frames, keyed by source (journaled before they are mapped;
    /// one partition keeps a source's order). Default: `feeds.raw`.
    pub feeds_raw_topic: String,
    /// Partitions of both topics when the node creates them. Default: 6.
    pub partitions: i32,
    /// Replication factor of both topics when the node creates them. Default: 1.
    pub replication_factor: i32,
    /// Creates the topics at start-up when they are missing. Default: true.
    pub create_topics: bool,
    /// Milliseconds the producer waits to fill a batch (`linger.ms`). Default: 5.
    pub linger_ms: u64,
    /// Milliseconds an append may take, retries included, before it fails (`message.timeout.ms`): the
    /// sender gets an ERROR rather than waiting while the broker stays down. In a cluster it is also
    /// how long an expired shard lease waits before another node takes it. Default: 5000.
    pub message_timeout_ms: u64,
    /// Most appends queued in the producer; beyond it appends fail at once ("journal overloaded").
    /// Default: 100000.
    pub max_queued_messages: u32,
    /// Milliseconds start-up waits for the broker (reaching it, creating topics) before it fails.
    /// Default: 10000.
    pub startup_timeout_ms: u64,
    /// Milliseconds a room activation may spend reading the journal's tail (`last_seq`, `read_after`)
    /// before it fails. Default: 15000.
    pub read_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:19092".into(),
            topic: "chat.messages".into(),
            dead_letter_topic: "chat.messages.dlq".into(),
            feeds_raw_topic: "feeds.raw".into(),
            partitions: 6,
            replication_factor: 1,
            create_topics: true,
            linger_ms: 5,
            message_timeout_ms: 5_000,
            max_queued_messages: 100_000,
            startup_timeout_ms: 10_000,
            read_timeout_ms: 15_000,
        }
    }
}

/// Persister settings: the consumer-group member that writes the Kafka journal into the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersisterConfig {
    /// Consumer group of the persisters; every node in it shares the partitions. Room activations read
    /// its committed offsets to find the tail not yet stored. Default: `banter-persister`.
    pub group_id: String,
    /// Rows that make a batch ready to write. Default: 500.
    pub batch_rows: usize,
    /// Milliseconds after its first record that a batch is written however small. Default: 100.
    pub batch_ms: u64,
    /// Longest pause between two attempts to write a batch while the store is unavailable, in ms.
    /// Default: 5000.
    pub max_backoff_ms: u64,
    /// Milliseconds between two refreshes of the consumer lag metric. Default: 1000.
    pub lag_interval_ms: u64,
}

impl Default for PersisterConfig {
    fn default() -> Self {
        PersisterConfig {
            group_id: "banter-persister".into(),
            batch_rows: 500,
            batch_ms: 100,
            max_backoff_ms: 5_000,
            lag_interval_ms: 1_000,
        }
    }
}
