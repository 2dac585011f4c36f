//! OTLP export: a node configured with a collector sends it the spans of a message, under the
//! trace the client started (`traceparent` on SEND), and none of a trace it was not asked to keep;
//! a REST request's span joins the caller's trace, and its error body names that trace.
//!
//! On the Kafka + MySQL stack the trace goes on from the frame to the row: `stomp.send` →
//! `room.publish` → `kafka.produce` → `mysql.insert`, each the parent of the next, with the
//! RECEIPT (`stomp.receipt`) under the SEND and the persister's batch (`persister.batch`, a trace of
//! its own) linked to the row's produce span. Across nodes: `cluster/traced.rs`.
//!
//! A SEND whose trace was not sampled but that failed, or waited long for its RECEIPT, is kept
//! anyway: its `stomp.send` span, with `banter.kept` saying why.
//!
//! The collector is a real OTLP receiver on a socket of the test ([`banter_tests::Otlp`]), over
//! HTTP, and over gRPC in one test.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::Command;
use banter_tests::kafka::Broker;
use banter_tests::node::mysql_url_or_skip;
use banter_tests::otlp::{Received, Span, hex};
use banter_tests::stomp::{frame, room_dest};
use banter_tests::{NodeBuilder, Otlp, StompClient, eventually, unique};

/// A new user's new room on `node`, with the user's STOMP client and the room's destination.
async fn room_with_client(
    node: &banter_tests::Node,
) -> Result<(banter_tests::TestUser, StompClient, String)> {
    let alice = node.api().new_user("alice").await?;
    let room = node
        .api()
        .create_room(&alice.token, &unique("traced"))
        .await?;
    let client = StompClient::connect(&node.ws_url(), &alice.token).await?;
    Ok((alice, client, room_dest(room.id)))
}

/// Sends `body` to `dest` under the client's sampled trace `trace` with parent span `parent`, and
/// waits for its RECEIPT.
async fn send_traced(
    client: &mut StompClient,
    dest: &str,
    trace: &str,
    parent: &str,
    body: &str,
) -> Result<()> {
    let traceparent = format!("00-{trace}-{parent}-01");
    let receipt = client.next_receipt_id();
    let send = frame(
        Command::Send,
        &[
            ("destination", dest),
            ("receipt", receipt.as_str()),
            ("traceparent", traceparent.as_str()),
        ],
        body.to_owned(),
    );
    client.send_frame(&send).await?;
    client.recv_receipt(&receipt).await?;
    Ok(())
}

#[tokio::test]
async fn a_messages_span_reaches_the_collector_under_the_clients_trace() {
    let otlp = Otlp::start().await.expect("receiver");
    let node = NodeBuilder::new("traces")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        // Only what a client asks to keep: parent-based with a ratio of 0.
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 0)
        .start()
        .await
        .expect("node");
    node.check(follows_the_client(&node, &otlp).await);
}

