//! Failover: a node goes away while clients on every node keep sending to rooms spread over the
//! nodes, in rounds: the first round kills a node (`kill -9`), the next stops one with SIGTERM (it
//! hands its shards over), and so on; each time the node comes back as a new incarnation and takes
//! its share again (a join under load). Clients whose node went away reconnect to another one
//! (their list of node URLs), senders and watchers alike. Afterwards, for each room: every
//! RECEIPTed message is in history and in MySQL exactly once with the seq and id it was receipted
//! with, the seqs are 1..=N without a gap, every stored message was sent, and every watcher (one
//! per room on each node, resuming with `since` after each reconnection) saw seqs 1..=N once each,
//! in order.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_proto::stomp::Command;
use banter_tests::stomp::{header_u64, is_event, room_dest};
use banter_tests::{Node, StompClient, unique};
use tokio::sync::watch;

use super::{COOKIE, SHARDS, settled, three};
use crate::e2e::durable::support::{
    Acked, STORE_WAIT, SendPlan, Sender, check, check_history, ensure_stored_once, kafka_node,
    prerequisites, wait_in_history, wait_rows,
};

/// Rounds in the test command: kill -9, SIGTERM, SIGSTOP (the bench runs more).
const ROUNDS: usize = 3;
/// How long a frozen node stays frozen: past its leases (3 s) and the journal's delivery timeout
/// (2 s) that the others wait before taking its shards, and past the time its clients give it up.
const FROZEN: Duration = Duration::from_secs(16);
/// A client gives its node up after a SEND stays unanswered this long (its heart-beats would tell);
/// longer than a SEND waits for a room to find an owner during a move (10 s).
const ABANDON: Duration = Duration::from_secs(12);
const ROOMS: usize = 3;
/// RECEIPTs every sender must add between two kills (and after the last one).
const PROGRESS: u64 = 15;

#[tokio::test]
async fn a_node_killed_or_stopped_under_load_loses_and_duplicates_no_acknowledged_message() {
    let Some((mysql, broker)) = prerequisites("cluster failover").await else {
        return;
    };
    let (a, b, c) = three(&broker, &mysql).await;
    let mut nodes = [a, b, c];
    let outcome = scenario(&mut nodes, &mysql).await;
    check(outcome);
}

