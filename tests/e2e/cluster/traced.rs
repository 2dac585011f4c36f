//! One trace across the cluster: a message sent on one member to a room another member serves,
//! fanned out to subscribers on the third, makes one trace at a real OTLP receiver (on the Kafka +
//! MariaDB stack), each hop a span on the node where it ran, under the right parent:
//!
//! ```text
//! stomp.send (sender's node, under the client's traceparent)
//! ├── cluster.to_room (room's node)
//! │   └── room.publish (room's node)
//! │       ├── kafka.produce (room's node)
//! │       │   └── mysql.insert (a persister's node)
//! │       └── cluster.fan_out (each other node with a subscriber)
//! └── stomp.receipt (sender's node)
//! ```
//!
//! and the persister's `persister.batch` span links to the row's `kafka.produce`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::Command;
use banter_tests::otlp::{Received, Span, hex};
use banter_tests::stomp::{frame, room_dest};
use banter_tests::{Node, Otlp, StompClient, eventually, unique};

use super::three_with;
use crate::e2e::durable::support::prerequisites;

/// Rooms the sender writes to: with shards spread over three members, some of them live on
/// another member than the sender's (all on the sender's: (1/3)^12).
const ROOMS: u64 = 12;

#[tokio::test]
async fn a_messages_trace_crosses_the_cluster_from_the_frame_to_the_row_and_the_fan_out() {
    let Some((mysql, broker)) = prerequisites("cluster traces").await else {
        return;
    };
    let otlp = Otlp::start().await.expect("receiver");
    let url = otlp.url().to_owned();
    let (a, b, c) = three_with(&broker, &mysql, |_, node| {
        node.env("BANTER_TELEMETRY__OTLP_ENDPOINT", &url)
            .env("BANTER_TELEMETRY__OTLP_PROTOCOL", "http")
            // Only what the client asks to keep.
            .env("BANTER_TELEMETRY__SAMPLE_RATIO", 0)
    })
    .await;
    a.check(across(&[&a, &b, &c], &otlp).await);
}

/// The trace id of the message sent to the `i`th room.
fn trace_of(i: u64) -> String {
    format!(
        "{:032x}",
        0x7ace_0000_0000_0000_0000_0000_0000_0000_u128 + u128::from(i)
    )
}

/// The client's span every traced SEND names as its parent.
const CLIENT_SPAN: &str = "c1c1c1c1c1c1c1c1";

async fn across(nodes: &[&Node; 3], otlp: &Otlp) -> Result<()> {
    let [a, b, c] = *nodes;
    let (alice, bob, carol) = (
        a.api().new_user(&unique("alice")).await?,
        b.api().new_user(&unique("bob")).await?,
        c.api().new_user(&unique("carol")).await?,
    );
    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        let room = a
            .api()
            .create_room(&alice.token, &unique(&format!("t{i}")))
            .await?;
        b.api().join(&bob.token, room.id).await?;
        c.api().join(&carol.token, room.id).await?;
        rooms.push(room.id);
    }
    // Subscribers on the two other nodes: whichever serves a room, another one gets a fan-out.
    let mut listeners = Vec::new();
    for (node, user) in [(b, &bob), (c, &carol)] {
        let mut client = StompClient::connect(&node.ws_url(), &user.token).await?;
        for room in &rooms {
            client
                .subscribe(&room_dest(*room), &format!("s{room}"), None)
                .await?;
        }
        listeners.push(client);
    }
    let mut sender = StompClient::connect(&a.ws_url(), &alice.token).await?;
    for (i, room) in rooms.iter().enumerate() {
        let traceparent = format!("00-{}-{CLIENT_SPAN}-01", trace_of(i as u64));
        let receipt = sender.next_receipt_id();
        let send = frame(
            Command::Send,
            &[
                ("destination", room_dest(*room).as_str()),
                ("receipt", receipt.as_str()),
                ("traceparent", traceparent.as_str()),
            ],
            format!("traced {i}"),
        );
        sender.send_frame(&send).await?;
        sender.recv_receipt(&receipt).await?;
    }
    let port_of = |node: &Node| node.port().to_string();
    let sender_port = port_of(a);
    let found = eventually(
        "a message's whole trace across the cluster",
        Duration::from_secs(45),
        || {
            let sender_port = sender_port.clone();
            async move {
                let spans = otlp.spans();
                // A room served by another member than the sender's, whose trace is complete.
                let mut last = anyhow::anyhow!("no trace yet");
                for i in 0..ROOMS {
                    match whole_trace(&spans, &trace_of(i), &sender_port) {
                        Ok(Some(())) => return Ok(Some(())),
                        Ok(None) => {}
                        Err(e) => last = e,
                    }
                }
                let sends = spans.iter().filter(|s| s.name == "stomp.send").count();
                Err(last.context(format!("{sends} stomp.send spans in all")))
            }
        },
    )
    .await;
    if found.is_err() {
        // What the sender's node made of its spans, for the failure's reader.
        for outcome in ["exported", "failed", "dropped"] {
            let label = format!("outcome=\"{outcome}\"");
            let n = a
                .metric_matching("banter_telemetry_spans_total", &label)
                .await?;
            eprintln!("sender's node: spans {outcome}: {n:?}");
        }
    }
    found
}

