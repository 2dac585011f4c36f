//! Failover: a node is killed (`kill -9`) while clients on every node keep sending to rooms spread
//! over the nodes, in rounds (each round kills another node, then restarts it as a new incarnation).
//! Clients whose node died reconnect to another one (their list of node URLs). Afterwards, for each
//! room: every RECEIPTed message is in history and in MySQL exactly once with the seq and id it was
//! receipted with, the seqs are 1..=N without a gap, and every stored message was sent.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::{Node, unique};

use super::{settled, three};
use crate::e2e::durable::support::{
    Acked, STORE_WAIT, SendPlan, Sender, check, check_history, ensure_stored_once, prerequisites,
    wait_in_history, wait_rows,
};

/// Kill rounds in the test command (the bench runs more).
const ROUNDS: usize = 2;
const ROOMS: usize = 3;
/// RECEIPTs every sender must add between two kills (and after the last one).
const PROGRESS: u64 = 15;

#[tokio::test]
async fn kill9_of_a_node_under_load_loses_and_duplicates_no_acknowledged_message() {
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
    // One sender per user and room, each starting on its user's node.
    let mut senders = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for room in &rooms {
            let mut plan = SendPlan::new(&format!("u{i} r{room}"));
            plan.window = 4;
            plan.rate = Some(10.0);
            plan.reconnect = true;
            plan.answer_within = Duration::from_secs(40);
            plan.failover = (1..3).map(|k| urls[(i + k) % 3].clone()).collect();
            senders.push((*room, Sender::spawn(&urls[i], &user.token, *room, plan)));
        }
    }
    for round in 0..ROUNDS {
        progress(&senders, Duration::from_secs(60))
            .await
            .with_context(|| format!("before the kill of round {round}"))?;
        let victim = round % 3;
        nodes[victim].kill9();
        progress(&senders, Duration::from_secs(90))
            .await
            .with_context(|| format!("after the kill of node {victim} (round {round})"))?;
        nodes[victim].restart().await?;
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