async fn scenario(nodes: &mut [Node; 3], mysql: &str) -> Result<()> {
    let api = nodes[0].api();
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(api.new_user(&unique(&format!("f{i}"))).await?);
    }
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        let room = api
            .create_room(&users[0].token, &unique(&format!("fo{r}")))
            .await?;
        for user in &users[1..] {
            api.join(&user.token, room.id).await?;
        }
        rooms.push(room.id);
    }
    let urls: Vec<String> = nodes.iter().map(Node::ws_url).collect();
    let (stop_watching, watching) = watch::channel(false);
    let mut watchers = Vec::new();
    for i in 0..3 {
        for room in &rooms {
            let order: Vec<String> = (0..3).map(|k| urls[(i + k) % 3].clone()).collect();
            let task = tokio::spawn(watch_room(
                order,
                users[i].token.clone(),
                *room,
                watching.clone(),
            ));
            watchers.push((*room, task));
        }
    }
    // One sender per user and room, each starting on its user's node.
    let mut senders = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for room in &rooms {
            let mut plan = SendPlan::new(&format!("u{i} r{room}"));
            plan.window = 4;
            plan.rate = Some(10.0);
            plan.reconnect = true;
            plan.answer_within = Duration::from_secs(40);
            plan.abandon_after = Some(ABANDON);
            plan.failover = (1..3).map(|k| urls[(i + k) % 3].clone()).collect();
            senders.push((*room, Sender::spawn(&urls[i], &user.token, *room, plan)));
        }
    }
    for round in 0..ROUNDS {
        progress(&senders, Duration::from_secs(60))
            .await
            .with_context(|| format!("before the kill of round {round}"))?;
        let victim = round % 3;
        match round % 3 {
            0 => nodes[victim].kill9(),
            1 => {
                let status = nodes[victim].terminate(Duration::from_secs(30)).await?;
                ensure!(
                    status.success(),
                    "node {victim} exited with {status} on SIGTERM"
                );
            }
            _ => nodes[victim].freeze()?,
        }
        let started = tokio::time::Instant::now();
        progress(&senders, Duration::from_secs(90))
            .await
            .with_context(|| format!("after node {victim} went away (round {round})"))?;
        if round % 3 == 2 {
            // The others hold every shard; then the old owner wakes up past its leases. It must
            // acknowledge nothing more for the rooms it lost (the checks at the end show it).
            let others: Vec<&Node> = (1..3).map(|k| &nodes[(victim + k) % 3]).collect();
            settled(&others, Duration::from_secs(60)).await?;
            tokio::time::sleep(FROZEN.saturating_sub(started.elapsed())).await;
            nodes[victim].thaw()?;
            progress(&senders, Duration::from_secs(60))
                .await
                .with_context(|| format!("after node {victim} woke up (round {round})"))?;
        } else {
            nodes[victim].restart().await?;
        }
        let all: Vec<&Node> = nodes.iter().collect();
        settled(&all, Duration::from_secs(60)).await?;
    }
    progress(&senders, Duration::from_secs(60)).await?;
    let mut acked: BTreeMap<i64, Vec<Acked>> = BTreeMap::new();
    let mut sent: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
    for (room, sender) in senders {
        let log = sender.finish(Duration::from_secs(60)).await?;
        eprintln!("room {room}: {}", log.summary());
        log.ensure_seqs_rise()?;
        sent.entry(room).or_default().extend(log.bodies());
        acked.entry(room).or_default().extend(log.acked);
    }
    let database = nodes[0].mysql_database().context("a database")?.to_owned();
    let mut last_seqs: BTreeMap<i64, u64> = BTreeMap::new();
    for room in &rooms {
        let acked = &acked[room];
        let history = wait_in_history(&api, &users[0].token, *room, acked, STORE_WAIT).await?;
        let refs: Vec<&Acked> = acked.iter().collect();
        check_history(&history, &refs, &sent[room], true)
            .with_context(|| format!("history of room {room}"))?;
        let n = history.len() as u64;
        wait_rows(mysql, &database, *room, n, STORE_WAIT).await?;
        ensure_stored_once(mysql, &database, *room, n).await?;
        ensure!(
            n >= acked.len() as u64,
            "room {room}: fewer messages than RECEIPTs"
        );
        last_seqs.insert(*room, n);
    }
    // Each watcher drains what it was sent, then stops: it saw 1..=N once each, in order.
    let _ = stop_watching.send(true);
    for (room, task) in watchers {
        let seen = tokio::time::timeout(STORE_WAIT, task)
            .await
            .context("a watcher did not stop")?
            .context("watcher task")??;
        let n = last_seqs[&room];
        let gaps: Vec<_> = seen
            .windows(2)
            .filter(|w| w[1] != w[0] + 1)
            .take(5)
            .collect();
        ensure!(
            seen.len() as u64 == n && seen.first() == Some(&1) && gaps.is_empty(),
            "a watcher of room {room} saw {} messages, not seqs 1..={n} in order: gaps {gaps:?}",
            seen.len(),
        );
    }
    Ok(())
}

/// Watches `room` from the first node of `urls` (the others in turn after a disconnection),
/// resuming with `since` after each reconnection; once told to stop, drains what it was sent and
/// returns the seqs seen, in the order seen. A seq at or below one already seen is a duplicate (or
/// out of order) and fails it.
async fn watch_room(
    urls: Vec<String>,
    token: String,
    room: i64,
    stop: watch::Receiver<bool>,
) -> Result<Vec<u64>> {
    let mut seen: Vec<u64> = Vec::new();
    let dest = room_dest(room);
    for attempt in 0usize.. {
        let url = &urls[attempt % urls.len()];
        let Ok(mut client) = StompClient::connect(url, &token).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let since = seen.last().copied();
        if client.subscribe(&dest, "w", since).await.is_err() {
            continue;
        }
        loop {
            if *stop.borrow() {
                // Everything was acknowledged before the stop: what is still coming is queued.
                while let Ok(f) = client.recv_frame(Duration::from_millis(1000)).await {
                    record(&f, &mut seen)?;
                }
                return Ok(seen);
            }
            match client.recv_frame(Duration::from_millis(200)).await {
                Ok(f) if matches!(f.command, Command::Error) => break,
                Ok(f) => record(&f, &mut seen)?,
                Err(_) if client.is_closed() => break,
                Err(_) => {}
            }
        }
    }
    Ok(seen)
}

