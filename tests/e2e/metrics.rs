//! Metrics: the node's metrics move as messages flow, and with a collector configured they also go
//! out over OTLP under the names `/metrics` shows, with the node's resource attributes; the
//! persister group's lag, as a gateway reports it, rises while the persister is stopped and falls
//! after.
//!
//! The collector is a real OTLP/HTTP receiver on a socket of the test ([`banter_tests::Otlp`]).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::otlp::{Metric, Received};
use banter_tests::stomp::room_dest;
use banter_tests::{Node, NodeBuilder, Otlp, StompClient, eventually, unique};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;

use crate::e2e::durable::support::{
    gateway_only, persister_lag, persister_of, prerequisites, wait_lag_drained,
};

/// Messages the test sends.
const SENT: u64 = 5;

#[tokio::test]
async fn metrics_move_with_messages_and_reach_the_collector_under_the_same_names() {
    let otlp = Otlp::start().await.expect("receiver");
    let node = NodeBuilder::new("metrics-otlp")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        .env("BANTER_TELEMETRY__METRICS_INTERVAL_MS", 300)
        .start()
        .await
        .expect("node");
    node.check(flow(&node, &otlp).await);
}

async fn flow(node: &banter_tests::Node, otlp: &Otlp) -> Result<()> {
    // Exported at zero before any message.
    for name in [
        "banter_messages_accepted_total",
        "banter_ws_bytes_in_total",
        "banter_stomp_frames_in_total",
        "banter_stomp_frames_out_total",
        "banter_sessions_open",
    ] {
        let at_start = node.metric_sum(name).await?;
        ensure!(at_start == Some(0.0), "{name} at start: {at_start:?}");
    }
    let alice = node.api().new_user("alice").await?;
    let room = node
        .api()
        .create_room(&alice.token, &unique("metered"))
        .await?;
    let mut client = StompClient::connect(&node.ws_url(), &alice.token).await?;
    let dest = room_dest(room.id);
    // The sender reads the room too: each message is also delivered.
    client.subscribe(&dest, "s", None).await?;
    for i in 0..SENT {
        client
            .send_confirmed(&dest, &format!("message {i}"))
            .await?;
    }
    let scraped = |name: &'static str| async move {
        node.metric_sum(name)
            .await?
            .with_context(|| format!("{name} is not in /metrics"))
    };
    ensure!(scraped("banter_messages_accepted_total").await? == SENT as f64);
    ensure!(scraped("banter_sessions_open").await? == 1.0);
    ensure!(scraped("banter_send_receipt_seconds_count").await? == SENT as f64);
    let delivered = eventually(
        "the messages delivered",
        Duration::from_secs(10),
        || async {
            let n = node.metric_sum("banter_send_deliver_seconds_count").await?;
            Ok(n.filter(|n| *n >= 1.0))
        },
    )
    .await?;
    ensure!(
        delivered <= SENT as f64,
        "{delivered} writes timed for {SENT} messages"
    );
    ensure!(scraped("banter_ws_bytes_in_total").await? > 0.0);
    ensure!(scraped("banter_ws_bytes_out_total").await? > 0.0);
    let sends = node
        .metric_matching("banter_stomp_frames_in_total", "command=\"SEND\"")
        .await?;
    ensure!(sends == Some(SENT as f64), "SEND frames read: {sends:?}");
    let subscribes = node
        .metric_matching("banter_stomp_frames_in_total", "command=\"SUBSCRIBE\"")
        .await?;
    ensure!(
        subscribes == Some(1.0),
        "SUBSCRIBE frames read: {subscribes:?}"
    );
    // A RECEIPT and a MESSAGE per message at least.
    let out = scraped("banter_stomp_frames_out_total").await?;
    ensure!(out >= 2.0 * SENT as f64, "frames written: {out}");
    ensure!(scraped("process_resident_memory_bytes").await? > 0.0);

    // The same values at the collector, once an export after the messages arrived.
    eventually(
        "the message metrics at the collector",
        Duration::from_secs(15),
        || async move {
            let metrics = otlp.metrics();
            let Some(accepted) = last(&metrics, "banter_messages_accepted_total") else {
                return Ok(None);
            };
            if sum_value(accepted)? < SENT as f64 {
                return Ok(None);
            }
            ensure!(
                sum_value(accepted)? == SENT as f64,
                "accepted {}",
                sum_value(accepted)?
            );
            let receipts = last(&metrics, "banter_send_receipt_seconds")
                .context("no banter_send_receipt_seconds")?;
            let Some(Data::Histogram(h)) = &receipts.data else {
                anyhow::bail!("banter_send_receipt_seconds is not a histogram: {receipts:?}");
            };
            let count: u64 = h.data_points.iter().map(|p| p.count).sum();
            ensure!(count == SENT, "{count} receipts timed");
            ensure!(
                last(&metrics, "process_cpu_seconds_total").is_some(),
                "no process metrics"
            );
            ensure!(
                accepted.resource_attr("service.name") == Some("banter"),
                "resource {:?}",
                accepted.resource
            );
            ensure!(
                accepted
                    .resource_attr("service.instance.id")
                    .is_some_and(|i| i.contains(&node.port().to_string())),
                "resource {:?}",
                accepted.resource
            );
            Ok(Some(()))
        },
    )
    .await?;
    client.disconnect().await?;
    eventually("the session closed", Duration::from_secs(10), || async {
        Ok((node.metric_sum("banter_sessions_open").await? == Some(0.0)).then_some(()))
    })
    .await
}

