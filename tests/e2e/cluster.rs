//! The cluster (issue #18) with real processes: `banter` nodes on 127.0.0.1 sharing one MariaDB
//! database and one tansu broker.
//!
//! - three nodes link up, split the shards, and see a killed (`kill -9`) member go: the survivors
//!   hold every shard again; the killed node restarts as a new incarnation and gets a share back;
//!   a node stopped with SIGTERM hands its shards over at once;
//! - users connected to different nodes chat in group rooms and a DM: RECEIPTs, live messages in
//!   one order for everyone, typing and read markers, the DM announced on the user's own queue,
//!   and the same history and room list from every node;
//! - presence counts every session of a user on every node: online while one is open anywhere,
//!   offline with a last-seen time once the last closes or its node is killed, the same from every
//!   node;
//! - a node configured for a cluster on SQLite or the in-process journal refuses to start;
//! - garbage, impossible lengths, truncated frames and silence on the cluster port of a real node
//!   are closed and counted, and the node goes on serving its clients;
//! - [`failover`]: `kill -9` and SIGTERM of a node under sustained sends from clients on all nodes,
//!   in rounds, each node coming back (a join under load); watchers on every node resume gaplessly;
//! - [`traced`]: one message's trace across three members, from the frame to the row and the
//!   fan-out, each hop a span on its own node;
//! - [`uploads`]: a user's actor on its shard's owner serves grants and attachments asked on
//!   every node (one rate for the user), with S3 and the Kafka journal;
//! - [`browser`]: the web app in Chromium, one person on each of two members, chatting in a DM.

mod browser;
mod failover;
mod feeds;
mod traced;
mod uploads;

use std::time::Duration;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use banter_tests::kafka::Broker;
use banter_tests::node::free_port;
use banter_tests::stomp::{header, header_u64, room_dest};
use banter_tests::{Node, NodeBuilder, StompClient, eventually, unique};

use crate::e2e::durable::support::{check, kafka_node, prerequisites};

/// Shards of the test clusters (fewer than the default: quicker rounds, same code).
const SHARDS: u32 = 64;
const COOKIE: &str = "e2e-cluster-cookie-0123456789";

/// A cluster member on `broker` with short leases and heartbeats.
pub(super) fn member(name: &str, broker: &Broker) -> Result<NodeBuilder> {
    Ok(kafka_node(name, broker)
        .env("BANTER_CLUSTER__ENABLED", "true")
        .env(
            "BANTER_CLUSTER__LISTEN",
            format!("127.0.0.1:{}", free_port()?),
        )
        .env("BANTER_CLUSTER__COOKIE", COOKIE)
        .env("BANTER_CLUSTER__SHARDS", SHARDS)
        .env("BANTER_CLUSTER__LEASE_TTL_MS", 3000)
        .env("BANTER_CLUSTER__LEASE_MARGIN_MS", 600)
        .env("BANTER_CLUSTER__HEARTBEAT_MS", 300)
        // How long an expired lease waits before another node takes it.
        .env("BANTER_JOURNAL__KAFKA__MESSAGE_TIMEOUT_MS", 2000))
}

async fn gauge(node: &Node, name: &str, labels: &str) -> Result<f64> {
    Ok(node.metric_matching(name, labels).await?.unwrap_or(0.0))
}