async fn follows_the_client(node: &banter_tests::Node, otlp: &Otlp) -> Result<()> {
    let (alice, mut client, dest) = room_with_client(node).await?;
    // No traceparent: a new trace, kept with the ratio (0): not exported.
    client.send_confirmed(&dest, "not traced").await?;
    // A sampled trace of the client's own.
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    send_traced(&mut client, &dest, trace, parent, "traced").await?;
    eventually(
        "the SEND's span at the collector",
        Duration::from_secs(15),
        || async move {
            let sends: Vec<Received<Span>> = otlp
                .spans()
                .into_iter()
                .filter(|s| s.name == "stomp.send")
                .collect();
            ensure!(!sends.is_empty(), "no stomp.send span yet");
            ensure!(
                sends.len() == 1,
                "{} stomp.send spans: the unsampled trace was exported",
                sends.len()
            );
            let span = &sends[0];
            ensure!(
                hex(&span.trace_id) == trace,
                "trace {}",
                hex(&span.trace_id)
            );
            ensure!(
                hex(&span.parent_span_id) == parent,
                "parent {}",
                hex(&span.parent_span_id)
            );
            let attr = |k: &str| {
                span.resource_attr(k)
                    .with_context(|| format!("no resource attribute {k}: {:?}", span.resource))
            };
            ensure!(attr("service.name")?.contains("banter"), "service.name");
            ensure!(
                attr("service.instance.id")?.contains(&node.port().to_string()),
                "service.instance.id"
            );
            Ok(Some(()))
        },
    )
    .await?;
    // A REST request under a trace of the client's: its error names the trace, and its span is
    // exported under the client's.
    let (trace, parent) = ("5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8");
    let api = node.api();
    let answer = api
        .http()
        .get(api.url("/api/rooms/999999999"))
        .bearer_auth(&alice.token)
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .send()
        .await?;
    ensure!(answer.status() == 404, "status {}", answer.status());
    let body: serde_json::Value = answer.json().await?;
    ensure!(
        body["error"]["trace_id"] == trace,
        "the error names the trace: {body}"
    );
    eventually(
        "the request's span at the collector",
        Duration::from_secs(15),
        || async move {
            let request = otlp
                .spans()
                .into_iter()
                .find(|s| s.name == "http.request" && hex(&s.trace_id) == trace)
                .context("no http.request span yet")?;
            ensure!(
                hex(&request.parent_span_id) == parent,
                "http.request's parent"
            );
            Ok(Some(()))
        },
    )
    .await?;
    let exported = node
        .metric_sum("banter_telemetry_spans_total")
        .await?
        .unwrap_or(0.0);
    ensure!(exported >= 1.0, "exported spans counted: {exported}");
    Ok(())
}

/// The default protocol, gRPC: the same spans, and the metrics, reach a collector's gRPC services.
#[tokio::test]
async fn over_grpc_the_spans_and_the_metrics_reach_the_collector() {
    let otlp = Otlp::start_grpc().await.expect("receiver");
    let node = NodeBuilder::new("traces-grpc")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "grpc")
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 0)
        .env("BANTER_TELEMETRY__METRICS_INTERVAL_MS", 300)
        .start()
        .await
        .expect("node");
    node.check(over_grpc(&node, &otlp).await);
}

async fn over_grpc(node: &banter_tests::Node, otlp: &Otlp) -> Result<()> {
    let (_, mut client, dest) = room_with_client(node).await?;
    let (trace, parent) = ("6bf92f3577b34da6a3ce929d0e0e4738", "20f067aa0ba902b9");
    send_traced(&mut client, &dest, trace, parent, "over gRPC").await?;
    eventually(
        "the SEND's span and the metrics over gRPC",
        Duration::from_secs(15),
        || async move {
            let send = otlp
                .spans()
                .into_iter()
                .find(|s| s.name == "stomp.send")
                .context("no stomp.send span yet")?;
            ensure!(
                hex(&send.trace_id) == trace,
                "trace {}",
                hex(&send.trace_id)
            );
            ensure!(hex(&send.parent_span_id) == parent, "stomp.send's parent");
            ensure!(
                otlp.metrics()
                    .iter()
                    .any(|m| m.name == "banter_messages_accepted_total"),
                "no banter_messages_accepted_total yet"
            );
            Ok(Some(()))
        },
    )
    .await
}

#[tokio::test]
async fn every_span_kept_is_a_hop_and_none_is_an_actors_life() {
    let otlp = Otlp::start().await.expect("receiver");
    let mut node = NodeBuilder::new("traces-all")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 1)
        .env("BANTER_ROOMS__IDLE_TIMEOUT_SECS", 1)
        .start()
        .await
        .expect("node");
    let sent = node.check(sends_a_few(&node).await);
    // The room passivates once idle, which would close ractor's span of its life, were it kept;
    // a graceful stop flushes the exporter.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = node.terminate(Duration::from_secs(20)).await.expect("stop");
    assert!(status.success(), "the node stopped cleanly: {status}");
    let spans = otlp.spans();
    let sends = spans.iter().filter(|s| s.name == "stomp.send").count();
    assert_eq!(sends, sent, "every SEND's span was exported at ratio 1");
    let actors: Vec<&str> = spans
        .iter()
        .filter(|s| s.name == "Actor")
        .map(|s| s.name.as_str())
        .collect();
    assert!(actors.is_empty(), "{} actor spans exported", actors.len());
}

