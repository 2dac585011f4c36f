//! Bad STOMP input: each case gets an ERROR frame with the exact `message`, then the server closes
//! that connection, and a bystander connection (a [`Witness`]) is still served.
//!
//! Expected `message` headers (`docs/PROTOCOL.md` names the causes, not the texts; these are the
//! texts of the codec's errors, of `RoomError` and of the body rules where those exist). A message may
//! add a detail after the text, starting with a space, `:`, `,` or `(`.
//!
//! | cause | message |
//! |---|---|
//! | header line without a colon | `invalid header (missing colon)` |
//! | unknown command `FOO` | `unknown command 'FOO'` |
//! | any frame before CONNECT | `expected CONNECT` |
//! | CONNECT without a token | `missing token` |
//! | SEND / SUBSCRIBE without `destination` | `missing header 'destination'` |
//! | SUBSCRIBE without `id` | `missing header 'id'` |
//! | garbage, `alg: none`, foreign-key, tampered or refresh token | `invalid token` |
//! | expired token | `token expired` |
//! | SUBSCRIBE / SEND to a room one is not a member of | `not a member of room <id>` |
//! | unknown destination | `unknown destination` |
//! | body over `limits.max_body_bytes` (4096) | `body larger than 4096 bytes` |
//! | frame over `limits.max_frame_bytes` (16384) | `frame larger than 16384 bytes` |
//! | body not UTF-8 | `message body must be valid UTF-8 text` |
//! | empty body | `message body must not be empty` |
//! | `nonce` header over 64 bytes (or empty) | `header 'nonce' must be 1 to 64 bytes` |
//! | over the send rate | `rate limit exceeded` |

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::{Command, Frame};
use banter_tests::stomp::{assert_error_message, encode, frame, header, room_dest};
use banter_tests::{Node, NodeBuilder, StompClient, Witness, shared_node, tokens};
use bytes::Bytes;

/// Waits for the ERROR frame, checks its message, that the connection closes, and that the
/// witness is still served; returns the ERROR frame.
async fn refused(client: &mut StompClient, expected: &str, witness: &mut Witness) -> Result<Frame> {
    let f = client.expect_error_frame().await?;
    let message = header(&f, "message").context("ERROR frame without a message header")?;
    assert_error_message(message, expected);
    client
        .expect_closed()
        .await
        .context("the server closes the connection after ERROR")?;
    witness.assert_served().await?;
    Ok(f)
}

/// Runs `case` against the shared node with a fresh witness.
async fn on_shared<F>(case: F)
where
    F: AsyncFnOnce(&Node, &mut Witness) -> Result<()>,
{
    let node = shared_node().await.expect("shared node");
    let r = async {
        let mut w = Witness::new(node).await?;
        case(node, &mut w).await
    }
    .await;
    node.check(r);
}

async fn connected(node: &Node) -> Result<(banter_tests::TestUser, StompClient)> {
    let user = node.api().new_user("mallory").await?;
    let c = StompClient::connect(&node.ws_url(), &user.token).await?;
    Ok((user, c))
}