/// Waits until each of `nodes` links to all the others and together they hold every shard, each
/// some.
pub(super) async fn settled(nodes: &[&Node], within: Duration) -> Result<()> {
    let n = nodes.len() as f64;
    eventually(
        "the members link up and split the shards",
        within,
        || async {
            let mut total = 0.0;
            let mut seen = Vec::new();
            for node in nodes {
                let up = gauge(node, "banter_cluster_members", "state=\"up\"").await?;
                let owned = gauge(node, "banter_cluster_shards_owned", "").await?;
                seen.push((up, owned));
                if up != n || owned == 0.0 {
                    return Ok(None);
                }
                total += owned;
            }
            ensure!(total <= f64::from(SHARDS), "shards held twice: {seen:?}");
            Ok((total == f64::from(SHARDS)).then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn members_split_the_shards_and_survivors_take_over_from_a_killed_or_stopped_one() {
    let Some((mysql, broker)) = prerequisites("cluster membership").await else {
        return;
    };
    let a = check(member("a", &broker).map(|b| b.mysql(&mysql)))
        .start()
        .await;
    let a = check(a);
    let b = check(
        check(member("b", &broker))
            .same_database_as(&a)
            .start()
            .await,
    );
    let mut c = check(
        check(member("c", &broker))
            .same_database_as(&a)
            .start()
            .await,
    );
    c.check(settled(&[&a, &b, &c], Duration::from_secs(30)).await);

    // A frozen member (SIGSTOP) is dropped by the others' heartbeats; its shards are taken once
    // its leases expire; thawed, it finds them lost (its renewal fails) and links up again.
    c.check(c.freeze());
    a.check(settled(&[&a, &b], Duration::from_secs(30)).await);
    c.check(c.thaw());
    let lost = "kind=\"lost\"";
    c.check(
        eventually(
            "the thawed node finds its leases lost",
            Duration::from_secs(15),
            || async {
                Ok((gauge(&c, "banter_cluster_rebalances_total", lost).await? > 0.0).then_some(()))
            },
        )
        .await,
    );
    c.check(settled(&[&a, &b, &c], Duration::from_secs(30)).await);

    c.kill9();
    a.check(settled(&[&a, &b], Duration::from_secs(30)).await);
    let taken = a.check(
        a.metric_matching("banter_cluster_rebalances_total", "kind=\"taken\"")
            .await,
    );
    ensure_positive(&a, taken);

    // The killed node comes back as a new incarnation and gets a share handed over.
    let restarted = c.restart().await;
    c.check(restarted);
    c.check(settled(&[&a, &b, &c], Duration::from_secs(30)).await);
    let released = a.check(
        a.metric_matching("banter_cluster_rebalances_total", "kind=\"released\"")
            .await,
    );
    ensure_positive(&a, released);

    // SIGTERM: the node hands its leases back; the others take them without waiting for expiry.
    let mut b = b;
    let status = b.terminate(Duration::from_secs(30)).await;
    let status = b.check(status);
    assert!(status.success(), "SIGTERM exit: {status}");
    a.check(settled(&[&a, &c], Duration::from_secs(15)).await);
}

fn ensure_positive(node: &Node, value: Option<f64>) {
    node.check((|| {
        ensure!(
            value.unwrap_or(0.0) > 0.0,
            "expected a positive count, got {value:?}"
        );
        Ok(())
    })());
}

#[tokio::test]
async fn a_cluster_node_refuses_the_embedded_adapters() {
    let sqlite = NodeBuilder::new("cluster-sqlite")
        .env("BANTER_CLUSTER__ENABLED", "true")
        .env("BANTER_CLUSTER__COOKIE", COOKIE)
        .start()
        .await;
    let err = format!(
        "{:#}",
        sqlite.expect_err("a cluster on SQLite must not start")
    );
    assert!(
        err.contains("cluster.enabled needs the shared MySQL store"),
        "{err}"
    );
}

/// Starts three members on one fresh database and waits until they have split the shards.
pub(super) async fn three(broker: &Broker, mysql: &str) -> (Node, Node, Node) {
    three_with(broker, mysql, |_, b| b).await
}

/// [`three`], each member's settings adjusted by `tune` (given the member's name).
pub(super) async fn three_with(
    broker: &Broker,
    mysql: &str,
    tune: impl Fn(&str, NodeBuilder) -> NodeBuilder,
) -> (Node, Node, Node) {
    let a = check(
        tune("a", check(member("a", broker)))
            .mysql(mysql)
            .start()
            .await,
    );
    let b = check(
        tune("b", check(member("b", broker)))
            .same_database_as(&a)
            .start()
            .await,
    );
    let c = check(
        tune("c", check(member("c", broker)))
            .same_database_as(&a)
            .start()
            .await,
    );
    a.check(settled(&[&a, &b, &c], Duration::from_secs(30)).await);
    (a, b, c)
}

/// Writes a test authority's certificate and one node certificate for 127.0.0.1 (shared by the
/// test's nodes) into `dir`; returns the `[cluster.tls]` settings as environment variables.
fn cluster_tls(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "e2e cluster");
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .expect("signed");
    let mut env = Vec::new();
    for (var, file, text) in [
        ("BANTER_CLUSTER__TLS__CERT_FILE", "node.crt", cert.pem()),
        (
            "BANTER_CLUSTER__TLS__KEY_FILE",
            "node.key",
            key.serialize_pem(),
        ),
        ("BANTER_CLUSTER__TLS__CA_FILE", "ca.crt", ca_pem),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, text).expect("write");
        env.push((var, path.display().to_string()));
    }
    env
}

/// The cluster's links run over mutual TLS here (the other tests' run over plain TCP).
#[tokio::test]
async fn users_on_different_nodes_chat_in_group_rooms_and_a_dm() {
    let Some((mysql, broker)) = prerequisites("cluster chat").await else {
        return;
    };
    let certs = tempfile::tempdir().expect("tempdir");
    let tls = cluster_tls(certs.path());
    let a_port = free_port().expect("a free port");
    let (a, b, c) = three_with(&broker, &mysql, |name, mut node| {
        for (var, value) in &tls {
            node = node.env(var, value);
        }
        if name == "a" {
            node = node.env("BANTER_CLUSTER__LISTEN", format!("127.0.0.1:{a_port}"));
        }
        node
    })
    .await;
    // Plain bytes on a member's cluster port fail its TLS handshake, counted as such.
    a.check(plain_bytes_fail_tls(&a, a_port).await);
    a.check(chat_across(&[&a, &b, &c]).await);
    // The messages did cross: commands to rooms of other nodes, one fan-out per node and event.
    for kind in ["to_room", "fan_out", "to_session", "room_reply"] {
        let mut total = 0.0;
        for node in [&a, &b, &c] {
            let label = format!("kind=\"{kind}\"");
            total += a.check(gauge(node, "banter_cluster_routed_in_total", &label).await);
        }
        assert!(total > 0.0, "no {kind} envelope crossed");
    }
    // Every fan-out of a chat message that crossed timed its hop.
    let mut hops = 0.0;
    for node in [&a, &b, &c] {
        hops += a.check(gauge(node, "banter_cluster_fan_out_hop_seconds_count", "").await);
    }
    assert!(hops > 0.0, "no fan-out hop was timed");
}

/// Sends plain bytes to the TLS cluster port of `node` at `port`: the connection is closed and the
/// failed TLS handshake counted.
async fn plain_bytes_fail_tls(node: &Node, port: u16) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut conn = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await?;
    conn.write_all(b"\x00\x00\x00\x10not a TLS hello.").await?;
    ensure!(
        closed(&mut conn).await,
        "plain bytes: the connection stayed open"
    );
    eventually(
        "the failed TLS handshake is counted",
        Duration::from_secs(10),
        || async {
            let failed = gauge(node, "banter_cluster_port_refused_total", "reason=\"tls\"").await?;
            Ok((failed >= 1.0).then_some(()))
        },
    )
    .await
}

/// Three users, each connected to another node, in four rooms (spread over the nodes' shards).
async fn chat_across(nodes: &[&Node; 3]) -> Result<()> {
    let api = nodes[0].api();
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        users.push(api.new_user(&unique(name)).await?);
    }
    let mut rooms = Vec::new();
    for i in 0..4 {
        let room = api
            .create_room(&users[0].token, &unique(&format!("x{i}")))
            .await?;
        // Each joins through their own node: the room (wherever it lives) learns of them.
        for (user, node) in users.iter().zip(nodes.iter()).skip(1) {
            node.api().join(&user.token, room.id).await?;
        }
        rooms.push(room.id);
    }
    let mut clients = Vec::new();
    for (user, node) in users.iter().zip(nodes.iter()) {
        let mut client = StompClient::connect(&node.ws_url(), &user.token).await?;
        for room in &rooms {
            client
                .subscribe(&room_dest(*room), &format!("s{room}"), None)
                .await?;
        }
        clients.push(client);
    }
    // Every user sends to every room; each gets its RECEIPT from wherever the room lives.
    let mut sent = BTreeMap::new();
    for (i, client) in clients.iter_mut().enumerate() {
        for room in &rooms {
            let body = format!("from {} to {room}", users[i].username);
            let receipt = client.send_confirmed(&room_dest(*room), &body).await?;
            sent.insert((*room, receipt.seq), body);
        }
    }
    // Everyone sees every room's messages live, in the same seq order, each once.
    for client in clients.iter_mut() {
        for room in &rooms {
            let sub = format!("s{room}");
            let mut seen = Vec::new();
            for _ in 0..3 {
                let f = client.recv_message(&sub).await?;
                let seq = header_u64(&f, "seq").context("seq")?;
                ensure!(
                    sent.get(&(*room, seq)).map(String::as_bytes) == Some(&f.body[..]),
                    "room {room} seq {seq}: unexpected body"
                );
                seen.push(seq);
            }
            ensure!(seen == [1, 2, 3], "room {room}: seqs {seen:?}");
        }
    }
    // Typing crosses nodes too: bob types, alice and carol see it.
    clients[1].typing(rooms[0]).await?;
    for i in [0, 2] {
        let t = clients[i].recv_event("typing", |_| true).await?;
        ensure!(
            header(&t, "user-id") == Some(users[1].id.to_string().as_str()),
            "{t:?}"
        );
    }
    // Read markers cross nodes: carol reads up to 2, alice and bob see it.
    clients[2].mark_read(rooms[1], 2).await?;
    for i in [0, 1] {
        let r = clients[i].recv_event("read", |_| true).await?;
        ensure!(header_u64(&r, "seq") == Some(2), "{r:?}");
    }
    // The same history and room list from every node.
    for node in nodes {
        for room in &rooms {
            let page = node
                .api()
                .history(&users[2].token, *room, None, None)
                .await?;
            let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
            ensure!(
                seqs == [3, 2, 1],
                "history of room {room} on a node: {seqs:?}"
            );
        }
        let listed = node.api().rooms(&users[1].token).await?;
        let mut listed: Vec<i64> = listed.iter().map(|r| r.room.id).collect();
        listed.sort_unstable();
        ensure!(
            listed == rooms,
            "bob's rooms on a node: {listed:?}, expected {rooms:?}"
        );
    }
    dm_across(nodes, &users[0], &users[1], &mut clients).await
}

