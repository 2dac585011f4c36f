//! The ingest sources' raw log on the full stack: each raw frame of a source is a record of its own
//! topic (`journal.kafka.feeds_raw_topic`, one partition, keyed by the source's name), produced and
//! acknowledged by the broker before the source maps the frame into room messages.

use std::time::Duration;

use banter_actors::ports::Source;
use banter_actors::source::RawLog;
use futures::future::BoxFuture;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::config::KafkaConfig;
use crate::journal::admin::client_config;

/// Raw frames into their Kafka topic.
pub struct KafkaRawLog {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl KafkaRawLog {
    /// A producer to the brokers of `kafka` (the topic is created with the journal's).
    pub fn new(kafka: &KafkaConfig) -> anyhow::Result<KafkaRawLog> {
        let producer: FutureProducer = client_config(kafka)
            .set(
                "message.timeout.ms",
                kafka.message_timeout_ms.max(1).to_string(),
            )
            .set("acks", "all")
            .create()?;
        Ok(KafkaRawLog {
            producer,
            topic: kafka.feeds_raw_topic.clone(),
            timeout: Duration::from_millis(kafka.message_timeout_ms.max(1)),
        })
    }
}

impl RawLog for KafkaRawLog {
    fn append<'a>(
        &'a self,
        source: &'a Source,
        frame: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let record = FutureRecord::to(&self.topic)
                .key(source.name.as_bytes())
                .payload(frame.as_bytes());
            self.producer
                .send(record, Timeout::After(self.timeout))
                .await
                .map(|_| ())
                .map_err(|(e, _)| format!("raw frame not produced to {}: {e}", self.topic))
        })
    }
}
