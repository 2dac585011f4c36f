//! The consumer lag gauges: for every partition of the topic, the high watermark minus the
//! persister group's committed offset, refreshed on a timer from a client of its own that never
//! joins the group (on a member's connection, the calls would queue behind its fetches). Every
//! node on the Kafka journal runs one ([`LagMonitor`]), persister or not: the lag of a group whose
//! members are all down is what an operator most needs to see, and only a node outside it can
//! report it.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use tokio::sync::watch;
use tracing::debug;

use crate::metrics as m;

/// The running lag gauges of a node (see the module doc).
pub struct LagMonitor {
    task: tokio::task::JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl LagMonitor {
    /// Starts refreshing the persister group's lag on `kafka`'s journal topic every
    /// `persister.lag_interval_ms`.
    pub fn start(
        kafka: &crate::config::KafkaConfig,
        persister: &crate::config::PersisterConfig,
    ) -> anyhow::Result<LagMonitor> {
        use anyhow::Context as _;
        let reader: BaseConsumer = crate::journal::admin::client_config(kafka)
            .set("group.id", &persister.group_id)
            .set("enable.auto.commit", "false")
            .create()
            .context("failed to create the lag reader")?;
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(refresh_lag(
            Arc::new(reader),
            kafka.topic.clone(),
            Duration::from_millis(persister.lag_interval_ms.max(10)),
            rx,
        ));
        Ok(LagMonitor { task, shutdown })
    }

    /// Stops refreshing.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Timeout of the blocking metadata and offset calls of a refresh.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Refreshes the lag gauges every `interval` until shutdown.
async fn refresh_lag(
    consumer: Arc<BaseConsumer>,
    topic: String,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let (c, t) = (consumer.clone(), topic.clone());
        match tokio::task::spawn_blocking(move || measure_lag(&c, &t)).await {
            Ok(Ok(lags)) => {
                tracing::trace!(?lags, "consumer lag");
                for (partition, lag) in lags {
                    metrics::gauge!(
                        m::PERSISTER_LAG,
                        "topic" => topic.clone(),
                        "partition" => partition.to_string()
                    )
                    .set(lag as f64);
                }
            }
            Ok(Err(e)) => debug!(error = %e, "consumer lag not measured"),
            Err(_) => {}
        }
    }
    // Closing a client that has a group blocks.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}

/// Returns, for every partition of `topic`, its high watermark minus the group's committed offset
/// (or minus the log start when the group committed nothing there).
fn measure_lag(consumer: &BaseConsumer, topic: &str) -> KafkaResult<Vec<(i32, i64)>> {
    let metadata = consumer.fetch_metadata(Some(topic), CALL_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for &p in &partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, CALL_TIMEOUT)?;
    let mut lags = Vec::with_capacity(partitions.len());
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, CALL_TIMEOUT)?;
        let start = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            _ => low,
        };
        lags.push((p, (high - start).max(0)));
    }
    Ok(lags)
}
