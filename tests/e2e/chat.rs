//! Two users in a DM and three in a group: live delivery with receipts, typing, read markers and
//! unread counts, members, leaving. Run on the shared SQLite node and on a MariaDB node.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::Command;
use banter_tests::node::mysql_url_or_skip;
use banter_tests::stomp::{frame, header, header_u64, room_dest};
use banter_tests::{Node, NodeBuilder, StompClient, eventually, shared_node, unique};
use bytes::Bytes;
use serde_json::Value;

#[tokio::test]
async fn dm_and_group_conversation_on_sqlite() {
    let node = shared_node().await.expect("shared node");
    node.check(conversation(node).await);
}

#[tokio::test]
async fn dm_and_group_conversation_on_mysql() {
    let Some(url) = mysql_url_or_skip("dm_and_group_conversation_on_mysql") else {
        return;
    };
    let node = NodeBuilder::new("mysql")
        .mysql(&url)
        .start()
        .await
        .expect("mysql node");
    node.check(conversation(&node).await);
}

/// What a chat MESSAGE frame must say.
struct Expected<'a> {
    sub: &'a str,
    room: i64,
    seq: u64,
    message_id: &'a str,
    sender_id: i64,
    sender: &'a str,
    body: &'a str,
}

/// Asserts the documented headers of a chat MESSAGE frame.
fn check_chat_message(f: &banter_proto::stomp::Frame, e: Expected<'_>) -> Result<()> {
    let Expected {
        sub,
        room,
        seq,
        message_id,
        sender_id,
        sender,
        body,
    } = e;
    let dest = room_dest(room);
    let expect = [
        ("subscription", sub),
        ("destination", dest.as_str()),
        ("event", "message"),
        ("message-id", message_id),
        ("sender", sender),
        ("content-type", "text/plain;charset=utf-8"),
    ];
    for (k, v) in expect {
        ensure!(
            header(f, k) == Some(v),
            "MESSAGE header {k}: expected {v:?} in {f:?}"
        );
    }
    ensure!(
        header_u64(f, "seq") == Some(seq),
        "seq {seq} expected in {f:?}"
    );
    ensure!(
        header(f, "room-id") == Some(room.to_string().as_str()),
        "room-id in {f:?}"
    );
    ensure!(
        header(f, "sender-id") == Some(sender_id.to_string().as_str()),
        "sender-id in {f:?}"
    );
    ensure!(
        header_u64(f, "timestamp").is_some_and(|t| t > 0),
        "timestamp in {f:?}"
    );
    ensure!(
        f.body.as_ref() == body.as_bytes(),
        "body {body:?} expected in {f:?}"
    );
    Ok(())
}