/// The latest export of metric `name`.
fn last<'a>(metrics: &'a [Received<Metric>], name: &str) -> Option<&'a Received<Metric>> {
    metrics.iter().rev().find(|m| m.name == name)
}

/// The value of a sum with one data point.
fn sum_value(metric: &Metric) -> Result<f64> {
    let Some(Data::Sum(sum)) = &metric.data else {
        anyhow::bail!("{} is not a sum: {metric:?}", metric.name);
    };
    let points: Vec<f64> = sum
        .data_points
        .iter()
        .map(|p| match p.value {
            Some(Value::AsInt(v)) => v as f64,
            Some(Value::AsDouble(v)) => v,
            None => f64::NAN,
        })
        .collect();
    ensure!(points.len() == 1, "{} points: {points:?}", points.len());
    Ok(points[0])
}

/// Messages sent while the persister is frozen.
const WHILE_STOPPED: u64 = 20;

/// The persister group's lag, as a node outside the group reports it: 0 once everything is stored,
/// rising while the only persister is stopped (SIGSTOP) and the gateway takes messages, back to 0
/// once it runs again.
#[tokio::test]
async fn consumer_lag_rises_while_the_persister_is_stopped_and_falls_after() {
    let Some((mysql, broker)) = prerequisites("consumer lag").await else {
        return;
    };
    let gateway = gateway_only("lag-gateway", &broker, &mysql)
        .start()
        .await
        .expect("gateway node");
    let persister = persister_of(&gateway, "lag-persister", &broker, &mysql)
        .start()
        .await
        .expect("persister node");
    let lagged = lag_follows_the_persister(&gateway, &persister).await;
    // A frozen process is thawed whatever happened, so that it can be stopped.
    let _ = persister.thaw();
    gateway.check(lagged);
}

async fn lag_follows_the_persister(gateway: &Node, persister: &Node) -> Result<()> {
    let alice = gateway.api().new_user("alice").await?;
    let room = gateway
        .api()
        .create_room(&alice.token, &unique("lagged"))
        .await?;
    let mut client = StompClient::connect(&gateway.ws_url(), &alice.token).await?;
    let dest = room_dest(room.id);
    client.send_confirmed(&dest, "before").await?;
    wait_lag_drained(gateway, Duration::from_secs(30)).await?;
    persister.freeze()?;
    for i in 0..WHILE_STOPPED {
        client
            .send_confirmed(&dest, &format!("while stopped {i}"))
            .await?;
    }
    eventually("the lag rising", Duration::from_secs(15), || async {
        let lag = persister_lag(gateway).await?.unwrap_or(0.0);
        Ok((lag >= WHILE_STOPPED as f64).then_some(()))
    })
    .await?;
    persister.thaw()?;
    // The frozen member may have been dropped from the group meanwhile: it rejoins and catches up.
    wait_lag_drained(gateway, Duration::from_secs(60)).await
}
