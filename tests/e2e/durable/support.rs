//! What the durable-path tests share: a node on the Kafka journal, a pipelined sender that accounts for
//! every SEND it makes, the checks on what the store holds, and reading the persister's metrics.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_proto::stomp::Command;
use banter_tests::kafka::Broker;
use banter_tests::mysql;
use banter_tests::node::mysql_url_or_skip;
use banter_tests::stomp::{describe, header, parse_receipt, room_dest};
use banter_tests::{Api, Message, Node, NodeBuilder, StompClient, eventually};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Partitions of the journal topic (fewer than the default 6: lighter on a 2-core machine).
pub(crate) const PARTITIONS: u32 = 3;
/// Longest wait for the persister to have stored what was acknowledged (rebalances after a SIGKILL
/// take the group's session timeout, 6 s, each).
pub(crate) const STORE_WAIT: Duration = Duration::from_secs(45);

/// Returns the MySQL server URL and a broker of the test's own, or `None` (after a skip notice) when
/// either is unavailable and not required.
pub(crate) async fn prerequisites(test: &str) -> Option<(String, Broker)> {
    let mysql = mysql_url_or_skip(test)?;
    let broker = Broker::start().await.expect("broker")?;
    Some((mysql, broker))
}

/// A node on the Kafka journal of `broker`, with small persister batches and a fast lag refresh.
pub(crate) fn kafka_node(name: &str, broker: &Broker) -> NodeBuilder {
    NodeBuilder::new(name)
        .env("BANTER_JOURNAL__KIND", "kafka")
        .env("BANTER_JOURNAL__KAFKA__BROKERS", broker.brokers())
        .env("BANTER_JOURNAL__KAFKA__PARTITIONS", PARTITIONS)
        .env("BANTER_PERSISTER__BATCH_ROWS", 50)
        .env("BANTER_PERSISTER__BATCH_MS", 100)
        .env("BANTER_PERSISTER__LAG_INTERVAL_MS", 200)
        .env("BANTER_PERSISTER__MAX_BACKOFF_MS", 1000)
}

/// A gateway-only node on the Kafka journal of `broker`, with a new database on `mysql`.
pub(crate) fn gateway_only(name: &str, broker: &Broker, mysql: &str) -> NodeBuilder {
    kafka_node(name, broker)
        .mysql(mysql)
        .env("BANTER_NODE__ROLES", "[gateway]")
}

/// A persister-only process on the Kafka journal of `broker`, writing into `gateway`'s database
/// on `mysql`.
pub(crate) fn persister_of(
    gateway: &Node,
    name: &str,
    broker: &Broker,
    mysql: &str,
) -> NodeBuilder {
    let db = gateway
        .mysql_database()
        .expect("the gateway has a database");
    kafka_node(name, broker)
        .env("BANTER_STORE__URL", format!("{mysql}/{db}"))
        .env("BANTER_NODE__ROLES", "[persister]")
}

/// Returns `r`, or panics with its error; the nodes, broker and servers the test owns then print
/// their log tails (and keep their dirs) as they are dropped.
#[track_caller]
pub(crate) fn check<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e:#}\n(log tails of the test's processes follow)"))
}

/// A SEND that got its RECEIPT.
#[derive(Clone, Debug)]
pub(crate) struct Acked {
    pub seq: u64,
    pub message_id: String,
    pub body: String,
}

/// A SEND answered by an ERROR frame.
#[derive(Clone, Debug)]
pub(crate) struct Refused {
    /// The SEND's body, when the ERROR named its receipt.
    pub body: Option<String>,
    /// The ERROR's `message` header.
    pub message: String,
}

/// Everything a [`Sender`] did; once it has finished, every SEND is in exactly one of `acked`,
/// `refused` and `unanswered`.
#[derive(Debug, Default)]
pub(crate) struct SendLog {
    pub acked: Vec<Acked>,
    pub refused: Vec<Refused>,
    /// Bodies of SENDs whose connection closed before they were answered (their fate is unknown).
    pub unanswered: Vec<String>,
    /// Connections opened.
    pub connections: u32,
    /// Connections that closed without an ERROR frame first.
    pub closed_without_error: u32,
    /// Connections given up because a SEND stayed unanswered (see [`SendPlan::abandon_after`]).
    pub abandoned: u32,
    /// Longest time a SEND waited for its answer.
    pub slowest_answer: Duration,
    /// When each of `acked` was answered, in the same order.
    pub acked_at: Vec<std::time::Instant>,
}