async fn conversation(node: &Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let bob = api.new_user("bob").await?;
    let carol = api.new_user("carol").await?;

    // Login is case-insensitive on the username and returns the same user.
    let s = api
        .login(&alice.username.to_uppercase(), &alice.password)
        .await?;
    ensure!(
        s.user.id == alice.id && s.user.username == alice.username,
        "login returned {s:?}"
    );
    ensure!(
        s.token_type == "Bearer" && s.expires_in > 0,
        "session {s:?}"
    );
    ensure!(
        api.me(&alice.token).await?.id == alice.id,
        "GET /api/users/me"
    );

    // Bob listens to his own queue before the DM exists; he offers no subprotocol.
    let mut bob_c = StompClient::connect_no_subprotocol(&ws, &bob.token).await?;
    let connected = bob_c.connected.clone().context("CONNECTED")?;
    ensure!(
        header(&connected, "version") == Some("1.2"),
        "CONNECTED {connected:?}"
    );
    ensure!(
        header(&connected, "user-id") == Some(bob.id.to_string().as_str()),
        "CONNECTED {connected:?}"
    );
    for h in ["heart-beat", "server", "session"] {
        ensure!(
            header(&connected, h).is_some_and(|v| !v.is_empty()),
            "CONNECTED lacks {h}: {connected:?}"
        );
    }
    bob_c
        .subscribe("/user/queue/events", "bob-events", None)
        .await?;

    // The DM: created once, the same room for either member afterwards.
    let (status, dm) = api.dm(&alice.token, bob.id).await?;
    ensure!(
        status == 201 && dm.kind == "dm",
        "first POST /api/dms: {status} {dm:?}"
    );
    let (status, again) = api.dm(&alice.token, bob.id).await?;
    ensure!(
        status == 200 && again.id == dm.id,
        "second POST /api/dms: {status} {again:?}"
    );
    let (status, from_bob) = api.dm(&bob.token, alice.id).await?;
    ensure!(
        status == 200 && from_bob.id == dm.id,
        "POST /api/dms by the peer: {status} {from_bob:?}"
    );
    let added = bob_c
        .recv_event("room.added", |f| {
            serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["id"] == dm.id)
        })
        .await
        .context("bob is told about the new DM")?;
    let summary: Value = serde_json::from_slice(&added.body)?;
    ensure!(
        summary["kind"] == "dm" && summary["dm_peer"] == alice.id,
        "room.added body {summary}"
    );

    let dm_dest = room_dest(dm.id);
    let mut alice_c = StompClient::connect(&ws, &alice.token).await?;
    alice_c.subscribe(&dm_dest, "dm", None).await?;
    bob_c.subscribe(&dm_dest, "dm", None).await?;

    // Alice -> Bob: the RECEIPT carries seq and message-id, Bob gets the same.
    let r1 = alice_c.send_confirmed(&dm_dest, "hello bob").await?;
    uuid::Uuid::parse_str(&r1.message_id)
        .with_context(|| format!("message-id {:?} is a UUID", r1.message_id))?;
    let m = bob_c.recv_message("dm").await?;
    check_chat_message(
        &m,
        Expected {
            sub: "dm",
            room: dm.id,
            seq: r1.seq,
            message_id: &r1.message_id,
            sender_id: alice.id,
            sender: &alice.username,
            body: "hello bob",
        },
    )?;
    let own = alice_c.recv_message("dm").await?;
    check_chat_message(
        &own,
        Expected {
            sub: "dm",
            room: dm.id,
            seq: r1.seq,
            message_id: &r1.message_id,
            sender_id: alice.id,
            sender: &alice.username,
            body: "hello bob",
        },
    )?;

    // Bob -> Alice, with text that would break naive SQL or escaping.
    let tricky = "hi alice \u{1f44b} '; DROP TABLE messages; -- %_\\ \"quoted\" \\c:colon";
    let r2 = bob_c.send_confirmed(&dm_dest, tricky).await?;
    ensure!(
        r2.seq == r1.seq + 1,
        "seqs are consecutive: {} then {}",
        r1.seq,
        r2.seq
    );
    ensure!(r2.message_id != r1.message_id, "message ids are unique");
    let m = alice_c.recv_message("dm").await?;
    check_chat_message(
        &m,
        Expected {
            sub: "dm",
            room: dm.id,
            seq: r2.seq,
            message_id: &r2.message_id,
            sender_id: bob.id,
            sender: &bob.username,
            body: tricky,
        },
    )?;
    bob_c.recv_message("dm").await?;

    // Typing: Alice sees Bob typing.
    bob_c.typing(dm.id).await?;
    let t = alice_c.recv_event("typing", |_| true).await?;
    ensure!(
        header(&t, "user-id") == Some(bob.id.to_string().as_str()),
        "typing {t:?}"
    );
    ensure!(
        header(&t, "username") == Some(bob.username.as_str()),
        "typing {t:?}"
    );
    ensure!(
        header(&t, "room-id") == Some(dm.id.to_string().as_str()),
        "typing {t:?}"
    );
    ensure!(
        header(&t, "subscription") == Some("dm") && t.body.is_empty(),
        "typing {t:?}"
    );

    // Read markers: Alice reads up to r2 from one session; Bob and Alice's other session are told;
    // her unread count drops to 0 and Bob's is untouched.
    let before = eventually(
        "alice's DM summary shows both messages",
        Duration::from_secs(10),
        || async {
            Ok(api
                .room_summary(&alice.token, dm.id)
                .await?
                .filter(|s| s.last_seq == r2.seq))
        },
    )
    .await?;
    ensure!(
        before.unread >= 1 && before.last_read_seq < r2.seq,
        "alice's summary before reading: {before:?}"
    );
    ensure!(
        before.role == "member" || before.role == "owner",
        "role {before:?}"
    );
    ensure!(before.dm_peer == Some(bob.id), "dm_peer {before:?}");
    let bob_before = api
        .room_summary(&bob.token, dm.id)
        .await?
        .context("bob lists the DM")?;
    let mut alice2 = StompClient::connect(&ws, &alice.token).await?;
    // Read markers from a user's other sessions arrive on the room (docs/PROTOCOL.md).
    alice2
        .subscribe(&format!("/rooms/{}", dm.id), "dm", None)
        .await?;
    alice_c.mark_read(dm.id, r2.seq).await?;
    let rd = bob_c
        .recv_event("read", |f| {
            header(f, "user-id") == Some(alice.id.to_string().as_str())
        })
        .await
        .context("bob sees alice's read marker")?;
    ensure!(header_u64(&rd, "seq") == Some(r2.seq), "read event {rd:?}");
    ensure!(
        header(&rd, "room-id") == Some(dm.id.to_string().as_str()),
        "read event {rd:?}"
    );
    let rd2 = alice2
        .recv_event("read", |_| true)
        .await
        .context("alice's other session sees her marker")?;
    ensure!(
        header_u64(&rd2, "seq") == Some(r2.seq),
        "own read event {rd2:?}"
    );
    ensure!(
        header(&rd2, "room-id") == Some(dm.id.to_string().as_str()),
        "own read event {rd2:?}"
    );
    let after = eventually(
        "alice's unread count drops to 0",
        Duration::from_secs(10),
        || async {
            Ok(api
                .room_summary(&alice.token, dm.id)
                .await?
                .filter(|s| s.unread == 0))
        },
    )
    .await?;
    ensure!(
        after.last_read_seq == r2.seq && before.unread > after.unread,
        "before {before:?} after {after:?}"
    );
    let bob_view = api
        .room_summary(&bob.token, dm.id)
        .await?
        .context("bob lists the DM")?;
    ensure!(
        (bob_view.unread, bob_view.last_read_seq) == (bob_before.unread, bob_before.last_read_seq),
        "alice's marker leaves bob's unchanged: before {bob_before:?} after {bob_view:?}"
    );
    let members = api.members(&alice.token, dm.id).await?;
    let mut ids: Vec<i64> = members.iter().map(|m| m.user_id).collect();
    ids.sort_unstable();
    let mut want = vec![alice.id, bob.id];
    want.sort_unstable();
    ensure!(ids == want, "DM members {members:?}");
    let alice_member = members
        .iter()
        .find(|m| m.user_id == alice.id)
        .context("alice is a member")?;
    ensure!(
        alice_member.last_read_seq == r2.seq,
        "members show the read marker: {alice_member:?}"
    );

    // A group room: Bob joins (twice: idempotent); Carol connects with login/passcode like stock
    // clients do, watches her queue and joins.
    let name = unique("group");
    let g = api.create_room(&alice.token, &name).await?;
    ensure!(
        g.kind == "group" && g.name == name && g.created_by == alice.id,
        "room {g:?}"
    );
    ensure!(
        api.room(&alice.token, g.id).await? == g,
        "GET /api/rooms/{{id}} returns the room"
    );
    api.join(&bob.token, g.id).await?;
    api.join(&bob.token, g.id)
        .await
        .context("joining twice is idempotent")?;
    let mut carol_c = StompClient::open(&ws).await?;
    let carol_connect = frame(
        Command::Connect,
        &[
            ("accept-version", "1.2"),
            ("host", "banter"),
            ("login", &carol.username),
            ("passcode", &carol.token),
            ("heart-beat", "0,0"),
        ],
        Bytes::new(),
    );
    carol_c
        .connect_with(carol_connect)
        .await
        .context("CONNECT with passcode")?;
    carol_c.subscribe("/user/queue/events", "ev", None).await?;
    api.join(&carol.token, g.id).await?;
    carol_c
        .recv_event("room.added", |f| {
            serde_json::from_slice::<Value>(&f.body).is_ok_and(|v| v["id"] == g.id)
        })
        .await
        .context("carol is told about the room she joined")?;

    let g_dest = room_dest(g.id);
    for c in [&mut alice_c, &mut bob_c, &mut carol_c] {
        c.subscribe(&g_dest, "g", None).await?;
    }
    let mut sent = Vec::new();
    for (c, who) in [
        (&mut alice_c, &alice),
        (&mut bob_c, &bob),
        (&mut carol_c, &carol),
    ] {
        let body = format!("group hello from {}", who.username);
        let r = c.send_confirmed(&g_dest, &body).await?;
        sent.push((r, who.id, who.username.clone(), body));
    }
    sent.sort_by_key(|(r, ..)| r.seq);
    for c in [&mut alice_c, &mut bob_c, &mut carol_c] {
        for (r, sender_id, sender, body) in &sent {
            let m = c.recv_message("g").await?;
            check_chat_message(
                &m,
                Expected {
                    sub: "g",
                    room: g.id,
                    seq: r.seq,
                    message_id: &r.message_id,
                    sender_id: *sender_id,
                    sender,
                    body,
                },
            )?;
        }
    }

    let members = api.members(&carol.token, g.id).await?;
    ensure!(members.len() == 3, "group members {members:?}");
    for (id, role) in [
        (alice.id, "owner"),
        (bob.id, "member"),
        (carol.id, "member"),
    ] {
        ensure!(
            members.iter().any(|m| m.user_id == id && m.role == role),
            "member {id} with role {role} in {members:?}"
        );
    }
    ensure!(
        members
            .iter()
            .any(|m| m.user_id == carol.id && m.username == carol.username),
        "members carry usernames: {members:?}"
    );

    // Alice's rooms: newest activity first, so the group before the DM.
    let rooms = api.rooms(&alice.token).await?;
    let pos = |id| rooms.iter().position(|r| r.room.id == id);
    ensure!(
        matches!((pos(g.id), pos(dm.id)), (Some(a), Some(b)) if a < b),
        "GET /api/rooms lists the group before the DM: {rooms:?}"
    );

    // Carol leaves: she is no longer a member anywhere it shows.
    api.leave(&carol.token, g.id).await?;
    let members = api.members(&alice.token, g.id).await?;
    ensure!(
        members.len() == 2 && members.iter().all(|m| m.user_id != carol.id),
        "members after leave {members:?}"
    );
    api.history_raw(&carol.token, g.id, None, None)
        .await?
        .assert_error(403, "forbidden");
    api.get(&format!("/api/rooms/{}/members", g.id), Some(&carol.token))
        .await?
        .assert_error(403, "forbidden");
    ensure!(
        api.room_summary(&carol.token, g.id).await?.is_none(),
        "carol no longer lists the room"
    );
    let after_leave = alice_c.send_confirmed(&g_dest, "after carol left").await?;
    let m = bob_c.recv_message("g").await?;
    ensure!(
        header_u64(&m, "seq") == Some(after_leave.seq),
        "bob still gets the group: {m:?}"
    );
    carol_c
        .send(&g_dest, "let me back in", Some("carol-late"))
        .await?;
    let err = carol_c.expect_error_frame().await?;
    banter_tests::stomp::assert_error_message(
        header(&err, "message").unwrap_or(""),
        &format!("not a member of room {}", g.id),
    );

    // History shows the DM, newest first, exactly as delivered.
    let page = api.history(&bob.token, dm.id, None, None).await?;
    ensure!(
        page.next_before.is_none(),
        "a 2-message history is one page: {page:?}"
    );
    let got: Vec<(u64, &str, i64, &str)> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.message_id.as_str(), m.sender_id, m.body.as_str()))
        .collect();
    let want = vec![
        (r2.seq, r2.message_id.as_str(), bob.id, tricky),
        (r1.seq, r1.message_id.as_str(), alice.id, "hello bob"),
    ];
    ensure!(got == want, "DM history {got:?}, expected {want:?}");
    ensure!(
        page.messages
            .iter()
            .all(|m| m.room_id == dm.id && m.created_at_ms > 0),
        "history {page:?}"
    );
    Ok(())
}
