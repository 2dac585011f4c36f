//! Edits and deletes (issue #21), on both stacks: the embedded node (SQLite, in-process journal)
//! and a node on Kafka + MySQL. A member edits and deletes their own messages, an owner deletes
//! another's, others are refused with the error's code; members see the events live, a member who
//! was away gets them on resume with `since`, history shows the latest bodies and tombstones (and no
//! event), and after a `kill -9` and a restart all of it holds and the deleted text is nowhere in
//! the store.

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::Frame;
use banter_tests::kafka::sqlite3;
use banter_tests::stomp::{header, header_u64, room_dest};
use banter_tests::{Api, Node, NodeBuilder, StompClient, eventually, mysql, unique};

use super::durable::support::{kafka_node, prerequisites};

/// Where a node's rows are, to check what the store holds.
enum Rows {
    Sqlite(std::path::PathBuf),
    Mysql { server: String, database: String },
}

impl Rows {
    /// Runs one query returning one value.
    async fn value(&self, sql: &str) -> Result<String> {
        let out = match self {
            Rows::Sqlite(db) => sqlite3(db, sql).await?,
            Rows::Mysql { server, database } => mysql::query(server, database, sql)?,
        };
        Ok(out.trim().to_owned())
    }
}

#[tokio::test]
async fn edits_and_deletes_on_the_embedded_node() {
    let mut node = NodeBuilder::new("edits").start().await.expect("node");
    let rows = Rows::Sqlite(node.data_dir().join("banter.db"));
    let result = scenario(&mut node, &rows).await;
    node.check(result);
}

#[tokio::test]
async fn edits_and_deletes_on_kafka_and_mysql() {
    let test = "edits_and_deletes_on_kafka_and_mysql";
    let Some((mysql, broker)) = prerequisites(test).await else {
        return;
    };
    let mut node = kafka_node("edits-kafka", &broker)
        .mysql(&mysql)
        .start()
        .await
        .expect("node");
    let rows = Rows::Mysql {
        server: mysql.clone(),
        database: node.mysql_database().expect("a database").to_owned(),
    };
    let result = scenario(&mut node, &rows).await;
    node.check(result);
}

/// The texts that were edited away or deleted: after the scenario none is anywhere.
const GONE: [&str; 3] = ["helo wrld", "hello world", "secret words"];

/// The seqs of the scenario's messages and events.
struct Seqs {
    a: u64,
    b: u64,
    c: u64,
}

async fn scenario(node: &mut Node, rows: &Rows) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let bob = api.new_user("bob").await?;
    let carol = api.new_user("carol").await?;
    let room = api.create_room(&alice.token, &unique("edits")).await?.id;
    api.join(&bob.token, room).await?;
    api.join(&carol.token, room).await?;
    let dest = room_dest(room);

    let mut bob_c = StompClient::connect(&ws, &bob.token).await?;
    let mut carol_c = StompClient::connect(&ws, &carol.token).await?;
    carol_c.subscribe(&dest, "c", None).await?;
    let a = bob_c.send_confirmed(&dest, "helo wrld").await?;
    let b = bob_c.send_confirmed(&dest, "keep me").await?;
    let c = bob_c.send_confirmed(&dest, "secret words").await?;
    let e1 = bob_c
        .send_event(&dest, "edit", a.seq, "hello world")
        .await?;
    ensure!(e1.seq == c.seq + 1, "an edit takes the next seq: {e1:?}");
    let live = next_event(&mut carol_c, e1.seq).await?;
    ensure!(
        item(&live) == ("edit", Some(a.seq), "hello world".to_owned()),
        "carol sees the edit live: {live:?}"
    );

    // Others are refused, each with the error's code.
    for (event, target, body, code) in [
        ("edit", b.seq, "mine now", "not_author"),
        ("delete", b.seq, "", "not_allowed"),
        ("delete", e1.seq, "", "unknown_message"),
    ] {
        let mut c2 = StompClient::connect(&ws, &carol.token).await?;
        c2.send_event_nowait(&dest, event, target, body, "x")
            .await?;
        let error = c2.expect_error().await?;
        ensure!(
            error.starts_with(&format!("{code}: ")),
            "carol's {event} of {target}: {error}"
        );
    }

    // Carol is away while bob edits again and the owner and bob delete.
    carol_c.disconnect().await?;
    let e2 = bob_c
        .send_event(&dest, "edit", b.seq, "keep me, edited")
        .await?;
    let mut alice_c = StompClient::connect(&ws, &alice.token).await?;
    let d1 = alice_c.send_event(&dest, "delete", c.seq, "").await?;
    let d2 = bob_c.send_event(&dest, "delete", a.seq, "").await?;
    let mut bob2 = StompClient::connect(&ws, &bob.token).await?;
    bob2.send_event_nowait(&dest, "edit", a.seq, "back", "x")
        .await?;
    let error = bob2.expect_error().await?;
    ensure!(error.starts_with("message_deleted: "), "{error}");

    let mut carol_c = StompClient::connect(&ws, &carol.token).await?;
    let missed = resume(&mut carol_c, &dest, "c2", e1.seq, 3).await?;
    ensure!(
        missed
            == [
                ("edit", Some(b.seq), "keep me, edited".to_owned()),
                ("delete", Some(c.seq), String::new()),
                ("delete", Some(a.seq), String::new()),
            ],
        "the resume after the first edit: {missed:?}"
    );
    ensure!(
        [e2.seq, d1.seq, d2.seq] == [e1.seq + 1, e1.seq + 2, e1.seq + 3],
        "seqs {e2:?} {d1:?} {d2:?}"
    );
    let seqs = Seqs {
        a: a.seq,
        b: b.seq,
        c: c.seq,
    };
    check_everything(&api, &ws, &carol.token, room, &seqs, d2.seq)
        .await
        .context("with the room active")?;

    // Killed (-9) and restarted: the room comes back from the store (and the journal's tail).
    node.restart().await?;
    check_everything(
        &node.api(),
        &node.ws_url(),
        &carol.token,
        room,
        &seqs,
        d2.seq,
    )
    .await
    .context("after kill -9 and a restart")?;

    let b_body = format!(
        "SELECT body FROM messages WHERE room_id = {room} AND seq = {}",
        b.seq
    );
    eventually(
        "the store holds the edit",
        super::durable::support::STORE_WAIT,
        || async { Ok((rows.value(&b_body).await? == "keep me, edited").then_some(())) },
    )
    .await?;
    for text in GONE {
        let n = rows
            .value(&format!(
                "SELECT COUNT(*) FROM messages WHERE room_id = {room} AND body LIKE '%{text}%'"
            ))
            .await?;
        ensure!(n == "0", "{text:?} is still in {n} rows of the store");
    }
    let events = rows
        .value(&format!(
            "SELECT COUNT(*) FROM messages WHERE room_id = {room} AND kind <> 0"
        ))
        .await?;
    ensure!(
        events == "4",
        "the store keeps the 4 events as rows: {events}"
    );
    Ok(())
}