/// Checks the trace `trace` when its room lives on another node than the sender's (port
/// `sender`): `Ok(None)` for a room on the sender's node, an error while a span is missing or
/// misplaced.
fn whole_trace(spans: &[Received<Span>], trace: &str, sender: &str) -> Result<Option<()>> {
    let ours: Vec<&Received<Span>> = spans.iter().filter(|s| hex(&s.trace_id) == trace).collect();
    let find = |name: &str| {
        ours.iter()
            .copied()
            .find(|s| s.name == name)
            .with_context(|| {
                let have: Vec<String> = ours
                    .iter()
                    .map(|s| {
                        format!(
                            "{}@{}",
                            s.name,
                            s.resource_attr("service.instance.id").unwrap_or("?")
                        )
                    })
                    .collect();
                format!("trace {trace}: no {name} span yet; it has {have:?}")
            })
    };
    let node_of = |s: &Received<Span>| {
        s.resource_attr("service.instance.id")
            .unwrap_or_default()
            .to_owned()
    };
    let publish = find("room.publish")?;
    let owner = node_of(publish);
    if owner.ends_with(&format!(":{sender}")) {
        return Ok(None);
    }
    let send = find("stomp.send")?;
    let hop = find("cluster.to_room")?;
    let produce = find("kafka.produce")?;
    let insert = find("mysql.insert")?;
    let receipt = find("stomp.receipt")?;
    let fan_out = find("cluster.fan_out")?;
    let parent = |child: &Received<Span>, parent: &Received<Span>| {
        ensure!(
            child.parent_span_id == parent.span_id,
            "trace {trace}: {}'s parent is not {}",
            child.name,
            parent.name
        );
        Ok(())
    };
    ensure!(
        hex(&send.parent_span_id) == CLIENT_SPAN,
        "stomp.send's parent"
    );
    parent(hop, send)?;
    parent(publish, hop)?;
    parent(produce, publish)?;
    parent(insert, produce)?;
    parent(fan_out, publish)?;
    parent(receipt, send)?;
    ensure!(
        node_of(send).ends_with(&format!(":{sender}")) && node_of(receipt) == node_of(send),
        "stomp.send and stomp.receipt on the sender's node: {} {}",
        node_of(send),
        node_of(receipt)
    );
    ensure!(
        node_of(hop) == owner && node_of(produce) == owner,
        "hop and produce on the room's node"
    );
    ensure!(
        node_of(fan_out) != owner,
        "the fan-out span is the receiving node's"
    );
    let linked = spans.iter().any(|s| {
        s.name == "persister.batch"
            && s.links
                .iter()
                .any(|l| l.trace_id == produce.trace_id && l.span_id == produce.span_id)
    });
    ensure!(
        linked,
        "trace {trace}: no persister.batch links to its produce span"
    );
    Ok(Some(()))
}