impl SendLog {
    /// Returns the body of every SEND made.
    pub(crate) fn bodies(&self) -> HashSet<String> {
        self.acked
            .iter()
            .map(|a| a.body.clone())
            .chain(self.refused.iter().filter_map(|r| r.body.clone()))
            .chain(self.unanswered.iter().cloned())
            .collect()
    }

    /// Fails unless every SEND got a RECEIPT.
    pub(crate) fn ensure_all_acked(&self) -> Result<()> {
        ensure!(
            self.refused.is_empty() && self.unanswered.is_empty() && self.closed_without_error == 0,
            "every SEND should have got a RECEIPT: {} refused ({:?}), {} unanswered, {} connections \
             closed without an ERROR",
            self.refused.len(),
            self.refused.iter().take(3).collect::<Vec<_>>(),
            self.unanswered.len(),
            self.closed_without_error
        );
        Ok(())
    }

    /// Fails unless the receipts' seqs rise strictly in the order they came (a room releases in order).
    pub(crate) fn ensure_seqs_rise(&self) -> Result<()> {
        for w in self.acked.windows(2) {
            ensure!(
                w[1].seq > w[0].seq,
                "RECEIPT seq {} came after seq {} on one sender",
                w[1].seq,
                w[0].seq
            );
        }
        Ok(())
    }

    /// Returns a one-line summary for the test output.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} acked, {} refused, {} unanswered, {} connections, slowest answer {:?}",
            self.acked.len(),
            self.refused.len(),
            self.unanswered.len(),
            self.connections,
            self.slowest_answer
        )
    }
}

/// How a [`Sender`] sends.
#[derive(Clone, Debug)]
pub(crate) struct SendPlan {
    /// Prefix of every body (`"<label> <i>"`); unique per sender.
    pub label: String,
    /// Most SENDs sent and not yet answered.
    pub window: usize,
    /// SENDs per second at most (`None`: as fast as the window allows).
    pub rate: Option<f64>,
    /// SENDs in all, unless stopped before.
    pub max: u64,
    /// Longest time a SEND may wait for its RECEIPT or ERROR while its connection is open: waiting
    /// longer fails the sender (a hang).
    pub answer_within: Duration,
    /// Opens a new connection after one closed (else stops there).
    pub reconnect: bool,
    /// A SEND unanswered this long means the node hangs (frozen): the connection is given up, its
    /// SENDs count as unanswered, and the sender reconnects, as a client whose heart-beats stopped
    /// would (`None`: a hang fails the sender after `answer_within`).
    pub abandon_after: Option<Duration>,
    /// Other nodes' WebSocket URLs: a reconnection goes to the next node in turn (a client's list of
    /// node URLs), and a node that refuses the connection is skipped.
    pub failover: Vec<String>,
}

impl SendPlan {
    pub(crate) fn new(label: &str) -> SendPlan {
        SendPlan {
            label: label.to_owned(),
            window: 16,
            rate: None,
            max: u64::MAX,
            answer_within: Duration::from_secs(20),
            reconnect: false,
            abandon_after: None,
            failover: Vec::new(),
        }
    }
}

/// Counters a running [`Sender`] updates.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub refused: AtomicU64,
}

/// A task that streams SENDs with receipts into one room.
pub(crate) struct Sender {
    stop: watch::Sender<bool>,
    pub live: Arc<Live>,
    task: JoinHandle<Result<SendLog>>,
}

impl Sender {
    /// Starts sending as `token` into `room` on the node at `ws_url`.
    pub(crate) fn spawn(ws_url: &str, token: &str, room: i64, plan: SendPlan) -> Sender {
        let (stop, stop_rx) = watch::channel(false);
        let live = Arc::new(Live::default());
        let task = tokio::spawn(stream_sends(
            ws_url.to_owned(),
            token.to_owned(),
            room_dest(room),
            plan,
            stop_rx,
            live.clone(),
        ));
        Sender { stop, live, task }
    }

    /// Returns the SENDs made so far.
    pub(crate) fn sent(&self) -> u64 {
        self.live.sent.load(Ordering::Relaxed)
    }