#[tokio::test]
async fn malformed_frame_is_refused() {
    on_shared(async |node, w| {
        let (_, mut c) = connected(node).await?;
        c.send_raw(b"SEND\ndestination/rooms/1\n\nhello\0").await?;
        refused(&mut c, "invalid header (missing colon)", w).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn unknown_command_is_refused() {
    on_shared(async |node, w| {
        let (_, mut c) = connected(node).await?;
        c.send_raw(b"FOO\nx:y\n\n\0").await?;
        refused(&mut c, "unknown command 'FOO'", w).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn frame_before_connect_is_refused() {
    on_shared(async |node, w| {
        let user = node.api().new_user("early").await?;
        let mut c = StompClient::open(&node.ws_url()).await?;
        let dest = room_dest(w.room);
        c.send_frame(&frame(
            Command::Subscribe,
            &[("destination", &dest), ("id", "0")],
            Bytes::new(),
        ))
        .await?;
        refused(&mut c, "expected CONNECT", w).await?;
        // Sending the token later does not help a connection that is already refused; a new one works.
        StompClient::connect(&node.ws_url(), &user.token).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn connect_without_token_is_refused() {
    on_shared(async |node, w| {
        let mut c = StompClient::open(&node.ws_url()).await?;
        c.send_frame(&frame(
            Command::Connect,
            &[("accept-version", "1.2"), ("host", "banter")],
            Bytes::new(),
        ))
        .await?;
        refused(&mut c, "missing token", w).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn missing_destination_is_refused() {
    on_shared(async |node, w| {
        let (_, mut c) = connected(node).await?;
        c.send_frame(&frame(
            Command::Send,
            &[("receipt", "no-dest")],
            Bytes::from_static(b"hi"),
        ))
        .await?;
        let f = refused(&mut c, "missing header 'destination'", w).await?;
        ensure!(
            header(&f, "receipt-id") == Some("no-dest"),
            "ERROR names the frame's receipt: {f:?}"
        );

        let (_, mut c) = connected(node).await?;
        c.send_frame(&frame(Command::Subscribe, &[("id", "1")], Bytes::new()))
            .await?;
        refused(&mut c, "missing header 'destination'", w).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn subscribe_without_id_is_refused() {
    on_shared(async |node, w| {
        let (user, mut c) = connected(node).await?;
        let own = node
            .api()
            .create_room(&user.token, &banter_tests::unique("own"))
            .await?
            .id;
        let dest = room_dest(own);
        c.send_frame(&frame(
            Command::Subscribe,
            &[("destination", &dest)],
            Bytes::new(),
        ))
        .await?;
        refused(&mut c, "missing header 'id'", w).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    on_shared(async |node, w| {
        let api = node.api();
        let user = api.new_user("forger").await?;
        let cases = [
            ("garbage", "not-a-jwt".to_owned()),
            (
                "three garbage segments",
                "eyJhbGciOiJFZERTQSJ9.e30.AAAA".to_owned(),
            ),
            ("alg none", tokens::alg_none(&user.token)?),
            ("foreign Ed25519 key", tokens::foreign_key(&user.token)?),
            (
                "tampered signature",
                tokens::tampered_signature(&user.token),
            ),
            ("refresh token as access token", user.refresh_token.clone()),
        ];
        for (what, token) in &cases {
            let mut c = StompClient::open(&node.ws_url()).await?;
            let bearer = format!("Bearer {token}");
            c.send_frame(&frame(
                Command::Connect,
                &[
                    ("accept-version", "1.2"),
                    ("host", "banter"),
                    ("authorization", &bearer),
                ],
                Bytes::new(),
            ))
            .await?;
            refused(&mut c, "invalid token", w)
                .await
                .with_context(|| format!("STOMP with {what}"))?;
            api.get("/api/users/me", Some(token))
                .await?
                .assert_error(401, "invalid_token");
        }
        // The same through `passcode`, as stock clients send it.
        let mut c = StompClient::open(&node.ws_url()).await?;
        let none = tokens::alg_none(&user.token)?;
        c.send_frame(&frame(
            Command::Stomp,
            &[
                ("accept-version", "1.2"),
                ("host", "banter"),
                ("login", &user.username),
                ("passcode", &none),
            ],
            Bytes::new(),
        ))
        .await?;
        refused(&mut c, "invalid token", w)
            .await
            .context("alg none through passcode")?;
        // The genuine token still works.
        StompClient::connect(&node.ws_url(), &user.token).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let node = NodeBuilder::new("ttl1")
        .env("BANTER_AUTH__ACCESS_TTL_SECS", 3)
        .start()
        .await
        .expect("node");
    let r = async {
        let api = node.api();
        let user = api.new_user("late").await?;
        // Waiting for time to pass is the point here, not synchronisation.
        tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
        // A session lives only as long as its token (`hostile.rs`): the witness connects now.
        let mut w = Witness::new(&node).await?;
        api.get("/api/users/me", Some(&user.token))
            .await?
            .assert_error(401, "token_expired");
        let mut c = StompClient::open(&node.ws_url()).await?;
        let bearer = format!("Bearer {}", user.token);
        c.send_frame(&frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "banter"),
                ("authorization", &bearer),
            ],
            Bytes::new(),
        ))
        .await?;
        refused(&mut c, "token expired", &mut w).await?;
        // A refresh gives a working token again.
        let s = api.refresh(&user.refresh_token).await?;
        ensure!(
            api.me(&s.access_token).await?.id == user.id,
            "refreshed token works"
        );
        Ok(())
    }
    .await;
    node.check(r);
}

#[tokio::test]
async fn non_member_cannot_subscribe_or_send() {
    on_shared(async |node, w| {
        let api = node.api();
        let owner = api.new_user("owner").await?;
        let room = api
            .create_room(&owner.token, &banter_tests::unique("private"))
            .await?
            .id;
        let dest = room_dest(room);
        let mut owner_c = StompClient::connect(&node.ws_url(), &owner.token).await?;
        owner_c.subscribe(&dest, "o", None).await?;
        let expected = format!("not a member of room {room}");

        let (_, mut c) = connected(node).await?;
        c.subscribe_nowait(&dest, "x", None, Some("sub-x")).await?;
        refused(&mut c, &expected, w).await.context("SUBSCRIBE")?;

        let (_, mut c) = connected(node).await?;
        c.send(&dest, "intruder", Some("send-x")).await?;
        let f = refused(&mut c, &expected, w).await.context("SEND")?;
        ensure!(
            header(&f, "receipt-id") == Some("send-x"),
            "ERROR names the SEND's receipt: {f:?}"
        );

        // The intruder's message was not posted: the owner's next message is the first one.
        let r = owner_c.send_confirmed(&dest, "only me").await?;
        ensure!(
            r.seq == 1,
            "the room's first message has seq 1, got {}",
            r.seq
        );
        let m = owner_c.recv_message("o").await?;
        ensure!(
            m.body.as_ref() == b"only me",
            "owner sees only their message: {m:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn unknown_destination_is_refused() {
    on_shared(async |node, w| {
        let (_, mut c) = connected(node).await?;
        c.subscribe_nowait("/topic/news", "t", None, None).await?;
        refused(&mut c, "unknown destination", w)
            .await
            .context("SUBSCRIBE")?;

        let (_, mut c) = connected(node).await?;
        c.send("/queue/nowhere", "hello", None).await?;
        refused(&mut c, "unknown destination", w)
            .await
            .context("SEND")?;

        let (_, mut c) = connected(node).await?;
        c.send("/rooms/not-a-number", "hello", None).await?;
        refused(&mut c, "unknown destination", w)
            .await
            .context("SEND to /rooms/not-a-number")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn oversize_body_is_refused() {
    on_shared(async |node, w| {
        let (user, mut c) = connected(node).await?;
        let room = node
            .api()
            .create_room(&user.token, &banter_tests::unique("big"))
            .await?
            .id;
        let dest = room_dest(room);
        // Exactly the limit is fine.
        c.send_confirmed(&dest, &"a".repeat(4096))
            .await
            .context("a 4096-byte body is accepted")?;
        c.send(&dest, &"a".repeat(4097), Some("too-big")).await?;
        refused(&mut c, "body larger than 4096 bytes", w).await?;

        // Without content-length too (the body runs to the NUL).
        let (_, mut c) = connected(node).await?;
        let mut raw = format!("SEND\ndestination:{dest}\n\n").into_bytes();
        raw.extend(std::iter::repeat_n(b'b', 5000));
        raw.push(0);
        c.send_raw(&raw).await?;
        refused(&mut c, "body larger than 4096 bytes", w)
            .await
            .context("without content-length")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn oversize_frame_is_refused() {
    on_shared(async |node, w| {
        let (user, mut c) = connected(node).await?;
        let room = node
            .api()
            .create_room(&user.token, &banter_tests::unique("frame"))
            .await?
            .id;
        let dest = room_dest(room);
        // Six headers of 3000 bytes: each header line is within its own limit, the frame is not.
        let pad = "p".repeat(3000);
        let names: Vec<String> = (0..6).map(|i| format!("x-pad-{i}")).collect();
        let mut headers = vec![("destination", dest.as_str())];
        headers.extend(names.iter().map(|n| (n.as_str(), pad.as_str())));
        let f = frame(Command::Send, &headers, Bytes::from_static(b"hi"));
        ensure!(encode(&f).len() > 16384, "the test frame is over the limit");
        c.send_frame(&f).await?;
        refused(&mut c, "frame larger than 16384 bytes", w).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_nonce_over_64_bytes_is_refused_and_one_of_64_is_idempotent() {
    on_shared(async |node, w| {
        let (user, mut c) = connected(node).await?;
        let room = node
            .api()
            .create_room(&user.token, &banter_tests::unique("nonce"))
            .await?
            .id;
        let dest = room_dest(room);
        let send = |receipt: &'static str, nonce: &str| {
            frame(
                Command::Send,
                &[
                    ("destination", &dest),
                    ("receipt", receipt),
                    ("nonce", nonce),
                ],
                Bytes::from_static(b"hi"),
            )
        };
        let longest = "n".repeat(64);
        c.send_frame(&send("first", &longest)).await?;
        let first = banter_tests::stomp::parse_receipt(&c.recv_receipt("first").await?)?;
        c.send_frame(&send("again", &longest)).await?;
        let again = banter_tests::stomp::parse_receipt(&c.recv_receipt("again").await?)?;
        ensure!(
            (again.seq, &again.message_id) == (first.seq, &first.message_id),
            "a resend with the same nonce is answered with the first RECEIPT: {first:?} {again:?}"
        );
        c.send_frame(&send("long", &"n".repeat(65))).await?;
        let f = refused(&mut c, "header 'nonce' must be 1 to 64 bytes", w).await?;
        ensure!(
            header(&f, "receipt-id") == Some("long"),
            "ERROR names the receipt: {f:?}"
        );
        let page = node.api().history(&user.token, room, None, None).await?;
        ensure!(page.messages.len() == 1, "one message stored: {page:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_and_empty_bodies_are_refused() {
    on_shared(async |node, w| {
        let (user, mut c) = connected(node).await?;
        let room = node
            .api()
            .create_room(&user.token, &banter_tests::unique("utf8"))
            .await?
            .id;
        let dest = room_dest(room);
        let mut raw = format!("SEND\ndestination:{dest}\nreceipt:bad-utf8\n\n").into_bytes();
        raw.extend_from_slice(b"caf\xc3\x28 \xff\xfe");
        raw.push(0);
        c.send_binary(&raw).await?;
        let f = refused(&mut c, "message body must be valid UTF-8 text", w).await?;
        ensure!(
            header(&f, "receipt-id") == Some("bad-utf8"),
            "ERROR names the receipt: {f:?}"
        );

        // A SEND under a trace of the client's: its ERROR names the trace, for the user to quote.
        let mut c = StompClient::connect(&node.ws_url(), &user.token).await?;
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        c.send_frame(&frame(
            Command::Send,
            &[
                ("destination", &dest),
                ("receipt", "empty"),
                ("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01")),
            ],
            Bytes::new(),
        ))
        .await?;
        let f = refused(&mut c, "message body must not be empty", w).await?;
        ensure!(
            header(&f, "trace-id") == Some(trace),
            "ERROR names the trace: {f:?}"
        );
        ensure!(
            header(&f, "receipt-id") == Some("empty"),
            "and the receipt: {f:?}"
        );
        // Nothing was stored.
        let page = node.api().history(&user.token, room, None, None).await?;
        ensure!(
            page.messages.is_empty(),
            "refused bodies are not stored: {page:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn sending_too_fast_is_refused() {
    let node = NodeBuilder::new("ratelimit")
        .env("BANTER_LIMITS__SEND_PER_SECOND", 1)
        .env("BANTER_LIMITS__SEND_BURST", 3)
        .start()
        .await
        .expect("node");
    let r = async {
        let mut w = Witness::new(&node).await?;
        let (user, mut c) = connected(&node).await?;
        let room = node
            .api()
            .create_room(&user.token, &banter_tests::unique("fast"))
            .await?
            .id;
        let dest = room_dest(room);
        for i in 0..20 {
            c.send(&dest, &format!("spam {i}"), Some(&format!("s{i}")))
                .await?;
        }
        refused(&mut c, "rate limit exceeded", &mut w).await?;
        Ok(())
    }
    .await;
    node.check(r);
}