fn record(f: &banter_proto::stomp::Frame, seen: &mut Vec<u64>) -> Result<()> {
    if is_event(f, "message") {
        let seq = header_u64(f, "seq").context("a message without seq")?;
        if let Some(last) = seen.last()
            && seq <= *last
        {
            bail!("seq {seq} delivered after seq {last}: a duplicate or out of order");
        }
        seen.push(seq);
    }
    Ok(())
}

/// Waits until every sender has PROGRESS more RECEIPTs than when called.
async fn progress(senders: &[(i64, Sender)], within: Duration) -> Result<()> {
    let targets: Vec<u64> = senders.iter().map(|(_, s)| s.acked() + PROGRESS).collect();
    for ((room, sender), target) in senders.iter().zip(targets) {
        sender
            .wait_acked(target, within)
            .await
            .with_context(|| format!("a sender to room {room}"))?;
    }
    Ok(())
}

/// The failover time with the default lease (10 s), heartbeat (1 s) and journal delivery timeout
/// (10 s): twelve rooms take messages (10/s each) from senders on two nodes while the third is killed
/// with `kill -9`; for each room, the time from the kill to its first RECEIPT after it. Rooms the
/// dead node served answer only once a survivor took their shard: the slowest room is the failover
/// time. Not in the test command (it waits half a minute); `scripts/bench.sh failover` runs it.
#[tokio::test]
#[ignore = "the failover time with the default settings; scripts/bench.sh failover runs it"]
async fn failover_time_with_the_default_settings() {
    let Some((mysql, broker)) = prerequisites("failover time").await else {
        return;
    };
    let defaults = |name: &str| -> Result<banter_tests::NodeBuilder> {
        Ok(kafka_node(name, &broker)
            .env("BANTER_CLUSTER__ENABLED", "true")
            .env(
                "BANTER_CLUSTER__LISTEN",
                format!("127.0.0.1:{}", banter_tests::node::free_port()?),
            )
            .env("BANTER_CLUSTER__COOKIE", COOKIE)
            .env("BANTER_CLUSTER__SHARDS", SHARDS))
    };
    let a = check(check(defaults("a")).mysql(&mysql).start().await);
    let b = check(check(defaults("b")).same_database_as(&a).start().await);
    let mut c = check(check(defaults("c")).same_database_as(&a).start().await);
    a.check(settled(&[&a, &b, &c], Duration::from_secs(60)).await);
    let outcome = failover_time(&a, &b, &mut c).await;
    a.check(outcome);
}

async fn failover_time(a: &Node, b: &Node, c: &mut Node) -> Result<()> {
    let api = a.api();
    let user = api.new_user(&unique("ft")).await?;
    let urls = [a.ws_url(), b.ws_url()];
    let mut senders = Vec::new();
    for r in 0..12 {
        let room = api
            .create_room(&user.token, &unique(&format!("ft{r}")))
            .await?
            .id;
        let mut plan = SendPlan::new(&format!("r{room}"));
        plan.window = 4;
        plan.rate = Some(10.0);
        plan.reconnect = true;
        plan.answer_within = Duration::from_secs(60);
        senders.push((room, Sender::spawn(&urls[r % 2], &user.token, room, plan)));
    }
    progress(&senders, Duration::from_secs(60)).await?;
    let killed = std::time::Instant::now();
    c.kill9();
    progress(&senders, Duration::from_secs(120))
        .await
        .context("after the kill")?;
    let mut delays = Vec::new();
    for (room, sender) in senders {
        let log = sender.finish(Duration::from_secs(60)).await?;
        let first = log
            .acked_at
            .iter()
            .find(|at| **at > killed)
            .with_context(|| format!("room {room}: no RECEIPT after the kill"))?;
        delays.push((first.duration_since(killed), room));
    }
    delays.sort_unstable();
    let secs: Vec<String> = delays
        .iter()
        .map(|(d, _)| format!("{:.1}", d.as_secs_f64()))
        .collect();
    eprintln!(
        "failover time: kill -9 -> first RECEIPT of each room, s: [{}]; slowest {:.1} s",
        secs.join(", "),
        delays.last().map_or(0.0, |(d, _)| d.as_secs_f64())
    );
    Ok(())
}
