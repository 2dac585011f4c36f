//! MariaDB stops for several seconds under load. The server is a private one
//! ([`banter_tests::mysql::PrivateMariaDb`]): the shared server keeps serving the other tests. The
//! journal needs no database for an active room, so RECEIPTs keep coming; the persister cannot write,
//! so its lag (`banter_persister_lag` on `/metrics`) rises; once MariaDB is back the lag drains to 0 and
//! every acknowledged message is stored, once, seqs 1..N.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_tests::mysql::PrivateMariaDb;
use banter_tests::node::mysql_url_or_skip;
use banter_tests::{Node, unique};

use super::support::{
    STORE_WAIT, SendPlan, Sender, check, check_history, ensure_stored_once, kafka_node,
    persister_lag, wait_in_history, wait_lag_drained, wait_rows,
};
use banter_tests::kafka::Broker;

/// Least time MariaDB stays down.
const OUTAGE: Duration = Duration::from_secs(5);
/// RECEIPTs that must come while MariaDB is down.
const ACKED_DURING_OUTAGE: u64 = 100;

#[tokio::test]
async fn mariadb_stopped_under_load_lag_rises_then_drains_nothing_lost() {
    let test = "mariadb_stopped_under_load_lag_rises_then_drains_nothing_lost";
    // MySQL "available" means scripts/mariadb.sh works here; this test runs a server of its own.
    if mysql_url_or_skip(test).is_none() {
        return;
    }
    let Some(broker) = Broker::start().await.expect("broker") else {
        return;
    };
    let db = PrivateMariaDb::start().await.expect("private MariaDB");
    let node = kafka_node("durable-db-outage", &broker)
        .mysql(&db.url())
        .start()
        .await
        .expect("node");
    // Dropped in reverse order: the node (and its database) before the server it lives on.
    check(scenario(&node, &db).await);
}

async fn scenario(node: &Node, db: &PrivateMariaDb) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("dbdown")).await?.id;
    let mut plan = SendPlan::new("dbdown");
    plan.window = 16;
    plan.rate = Some(100.0);
    let sender = Sender::spawn(&node.ws_url(), &alice.token, room, plan);
    sender.wait_acked(100, Duration::from_secs(20)).await?;
    // The persister is writing before the outage.
    let database = node.mysql_database().context("the node has a database")?;
    wait_rows(&db.url(), database, room, 50, STORE_WAIT).await?;

    db.stop().await?;
    let down = tokio::time::Instant::now();
    let at_stop = sender.acked();
    eprintln!("MariaDB stopped at {at_stop} receipts");
    sender
        .wait_acked(at_stop + ACKED_DURING_OUTAGE, OUTAGE * 2)
        .await
        .context("RECEIPTs while MariaDB is down")?;
    let mut max_lag = 0.0_f64;
    loop {
        let lag = persister_lag(node).await?.unwrap_or(0.0);
        max_lag = max_lag.max(lag);
        if max_lag > 0.0 && down.elapsed() >= OUTAGE {
            break;
        }
        if down.elapsed() >= OUTAGE * 3 {
            bail!(
                "no persister lag reported while MariaDB was down {:?}",
                down.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at_start = sender.acked();
    eprintln!(
        "MariaDB down {:?}: {} receipts meanwhile, lag up to {max_lag}",
        down.elapsed(),
        at_start - at_stop
    );
    db.start_again().await?;
    sender
        .wait_acked(at_start + 50, Duration::from_secs(20))
        .await
        .context("RECEIPTs after MariaDB came back")?;
    let log = sender.finish(Duration::from_secs(20)).await?;
    eprintln!("sender: {}", log.summary());
    log.ensure_all_acked()?;
    log.ensure_seqs_rise()?;

    wait_lag_drained(node, STORE_WAIT).await?;
    let n = log.acked.len() as u64;
    let history = wait_in_history(&api, &alice.token, room, &log.acked, STORE_WAIT).await?;
    let acked: Vec<_> = log.acked.iter().collect();
    check_history(&history, &acked, &log.bodies(), true)?;
    ensure!(
        history.len() as u64 == n,
        "{} messages in history, {n} acknowledged",
        history.len()
    );
    wait_rows(&db.url(), database, room, n, STORE_WAIT).await?;
    ensure_stored_once(&db.url(), database, room, n).await?;
    Ok(())
}