/// Sends a few messages to a new room and returns how many.
async fn sends_a_few(node: &banter_tests::Node) -> Result<usize> {
    let (_, mut client, dest) = room_with_client(node).await?;
    for i in 0..5 {
        client.send_confirmed(&dest, &format!("m{i}")).await?;
    }
    client.disconnect().await?;
    Ok(5)
}

#[tokio::test]
async fn failed_and_slow_sends_are_kept_though_their_trace_was_not_sampled() {
    let otlp = Otlp::start().await.expect("receiver");
    let node = NodeBuilder::new("traces-kept")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 0)
        // Every SEND that waits for its RECEIPT is slow.
        .env("BANTER_TELEMETRY__SLOW_SEND_MS", 0)
        .start()
        .await
        .expect("node");
    node.check(kept(&node, &otlp).await);
}

async fn kept(node: &banter_tests::Node, otlp: &Otlp) -> Result<()> {
    let kept_as = |span: &Span, why: &str| {
        span.attributes.iter().any(|a| {
            a.key == "banter.kept"
                && a.value.as_ref().map(banter_tests::otlp::value_string) == Some(why.to_owned())
        })
    };
    // A slow SEND in no trace of the client's: a root of its own.
    let (_, mut client, dest) = room_with_client(node).await?;
    client.send_confirmed(&dest, "slow").await?;
    // A SEND refused (not a member) under the client's unsampled trace: kept as an error, in it.
    let stranger = node.api().new_user("stranger").await?;
    let mut other = StompClient::connect(&node.ws_url(), &stranger.token).await?;
    let (trace, parent) = ("7bf92f3577b34da6a3ce929d0e0e4739", "30f067aa0ba902ba");
    let traceparent = format!("00-{trace}-{parent}-00");
    other
        .send_frame(&frame(
            Command::Send,
            &[
                ("destination", dest.as_str()),
                ("traceparent", traceparent.as_str()),
            ],
            "refused".to_owned(),
        ))
        .await?;
    let error = other.recv_frame(Duration::from_secs(10)).await?;
    ensure!(error.command == Command::Error, "refused: {error:?}");
    eventually(
        "the kept spans at the collector",
        Duration::from_secs(15),
        || async move {
            let spans = otlp.spans();
            let slow = spans
                .iter()
                .find(|s| s.name == "stomp.send" && kept_as(s, "slow"))
                .context("no slow stomp.send yet")?;
            ensure!(
                slow.parent_span_id.is_empty(),
                "a slow SEND's span is a root"
            );
            let failed = spans
                .iter()
                .find(|s| s.name == "stomp.send" && kept_as(s, "error"))
                .context("no failed stomp.send yet")?;
            ensure!(hex(&failed.trace_id) == trace, "in the client's trace");
            ensure!(
                hex(&failed.parent_span_id) == parent,
                "under the client's span"
            );
            let status = failed.status.as_ref().context("a status")?;
            ensure!(
                status.message.contains("not a member"),
                "the error is the span's status: {status:?}"
            );
            ensure!(
                spans.iter().all(|s| s.name == "stomp.send"),
                "only the kept spans, not the hops after them: {:?}",
                spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>()
            );
            Ok(Some(()))
        },
    )
    .await
}

#[tokio::test]
async fn with_the_collector_away_the_node_serves_on_and_counts_what_it_lost() {
    // A port with nothing behind it: every export fails at once.
    let away = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", away.local_addr().expect("addr"));
    drop(away);
    let node = NodeBuilder::new("traces-away")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", &url)
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 1)
        .env("BANTER_TELEMETRY__EXPORT_TIMEOUT_MS", 500)
        .start()
        .await
        .expect("node");
    node.check(serves_on(&node).await);
}

