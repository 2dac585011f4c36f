//! Logs that name their trace: a node started with `--log-format json` and a collector writes a
//! warning made inside a traced REST request (a replayed refresh token) as a JSON line carrying
//! that request's `trace_id` and `span_id`, and exports it as an OTLP log record with the same
//! trace context and the node's resource; a line outside any sampled span names no trace. With the
//! collector away, the node serves and logs on, and counts the records it could not export.
//!
//! The collector is [`banter_tests::Otlp`], a real OTLP/HTTP receiver.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::otlp::{attr, hex, value_string};
use banter_tests::{Node, NodeBuilder, Otlp, eventually};
use serde_json::{Value, json};

/// What the gateway logs, at `warn`, when a refresh token is used twice.
const REPLAYED: &str = "refresh token replayed, its chain is revoked";

/// The node's JSON log lines (the harness writes lines of its own into the same file).
fn json_lines(node: &Node) -> Result<Vec<Value>> {
    Ok(node
        .log()?
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

/// Whether `line` is the warning of user `user`'s replayed token (`user_id` is logged with `%`:
/// a string).
fn is_replay_of(line: &Value, user: i64) -> bool {
    line["fields"]["message"] == REPLAYED
        && line["fields"]["user_id"].as_str() == Some(user.to_string().as_str())
}

/// Has a user's refresh token replayed, under the caller's sampled trace `trace` (parent span
/// `parent`) when given; checks the answer and returns the user's id.
async fn replay(node: &Node, traced: Option<(&str, &str)>) -> Result<i64> {
    let api = node.api();
    let user = api.new_user("replayer").await?;
    api.refresh(&user.refresh_token).await?;
    let mut request = api
        .http()
        .post(api.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": user.refresh_token}));
    if let Some((trace, parent)) = traced {
        request = request.header("traceparent", format!("00-{trace}-{parent}-01"));
    }
    let answer = request.send().await?;
    ensure!(answer.status() == 401, "status {}", answer.status());
    let body: Value = answer.json().await?;
    ensure!(
        body["error"]["code"] == "refresh_token_reused",
        "the replay is refused: {body}"
    );
    if let Some((trace, _)) = traced {
        ensure!(body["error"]["trace_id"] == trace, "error's trace: {body}");
    }
    Ok(user.id)
}

#[tokio::test]
async fn a_warning_in_a_traced_request_names_its_trace_on_stdout_and_at_the_collector() {
    let otlp = Otlp::start().await.expect("receiver");
    let node = NodeBuilder::new("logs")
        .arg("--log-format")
        .arg("json")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", otlp.url())
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        // Only what a client asks to keep.
        .env("BANTER_TELEMETRY__SAMPLE_RATIO", 0)
        .start()
        .await
        .expect("node");
    node.check(names_the_trace(&node, &otlp).await);
}

async fn names_the_trace(node: &Node, otlp: &Otlp) -> Result<()> {
    // Not traced (no traceparent, ratio 0): its line names no trace.
    let untraced_user = replay(node, None).await?;
    let (trace, parent) = ("6bf92f3577b34da6a3ce929d0e0e4738", "20f067aa0ba902b9");
    let user = replay(node, Some((trace, parent))).await?;
    let line = eventually("the warning on stdout", Duration::from_secs(10), || async {
        Ok(json_lines(node)?
            .into_iter()
            .find(|l| is_replay_of(l, user)))
    })
    .await?;
    ensure!(line["level"] == "WARN", "{line}");
    ensure!(
        line["trace_id"] == trace,
        "the line names the trace: {line}"
    );
    let span_id = line["span_id"]
        .as_str()
        .with_context(|| format!("no span_id: {line}"))?
        .to_owned();
    ensure!(
        span_id.len() == 16 && span_id != parent,
        "the span is the request's own: {line}"
    );
    let lines = json_lines(node)?;
    let untraced = lines
        .iter()
        .find(|l| is_replay_of(l, untraced_user))
        .context("the untraced warning on stdout")?;
    ensure!(
        untraced.get("trace_id").is_none() && untraced.get("span_id").is_none(),
        "a line outside any sampled span names no trace: {untraced}"
    );
    // Start-up lines and the untraced request's name no trace: only the traced request is sampled.
    let strays: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("trace_id").is_some_and(|t| t != trace))
        .collect();
    ensure!(strays.is_empty(), "lines naming another trace: {strays:?}");
    // The span the line names is the request's, as the collector has it.
    eventually(
        "the request's span at the collector",
        Duration::from_secs(15),
        || async {
            Ok(otlp.spans().into_iter().find(|s| {
                s.name == "http.request" && hex(&s.trace_id) == trace && hex(&s.span_id) == span_id
            }))
        },
    )
    .await?;
    let record = eventually(
        "the warning at the collector",
        Duration::from_secs(15),
        || async {
            Ok(otlp.logs().into_iter().find(|r| {
                r.body.as_ref().map(value_string).as_deref() == Some(REPLAYED)
                    && attr(&r.attributes, "user_id") == Some(user.to_string())
            }))
        },
    )
    .await?;
    ensure!(hex(&record.trace_id) == trace, "record's trace");
    ensure!(hex(&record.span_id) == span_id, "record's span");
    ensure!(record.flags & 1 == 1, "record's flags: {}", record.flags);
    ensure!(record.severity_text == "WARN", "{}", record.severity_text);
    ensure!(
        record.resource_attr("service.name") == Some("banter"),
        "resource {:?}",
        record.resource
    );
    ensure!(
        record
            .resource_attr("service.instance.id")
            .is_some_and(|id| id.ends_with(&format!(":{}", node.port()))),
        "resource {:?}",
        record.resource
    );
    let untraced = otlp
        .logs()
        .into_iter()
        .find(|r| attr(&r.attributes, "user_id") == Some(untraced_user.to_string()))
        .context("the untraced warning at the collector")?;
    ensure!(
        untraced.trace_id.iter().all(|b| *b == 0),
        "the untraced record's trace {}",
        hex(&untraced.trace_id)
    );
    // Counted once the collector's answer is back, a moment after it has the records.
    eventually(
        "exported log records counted",
        Duration::from_secs(10),
        || async {
            let exported = node
                .metric_matching("banter_telemetry_logs_total", "outcome=\"exported\"")
                .await?
                .unwrap_or(0.0);
            Ok((exported >= 2.0).then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn with_the_collector_away_the_node_logs_on_and_counts_what_it_lost() {
    // A port with nothing behind it: every export fails at once.
    let away = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", away.local_addr().expect("addr"));
    drop(away);
    let node = NodeBuilder::new("logs-away")
        .arg("--log-format")
        .arg("json")
        .env("BANTER_TELEMETRY__OTLP_ENDPOINT", &url)
        .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
        .env("BANTER_TELEMETRY__EXPORT_TIMEOUT_MS", 500)
        .start()
        .await
        .expect("node");
    node.check(logs_on(&node).await);
}

async fn logs_on(node: &Node) -> Result<()> {
    let mut users = Vec::new();
    for _ in 0..5 {
        users.push(replay(node, None).await?);
    }
    eventually(
        "lost log records counted",
        Duration::from_secs(15),
        || async {
            let lost = node
                .metric_matching("banter_telemetry_logs_total", "outcome=\"failed\"")
                .await?
                .unwrap_or(0.0)
                + node
                    .metric_matching("banter_telemetry_logs_total", "outcome=\"dropped\"")
                    .await?
                    .unwrap_or(0.0);
            Ok((lost >= 1.0).then_some(()))
        },
    )
    .await?;
    // Standard output has every warning, and the node still serves.
    let lines = json_lines(node)?;
    for user in users {
        ensure!(
            lines.iter().any(|l| is_replay_of(l, user)),
            "the warning for user {user} on stdout"
        );
    }
    replay(node, None).await?;
    Ok(())
}
