//! End to end: CLIENTS clients each pipeline PER_CLIENT SENDs with receipts into one group room of a
//! node on the Kafka journal and MySQL. Every RECEIPTed message is in history, and in MySQL exactly
//! once (read straight from the table once the persister has caught up), with seqs 1..N in order and
//! the receipts' message ids.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::{Node, unique};

use super::support::{
    STORE_WAIT, SendLog, SendPlan, Sender, check, check_history, ensure_stored_once, kafka_node,
    prerequisites, wait_in_history, wait_lag_drained, wait_rows,
};

const CLIENTS: usize = 4;
const PER_CLIENT: u64 = 150;

#[tokio::test]
async fn every_receipted_message_is_in_mysql_once_in_seq_order() {
    let Some((mysql, broker)) =
        prerequisites("every_receipted_message_is_in_mysql_once_in_seq_order").await
    else {
        return;
    };
    let node = kafka_node("durable-e2e", &broker)
        .mysql(&mysql)
        .start()
        .await
        .expect("node");
    check(scenario(&node, &mysql).await);
}

async fn scenario(node: &Node, mysql: &str) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let owner = api.new_user("owner").await?;
    let room = api.create_room(&owner.token, &unique("durable")).await?.id;
    let mut users = vec![owner];
    for i in 1..CLIENTS {
        let u = api.new_user(&format!("member{i}")).await?;
        api.join(&u.token, room).await?;
        users.push(u);
    }

    let senders: Vec<Sender> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut plan = SendPlan::new(&format!("client{i}"));
            plan.max = PER_CLIENT;
            plan.window = 16;
            Sender::spawn(&ws, &u.token, room, plan)
        })
        .collect();
    let mut logs: Vec<SendLog> = Vec::new();
    for (i, s) in senders.into_iter().enumerate() {
        s.wait_acked(PER_CLIENT, Duration::from_secs(60))
            .await
            .with_context(|| format!("client {i}"))?;
        let log = s.finish(Duration::from_secs(10)).await?;
        eprintln!("client {i}: {}", log.summary());
        log.ensure_all_acked()
            .with_context(|| format!("client {i}"))?;
        log.ensure_seqs_rise()
            .with_context(|| format!("client {i}"))?;
        logs.push(log);
    }

    let acked: Vec<_> = logs.iter().flat_map(|l| l.acked.iter()).collect();
    let total = CLIENTS as u64 * PER_CLIENT;
    ensure!(
        acked.len() as u64 == total,
        "{} receipts of {total}",
        acked.len()
    );
    let sent: HashSet<String> = logs.iter().flat_map(SendLog::bodies).collect();
    let owned: Vec<_> = acked.iter().map(|a| (*a).clone()).collect();
    let history = wait_in_history(&api, &users[0].token, room, &owned, STORE_WAIT).await?;
    ensure!(
        history.len() as u64 == total,
        "{} messages in history, {total} acknowledged",
        history.len()
    );
    check_history(&history, &acked, &sent, true)?;

    let db = node
        .mysql_database()
        .context("the node has a MySQL database")?;
    wait_rows(mysql, db, room, total, STORE_WAIT).await?;
    wait_lag_drained(node, Duration::from_secs(20)).await?;
    ensure_stored_once(mysql, db, room, total).await?;
    Ok(())
}