    /// Returns the RECEIPTs so far.
    pub(crate) fn acked(&self) -> u64 {
        self.live.acked.load(Ordering::Relaxed)
    }

    /// Waits until the sender has at least `n` RECEIPTs; fails when it ended or `within` passed.
    pub(crate) async fn wait_acked(&self, n: u64, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while self.acked() < n {
            if self.task.is_finished() {
                bail!(
                    "the sender ended with {} receipts of {n} awaited",
                    self.acked()
                );
            }
            if Instant::now() >= deadline {
                bail!("{} receipts within {within:?}, {n} awaited", self.acked());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits for a sender that does not reconnect to end by itself, as it does once its connection
    /// closes (its node was killed), and returns the log: stopping it first could let it drain the
    /// answers the node had sent before it died and end before it sees the close.
    pub(crate) async fn finish_after_close(self, within: Duration) -> Result<SendLog> {
        tokio::time::timeout(within, self.task)
            .await
            .with_context(|| {
                format!("the sender did not see its connection close within {within:?}")
            })?
            .context("the sender task failed")?
    }

    /// Stops sending, waits for the answers to what was sent, and returns the log.
    pub(crate) async fn finish(self, within: Duration) -> Result<SendLog> {
        let _ = self.stop.send(true);
        tokio::time::timeout(within, self.task)
            .await
            .with_context(|| format!("the sender did not finish within {within:?}"))?
            .context("the sender task failed")?
    }
}

async fn stream_sends(
    ws: String,
    token: String,
    dest: String,
    plan: SendPlan,
    stop: watch::Receiver<bool>,
    live: Arc<Live>,
) -> Result<SendLog> {
    let mut log = SendLog::default();
    let started = Instant::now();
    let mut client: Option<StompClient> = None;
    // Receipt id (the SEND's index) → (body, sent at).
    let mut outstanding: BTreeMap<u64, (String, Instant)> = BTreeMap::new();
    let mut next = 0u64;
    let mut saw_error = false;
    loop {
        let want_more = !*stop.borrow() && next < plan.max;
        if client.is_none() {
            if !want_more || (log.connections > 0 && !plan.reconnect) {
                break;
            }
            let urls: Vec<&String> = std::iter::once(&ws).chain(&plan.failover).collect();
            let mut connected = None;
            for attempt in 0..urls.len() {
                // The first connection goes to `ws`, each later one to the next node in turn.
                let url = urls[(log.connections as usize + attempt) % urls.len()];
                match StompClient::connect(url, &token).await {
                    Ok(c) => {
                        connected = Some(c);
                        break;
                    }
                    Err(e) if attempt + 1 == urls.len() => {
                        return Err(e).context("sender connecting");
                    }
                    Err(_) => {}
                }
            }
            client = connected;
            log.connections += 1;
            saw_error = false;
        }
        let c = client.as_mut().expect("connected");
        let mut closed = false;
        let mut abandoned = false;
        let mut pace = None;
        while want_more && outstanding.len() < plan.window && next < plan.max {
            if let Some(rate) = plan.rate {
                let due = started + Duration::from_secs_f64(next as f64 / rate);
                if due > Instant::now() {
                    pace = Some(due);
                    break;
                }
            }
            let body = format!("{} {next}", plan.label);
            if c.send(&dest, &body, Some(&next.to_string())).await.is_err() {
                closed = true;
                break;
            }
            outstanding.insert(next, (body, Instant::now()));
            next += 1;
            live.sent.fetch_add(1, Ordering::Relaxed);
        }
        if !closed {
            if outstanding.is_empty() && !want_more {
                break;
            }
            // Wake for the next frame, the next paced SEND, the oldest SEND's deadline, or 100 ms
            // (to notice a stop).
            let now = Instant::now();
            let mut until = now + Duration::from_millis(100);
            if let Some(p) = pace {
                until = until.min(p);
            }
            if let Some((i, (body, at))) = outstanding.iter().min_by_key(|(_, (_, at))| *at) {
                if plan.abandon_after.is_some_and(|a| now >= *at + a) {
                    abandoned = true;
                }
                let deadline = *at + plan.answer_within;
                if now >= deadline {
                    bail!(
                        "SEND {i} ({body:?}) got neither a RECEIPT nor an ERROR within {:?} \
                         while its connection stayed open ({} acked so far)",
                        plan.answer_within,
                        log.acked.len()
                    );
                }
                until = until.min(deadline);
            }
            let wait = if abandoned {
                Duration::ZERO
            } else {
                until.saturating_duration_since(now)
            };
            match c.recv_frame(wait).await {
                Ok(f) => match f.command {
                    Command::Receipt => {
                        let r = parse_receipt(&f)?;
                        let i: u64 = r.receipt_id.parse().context("receipt id")?;
                        let Some((body, at)) = outstanding.remove(&i) else {
                            bail!("RECEIPT for no outstanding SEND: {}", describe(&f));
                        };
                        log.slowest_answer = log.slowest_answer.max(at.elapsed());
                        log.acked.push(Acked {
                            seq: r.seq,
                            message_id: r.message_id,
                            body,
                        });
                        log.acked_at.push(std::time::Instant::now());
                        live.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Command::Error => {
                        saw_error = true;
                        let message = header(&f, "message").unwrap_or_default().to_owned();
                        let sent = header(&f, "receipt-id")
                            .and_then(|r| r.parse::<u64>().ok())
                            .and_then(|i| outstanding.remove(&i));
                        if let Some((_, at)) = &sent {
                            log.slowest_answer = log.slowest_answer.max(at.elapsed());
                        }
                        log.refused.push(Refused {
                            body: sent.map(|(b, _)| b),
                            message,
                        });
                        live.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                },
                Err(_) if c.is_closed() => closed = true,
                Err(_) => {}
            }
        }
        if abandoned && !closed {
            // The node hangs: give the connection up as a client whose heart-beats stopped would.
            log.abandoned += 1;
            log.unanswered.extend(
                std::mem::take(&mut outstanding)
                    .into_values()
                    .map(|(b, _)| b),
            );
            if let Some(c) = client.take() {
                c.abort().await;
            }
            continue;
        }
        if closed {
            if !saw_error {
                log.closed_without_error += 1;
            }
            log.unanswered.extend(
                std::mem::take(&mut outstanding)
                    .into_values()
                    .map(|(b, _)| b),
            );
            client = None;
        }
    }
    if let Some(c) = client {
        c.abort().await;
    }
    Ok(log)
}

/// Returns the room's history (ascending by seq) once every `acked` message is in it with its seq and
/// message id, polling for at most `within`. History holds every acknowledged message, stored or
/// still only journaled: to know what MySQL holds, use [`wait_rows`].
pub(crate) async fn wait_in_history(
    api: &Api,
    token: &str,
    room: i64,
    acked: &[Acked],
    within: Duration,
) -> Result<Vec<Message>> {
    let want: BTreeMap<u64, &str> = acked
        .iter()
        .map(|a| (a.seq, a.message_id.as_str()))
        .collect();
    let deadline = Instant::now() + within;
    loop {
        let last = match api.full_history(token, room, 200).await {
            Ok(mut history) => {
                history.reverse();
                let stored: BTreeMap<u64, &str> = history
                    .iter()
                    .map(|m| (m.seq, m.message_id.as_str()))
                    .collect();
                let missing: Vec<u64> = want
                    .iter()
                    .filter(|(seq, id)| stored.get(seq) != Some(*id))
                    .map(|(seq, _)| *seq)
                    .collect();
                if missing.is_empty() {
                    return Ok(history);
                }
                format!(
                    "{} of {} acknowledged messages not in history (or different there), seqs {:?}…; \
                     {} in history",
                    missing.len(),
                    want.len(),
                    &missing[..missing.len().min(10)],
                    history.len()
                )
            }
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("room {room}, after {within:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks a room's history (ascending) against what senders did: each seq and message id once; every
/// acked message there with its seq, id and body; every body there one that was sent; and, when
/// `contiguous`, seqs exactly 1..=N.
pub(crate) fn check_history(
    history: &[Message],
    acked: &[&Acked],
    sent: &HashSet<String>,
    contiguous: bool,
) -> Result<()> {
    let mut seqs = HashSet::new();
    let mut ids = HashSet::new();
    for m in history {
        ensure!(seqs.insert(m.seq), "seq {} twice in history", m.seq);
        ensure!(
            ids.insert(m.message_id.as_str()),
            "message id {} twice in history",
            m.message_id
        );
        ensure!(
            sent.contains(&m.body),
            "message {} {:?} in history was never sent",
            m.seq,
            m.body
        );
    }
    ensure!(
        history.windows(2).all(|w| w[0].seq < w[1].seq),
        "history is not in seq order"
    );
    let by_seq: BTreeMap<u64, &Message> = history.iter().map(|m| (m.seq, m)).collect();
    for a in acked {
        let m = by_seq.get(&a.seq).with_context(|| {
            format!(
                "acknowledged seq {} ({:?}) is not in history",
                a.seq, a.body
            )
        })?;
        ensure!(
            m.message_id == a.message_id && m.body == a.body,
            "seq {} in history as {} {:?}, acknowledged as {} {:?}",
            a.seq,
            m.message_id,
            m.body,
            a.message_id,
            a.body
        );
    }
    let acked_bodies: HashSet<&str> = acked.iter().map(|a| a.body.as_str()).collect();
    ensure!(
        acked_bodies.len() == acked.len(),
        "a body was acknowledged twice"
    );
    if contiguous {
        let gaps: Vec<u64> = (1..=history.len() as u64)
            .filter(|s| !by_seq.contains_key(s))
            .take(10)
            .collect();
        ensure!(
            gaps.is_empty(),
            "seqs are not 1..={}: missing {gaps:?}",
            history.len()
        );
    }
    Ok(())
}

/// Row count, distinct message ids, lowest and highest seq of a room in MySQL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RoomRows {
    pub rows: u64,
    pub distinct_ids: u64,
    pub min_seq: u64,
    pub max_seq: u64,
}

/// Checks, straight in the `messages` table, that `room` holds seqs `1..=n` once each: `n` rows with
/// `n` distinct message ids, nothing lost, nothing written twice.
pub(crate) async fn ensure_stored_once(
    server: &str,
    database: &str,
    room: i64,
    n: u64,
) -> Result<()> {
    let rows = room_rows(server, database, room).await?;
    let want = RoomRows {
        rows: n,
        distinct_ids: n,
        min_seq: 1,
        max_seq: n,
    };
    ensure!(
        rows == want,
        "the messages table holds {rows:?} for room {room}, expected {n} rows with seqs 1..={n}"
    );
    Ok(())
}

/// Reads [`RoomRows`] of `room` straight from the `messages` table.
pub(crate) async fn room_rows(server: &str, database: &str, room: i64) -> Result<RoomRows> {
    let (server, database) = (server.to_owned(), database.to_owned());
    let sql = format!(
        "SELECT COUNT(*), COUNT(DISTINCT message_id), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) \
         FROM messages WHERE room_id = {room}"
    );
    let out = tokio::task::spawn_blocking(move || mysql::query(&server, &database, &sql)).await??;
    let v: Vec<u64> = out
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("unexpected output {out:?}"))?;
    let [rows, distinct_ids, min_seq, max_seq] = v[..] else {
        bail!("unexpected output {out:?}");
    };
    Ok(RoomRows {
        rows,
        distinct_ids,
        min_seq,
        max_seq,
    })
}

/// Waits until the `messages` table holds at least `n` rows of `room` (polling for at most `within`)
/// and returns what it holds then; the caller checks the exact figures.
pub(crate) async fn wait_rows(
    server: &str,
    database: &str,
    room: i64,
    n: u64,
    within: Duration,
) -> Result<RoomRows> {
    let deadline = Instant::now() + within;
    loop {
        let rows = room_rows(server, database, room).await?;
        if rows.rows >= n {
            return Ok(rows);
        }
        if Instant::now() >= deadline {
            bail!("room {room}: {rows:?} in MySQL after {within:?}, {n} rows awaited");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns the sum over partitions of `banter_persister_lag` from `GET /metrics` of `node`, `None`
/// while the persister has not reported it yet.
pub(crate) async fn persister_lag(node: &Node) -> Result<Option<f64>> {
    node.metric_sum("banter_persister_lag").await
}

/// Waits until the persister of `node` reports a total lag of 0, for at most `within`.
pub(crate) async fn wait_lag_drained(node: &Node, within: Duration) -> Result<()> {
    eventually("persister lag 0", within, || async {
        Ok(match persister_lag(node).await? {
            Some(lag) if lag <= 0.0 => Some(()),
            Some(lag) => bail!("lag {lag}"),
            None => bail!("no lag reported"),
        })
    })
    .await
}