/// Alice (on the first node) opens a DM with bob (on the second): bob's session hears of the new
/// room on his own queue, and they chat both ways.
async fn dm_across(
    nodes: &[&Node; 3],
    alice: &banter_tests::api::TestUser,
    bob: &banter_tests::api::TestUser,
    clients: &mut [StompClient],
) -> Result<()> {
    clients[1]
        .subscribe("/user/queue/events", "events", None)
        .await?;
    let (_, dm) = nodes[0].api().dm(&alice.token, bob.id).await?;
    let dm_id = dm.id.to_string();
    clients[1]
        .recv_event("room.added", |f| {
            String::from_utf8_lossy(&f.body).contains(&dm_id)
        })
        .await
        .context("bob hears of the DM on another node")?;
    for client in clients.iter_mut().take(2) {
        client.subscribe(&room_dest(dm.id), "dm", None).await?;
    }
    let r1 = clients[0]
        .send_confirmed(&room_dest(dm.id), "hi bob")
        .await?;
    let r2 = clients[1]
        .send_confirmed(&room_dest(dm.id), "hi alice")
        .await?;
    ensure!((r1.seq, r2.seq) == (1, 2), "DM seqs {} {}", r1.seq, r2.seq);
    for client in clients.iter_mut().take(2) {
        for (seq, body) in [(1, "hi bob"), (2, "hi alice")] {
            let f = client.recv_message("dm").await?;
            ensure!(
                header_u64(&f, "seq") == Some(seq) && &f.body[..] == body.as_bytes(),
                "{f:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn presence_counts_every_session_on_every_node() {
    let Some((mysql, broker)) = prerequisites("cluster presence").await else {
        return;
    };
    let (a, b, mut c) = three(&broker, &mysql).await;
    let result = presence_across(&a, &b, &mut c).await;
    a.check(result);
}

/// The presence of each of `users` in `room` as `node` answers it.
async fn presence_on(
    node: &Node,
    token: &str,
    room: i64,
) -> Result<BTreeMap<i64, (bool, Option<i64>)>> {
    let members = node.api().members(token, room).await?;
    Ok(members
        .into_iter()
        .map(|m| (m.user_id, (m.online, m.last_seen_ms)))
        .collect())
}

/// Waits until every node in `nodes` shows `user` online (or offline with a last-seen time).
async fn shown(nodes: &[&Node], token: &str, room: i64, user: i64, online: bool) -> Result<()> {
    for (i, node) in nodes.iter().enumerate() {
        eventually(
            &format!("user {user} online={online} on node #{i}"),
            Duration::from_secs(15),
            || async {
                let seen = presence_on(node, token, room).await?;
                Ok(seen
                    .get(&user)
                    .filter(|(on, last)| *on == online && last.is_some() != online)
                    .map(|_| ()))
            },
        )
        .await?;
    }
    Ok(())
}

async fn presence_across(a: &Node, b: &Node, c: &mut Node) -> Result<()> {
    let api = a.api();
    let (alice, bob, carol) = (
        api.new_user(&unique("alice")).await?,
        api.new_user(&unique("bob")).await?,
        api.new_user(&unique("carol")).await?,
    );
    let room = api.create_room(&alice.token, &unique("presence")).await?.id;
    b.api().join(&bob.token, room).await?;
    c.api().join(&carol.token, room).await?;
    let all = [a, b, &*c];
    // Nobody is connected: offline, never seen.
    let seen = presence_on(b, &bob.token, room).await?;
    ensure!(
        seen.values().all(|p| *p == (false, None)),
        "before anyone connects: {seen:?}"
    );
    // Bob (on b) listens on his own queue; alice on two nodes, carol on hers: all online, as every
    // node sees it, and bob hears it live.
    let mut bob_client = StompClient::connect(&b.ws_url(), &bob.token).await?;
    bob_client
        .subscribe("/user/queue/events", "events", None)
        .await?;
    let alice_a = StompClient::connect(&a.ws_url(), &alice.token).await?;
    let alice_b = StompClient::connect(&b.ws_url(), &alice.token).await?;
    let _carol = StompClient::connect(&c.ws_url(), &carol.token).await?;
    for user in [&alice, &bob, &carol] {
        shown(&all, &bob.token, room, user.id, true).await?;
    }
    hears(&mut bob_client, &[(alice.id, true), (carol.id, true)]).await?;
    // Her session on a closes: she is still online through b.
    alice_a.disconnect().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, node) in all.iter().enumerate() {
        let seen = presence_on(node, &bob.token, room).await?;
        ensure!(
            seen.get(&alice.id) == Some(&(true, None)),
            "alice with a session on b, on node #{i}: {seen:?}"
        );
    }
    // Her last one closes: offline everywhere, with a last-seen time.
    alice_b.disconnect().await?;
    shown(&all, &bob.token, room, alice.id, false).await?;
    hears(&mut bob_client, &[(alice.id, false)]).await?;
    // Carol's node dies: the survivors see her go with it, and bob hears it.
    c.kill9();
    shown(&[a, b], &bob.token, room, carol.id, false).await?;
    shown(&[a, b], &bob.token, room, bob.id, true).await?;
    hears(&mut bob_client, &[(carol.id, false)]).await?;
    // Carol's node comes back as a new incarnation that never saw alice: alice's last-seen time is
    // the one the store kept.
    let before = presence_on(a, &bob.token, room).await?[&alice.id].1;
    c.restart().await?;
    let after = presence_on(c, &bob.token, room).await?[&alice.id];
    ensure!(
        !after.0 && after.1.is_some() && after.1 <= before,
        "alice on the restarted node: {after:?}, seen by a: {before:?}"
    );
    Ok(())
}

/// Waits for `presence` events on `client`'s own queue that show each `(user, online)` of `want`
/// (offline with a last-seen time); one event may list several users.
async fn hears(client: &mut StompClient, want: &[(i64, bool)]) -> Result<()> {
    let shown = |u: &serde_json::Value, (user, online): (i64, bool)| {
        u["user_id"] == user && u["online"] == online && u["last_seen_ms"].is_i64() != online
    };
    let mut left = want.to_vec();
    while !left.is_empty() {
        let pending = left.clone();
        let f = client
            .recv_event("presence", |f| {
                serde_json::from_slice::<serde_json::Value>(&f.body).is_ok_and(|body| {
                    body["users"].as_array().is_some_and(|users| {
                        users.iter().any(|u| pending.iter().any(|w| shown(u, *w)))
                    })
                })
            })
            .await
            .with_context(|| format!("presence events showing {left:?}"))?;
        let body: serde_json::Value = serde_json::from_slice(&f.body)?;
        let users = body["users"].as_array().cloned().unwrap_or_default();
        left.retain(|w| !users.iter().any(|u| shown(u, *w)));
    }
    Ok(())
}

#[tokio::test]
async fn hostile_bytes_on_the_cluster_port_are_refused_and_counted_and_the_node_serves_on() {
    let Some((mysql, broker)) = prerequisites("cluster port hostile").await else {
        return;
    };
    let port = check(free_port());
    let node = member("solo", &broker).map(|b| {
        b.env("BANTER_CLUSTER__LISTEN", format!("127.0.0.1:{port}"))
            .mysql(&mysql)
    });
    let node = check(check(node).start().await);
    node.check(settled(&[&node], Duration::from_secs(30)).await);
    node.check(hostile_port(&node, port).await);
}

/// Garbage, an impossible length, a truncated frame and a silent connection on the cluster port:
/// each is closed and counted, and the node goes on serving its clients.
/// Whether the node closes `conn` within 15 s (what it sends first is read and dropped).
async fn closed(conn: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

async fn hostile_port(node: &Node, port: u16) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let addr = format!("127.0.0.1:{port}");
    let mut truncated = 100u64.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"0123456789");
    let payloads: [(&str, Vec<u8>); 4] = [
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("length u64::MAX", u64::MAX.to_be_bytes().to_vec()),
        (
            "length over the 1 MiB limit",
            ((1u64 << 20) + 1).to_be_bytes().to_vec(),
        ),
        ("a truncated frame, then silence", truncated),
    ];
    for (what, bytes) in payloads {
        let mut conn = tokio::net::TcpStream::connect(&addr).await?;
        conn.write_all(&bytes).await?;
        // The node closes it: by the decoder at once, or by the handshake deadline (5 s).
        ensure!(
            closed(&mut conn).await,
            "{what}: the connection stayed open"
        );
    }
    eventually(
        "the refusals are counted",
        Duration::from_secs(10),
        || async {
            let refused = gauge(node, "banter_cluster_port_refused_total", "").await?;
            Ok((refused >= 4.0).then_some(()))
        },
    )
    .await?;
    // The node serves on.
    let api = node.api();
    let alice = api.new_user(&unique("solo")).await?;
    let room = api.create_room(&alice.token, &unique("solo")).await?;
    let mut c = StompClient::connect(&node.ws_url(), &alice.token).await?;
    let r = c.send_confirmed(&room_dest(room.id), "still here").await?;
    ensure!(r.seq == 1, "seq {}", r.seq);
    Ok(())
}
