//! Start-up checks of the Kafka journal: the client settings every Kafka client of the node shares,
//! creating the topics when missing, and learning the partition count of the journal topic.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use tracing::{debug, info, warn};

use crate::config::KafkaConfig;

/// Returns the settings every Kafka client of the node starts from.
pub(crate) fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &kafka.brokers)
        .set("client.id", "banter")
        // Come back quickly after a broker restart: the default backs off up to 10 s.
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "1000");
    c
}

/// Creates the journal topic, the dead-letter topic and the feeds' raw topic when missing (`create_topics`), then returns
/// the journal topic's partition count. Fails within about `startup_timeout_ms`, naming the brokers,
/// when they cannot be reached, refuse to create a topic, or the topic does not exist.
pub async fn prepare_topics(kafka: &KafkaConfig) -> anyhow::Result<i32> {
    let timeout = Duration::from_millis(kafka.startup_timeout_ms.max(1));
    if kafka.create_topics {
        create_topics(kafka, timeout).await?;
    }
    let consumer: BaseConsumer = client_config(kafka)
        .create()
        .context("failed to create a Kafka client")?;
    let topic = kafka.topic.clone();
    let metadata =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&topic), timeout))
            .await
            .context("metadata task failed")?
            .with_context(|| format!("failed to reach the Kafka broker at {}", kafka.brokers))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == kafka.topic) else {
        bail!(
            "the Kafka broker at {} did not describe topic {}",
            kafka.brokers,
            kafka.topic
        );
    };
    if let Some(err) = t.error() {
        bail!(
            "topic {} is not usable on the Kafka broker at {}: {:?} (create it, or set journal.kafka.create_topics = true)",
            kafka.topic,
            kafka.brokers,
            RDKafkaErrorCode::from(err)
        );
    }
    let partitions = i32::try_from(t.partitions().len()).unwrap_or(i32::MAX);
    if partitions == 0 {
        bail!(
            "topic {} has no partitions on the Kafka broker at {}",
            kafka.topic,
            kafka.brokers
        );
    }
    if partitions != kafka.partitions {
        warn!(
            topic = %kafka.topic,
            partitions,
            configured = kafka.partitions,
            "topic exists with another partition count; using the topic's"
        );
    }
    Ok(partitions)
}

async fn create_topics(kafka: &KafkaConfig, timeout: Duration) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka)
        .create()
        .context("failed to create a Kafka admin client")?;
    let replication = || TopicReplication::Fixed(kafka.replication_factor);
    let topics = [
        NewTopic::new(&kafka.topic, kafka.partitions, replication()),
        NewTopic::new(&kafka.dead_letter_topic, kafka.partitions, replication()),
        NewTopic::new(&kafka.feeds_raw_topic, 1, replication()),
    ];
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    // The admin client gives up at the request timeout; the outer bound is for a stuck connection.
    let results = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        admin.create_topics(&topics, &options),
    )
    .await
    .map_err(|_| {
        anyhow!(
            "the Kafka broker at {} did not answer within {timeout:?}",
            kafka.brokers
        )
    })?
    .with_context(|| {
        format!(
            "failed to create topics on the Kafka broker at {}",
            kafka.brokers
        )
    })?;
    for result in results {
        match result {
            Ok(topic) => info!(%topic, partitions = kafka.partitions, "kafka topic created"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(%topic, "kafka topic exists");
            }
            Err((
                topic,
                code @ (RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown),
            )) => bail!(
                "failed to reach the Kafka broker at {} to create topic {topic}: {code}",
                kafka.brokers
            ),
            Err((topic, code)) => bail!(
                "the Kafka broker at {} refused to create topic {topic}: {code}",
                kafka.brokers
            ),
        }
    }
    Ok(())
}
