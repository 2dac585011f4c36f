//! What the tail tests (`history_tail`, `resume_tail`) share: a gateway-only node whose rooms keep
//! [`RING`] messages in memory and a persister-only process on one broker and database, and a room
//! whose newest messages are in the Kafka journal only: [`STORED`] sent and stored, the persister
//! SIGKILLed, [`LAGGING`] more sent, each with a RECEIPT (checked against MySQL).

use anyhow::{Result, ensure};
use banter_tests::kafka::Broker;
use banter_tests::stomp::room_dest;
use banter_tests::{Node, StompClient, TestUser, unique};

use super::support::{
    Acked, STORE_WAIT, gateway_only, persister_of, prerequisites, room_rows, wait_rows,
};

/// Messages each room keeps in memory: fewer than the lag, so part of the tail is journal-only.
pub(super) const RING: u64 = 8;
/// Messages stored before the persister is killed.
pub(super) const STORED: u64 = 12;
/// Messages sent while no persister runs.
pub(super) const LAGGING: u64 = 30;

/// The two processes and where they store.
pub(super) struct Split {
    /// Gateway only: REST, sessions, rooms, the journal producer.
    pub gateway: Node,
    /// Persister only.
    pub persister: Node,
    /// MySQL server URL.
    pub mysql: String,
    /// The database both use.
    pub db: String,
    /// The broker, killed when the test ends (after the nodes).
    _broker: Broker,
}

/// Starts the two processes, or returns `None` (after a skip notice) when MySQL or the broker is
/// unavailable and not required. `name` prefixes the nodes' names.
pub(super) async fn split(test: &str, name: &str) -> Option<Split> {
    let (mysql, broker) = prerequisites(test).await?;
    let gateway = gateway_only(&format!("{name}-gateway"), &broker, &mysql)
        .env("BANTER_ROOMS__RING_SIZE", RING)
        .start()
        .await
        .expect("gateway node");
    let db = gateway
        .mysql_database()
        .expect("the gateway has a database")
        .to_owned();
    let persister = persister_of(&gateway, &format!("{name}-persister"), &broker, &mysql)
        .start()
        .await
        .expect("persister node");
    Some(Split {
        gateway,
        persister,
        mysql,
        db,
        _broker: broker,
    })
}

/// A room with an unpersisted tail.
pub(super) struct Tail {
    /// Its owner, who sent every message.
    pub alice: TestUser,
    /// The room.
    pub room: i64,
    /// Its STOMP destination.
    pub dest: String,
    /// Every RECEIPTed message, seqs 1..=STORED + LAGGING.
    pub acked: Vec<Acked>,
}

/// Makes a room on the gateway whose first [`STORED`] messages are in MySQL and whose next
/// [`LAGGING`] are in the journal only (the persister is SIGKILLed in between).
pub(super) async fn unpersisted_tail(s: &mut Split) -> Result<Tail> {
    let api = s.gateway.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("tail")).await?.id;
    let dest = room_dest(room);
    let mut c = StompClient::connect(&s.gateway.ws_url(), &alice.token).await?;
    let mut acked = Vec::new();
    for i in 0..STORED {
        acked.push(send(&mut c, &dest, &format!("stored {i}")).await?);
    }
    wait_rows(&s.mysql, &s.db, room, STORED, STORE_WAIT).await?;

    s.persister.kill9();
    for i in 0..LAGGING {
        acked.push(send(&mut c, &dest, &format!("lagging {i}")).await?);
    }
    c.disconnect().await?;
    let n = STORED + LAGGING;
    ensure!(
        acked.iter().map(|a| a.seq).eq(1..=n),
        "receipts' seqs are not 1..={n}"
    );
    let rows = room_rows(&s.mysql, &s.db, room).await?;
    ensure!(
        rows.max_seq == STORED && rows.rows == STORED,
        "scenario: MySQL should hold only the first {STORED} messages, it holds {rows:?}"
    );
    Ok(Tail {
        alice,
        room,
        dest,
        acked,
    })
}

/// Sends one message and waits for its RECEIPT.
pub(super) async fn send(c: &mut StompClient, dest: &str, body: &str) -> Result<Acked> {
    let r = c.send_confirmed(dest, body).await?;
    Ok(Acked {
        seq: r.seq,
        message_id: r.message_id,
        body: body.to_owned(),
    })
}