async fn serves_on(node: &banter_tests::Node) -> Result<()> {
    let (_, mut client, dest) = room_with_client(node).await?;
    for i in 0..50 {
        client.send_confirmed(&dest, &format!("m{i}")).await?;
    }
    eventually(
        "failed exports counted",
        Duration::from_secs(15),
        || async move {
            let failed = node
                .metric_matching("banter_telemetry_spans_total", "outcome=\"failed\"")
                .await?
                .unwrap_or(0.0);
            Ok((failed >= 1.0).then_some(()))
        },
    )
    .await?;
    // Still serving.
    client.send_confirmed(&dest, "after").await?;
    Ok(())
}

#[tokio::test]
async fn on_the_full_stack_one_trace_runs_from_the_frame_to_the_row() {
    let test = "on_the_full_stack_one_trace_runs_from_the_frame_to_the_row";
    let Some(mysql) = mysql_url_or_skip(test) else {
        return;
    };
    let Some(broker) = Broker::start().await.expect("broker") else {
        return;
    };
    let otlp = Otlp::start().await.expect("receiver");
    let node = NodeBuilder::new("traces-stack")
        .mysql(&mysql)
        .env("BANTER_JOURNAL__KIND", "kafka")
        .env("BANTER_JOURNAL__KAFKA__BROKERS", broker.brokers())
        .env("BANTER_JOURNAL__KAFKA__PARTITIONS", 2)
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 0)
        // The untraced message must make no span, even if a slow machine makes it slow.
        .env("BANTER_TELEMETRY__SLOW_SEND_MS", 3_600_000)
        // Spans are traced whatever the log keeps.
        .env("BANTER_LOG", "warn")
        .start()
        .await
        .expect("node");
    node.check(frame_to_row(&node, &otlp).await);
}

async fn frame_to_row(node: &banter_tests::Node, otlp: &Otlp) -> Result<()> {
    let (_, mut client, dest) = room_with_client(node).await?;
    // Not traced by the client, ratio 0: no span of it anywhere, produce and insert included.
    client.send_confirmed(&dest, "not traced").await?;
    let (trace, parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    send_traced(&mut client, &dest, trace, parent, "to the row").await?;
    eventually(
        "the message's spans",
        Duration::from_secs(30),
        || async move {
            let ours: Vec<Received<Span>> = otlp
                .spans()
                .into_iter()
                .filter(|s| hex(&s.trace_id) == trace)
                .collect();
            let find = |name: &str| {
                ours.iter()
                    .find(|s| s.name == name)
                    .with_context(|| format!("no {name} span yet"))
            };
            let send = find("stomp.send")?;
            let publish = find("room.publish")?;
            let produce = find("kafka.produce")?;
            let insert = find("mysql.insert")?;
            let receipt = find("stomp.receipt")?;
            ensure!(hex(&send.parent_span_id) == parent, "stomp.send's parent");
            ensure!(
                publish.parent_span_id == send.span_id,
                "room.publish's parent"
            );
            ensure!(
                produce.parent_span_id == publish.span_id,
                "kafka.produce's parent"
            );
            ensure!(
                insert.parent_span_id == produce.span_id,
                "mysql.insert's parent"
            );
            ensure!(
                receipt.parent_span_id == send.span_id,
                "stomp.receipt's parent"
            );
            let batch = otlp
                .spans()
                .into_iter()
                .find(|s| s.name == "persister.batch")
                .context("no persister.batch span yet")?;
            ensure!(
                batch
                    .links
                    .iter()
                    .any(|l| l.trace_id == produce.trace_id && l.span_id == produce.span_id),
                "the batch links to the row's produce span: {:?}",
                batch.links
            );
            let strays: Vec<String> = otlp
                .spans()
                .into_iter()
                .filter(|s| hex(&s.trace_id) != trace && s.name != "persister.batch")
                .map(|s| s.item.name)
                .collect();
            ensure!(
                strays.is_empty(),
                "spans of the untraced message: {strays:?}"
            );
            Ok(Some(()))
        },
    )
    .await
}