/// History shows the messages alone, as the events left them; a resume from the start shows the
/// tombstones and the events, and none of the deleted or replaced texts.
async fn check_everything(
    api: &Api,
    ws: &str,
    token: &str,
    room: i64,
    s: &Seqs,
    last: u64,
) -> Result<()> {
    let page = api.history(token, room, None, Some(50)).await?;
    let shown: Vec<(u64, String, bool, bool)> = page
        .messages
        .iter()
        .map(|m| {
            (
                m.seq,
                m.body.clone(),
                m.edited_at_ms.is_some(),
                m.deleted_at_ms.is_some(),
            )
        })
        .collect();
    ensure!(
        shown
            == [
                (s.c, String::new(), false, true),
                (s.b, "keep me, edited".to_owned(), true, false),
                (s.a, String::new(), true, true),
            ],
        "history: {shown:?}"
    );
    let mut c = StompClient::connect(ws, token).await?;
    let dest = room_dest(room);
    let all = resume(&mut c, &dest, "all", 0, last as usize).await?;
    ensure!(
        all[..3]
            == [
                ("message", None, String::new()),
                ("message", None, "keep me, edited".to_owned()),
                ("message", None, String::new()),
            ],
        "the messages on a resume from the start: {all:?}"
    );
    ensure!(
        all.iter()
            .all(|(_, _, body)| GONE.iter().all(|g| !body.contains(g))),
        "a deleted or replaced text on resume: {all:?}"
    );
    c.disconnect().await
}

/// Subscribes with `since` and returns the `n` items replayed, in order.
async fn resume(
    c: &mut StompClient,
    dest: &str,
    sub: &str,
    since: u64,
    n: usize,
) -> Result<Vec<(&'static str, Option<u64>, String)>> {
    c.subscribe(dest, sub, Some(since)).await?;
    let mut items = Vec::new();
    for seq in since + 1..=since + n as u64 {
        items.push(item(&next_event(c, seq).await?));
    }
    Ok(items)
}

/// Waits for the room item with `seq`.
async fn next_event(c: &mut StompClient, seq: u64) -> Result<Frame> {
    c.recv_where(
        std::time::Duration::from_secs(10),
        &format!("item {seq}"),
        |f| header_u64(f, "seq") == Some(seq),
    )
    .await
}

/// A frame's event, target and body.
fn item(f: &Frame) -> (&'static str, Option<u64>, String) {
    let event = match header(f, "event") {
        Some("message") => "message",
        Some("edit") => "edit",
        Some("delete") => "delete",
        _ => "?",
    };
    (
        event,
        header_u64(f, "target-seq"),
        String::from_utf8_lossy(&f.body).into_owned(),
    )
}
