//! The persister is SIGKILLed in the middle of its work, three times: a gateway-only node takes SENDs
//! while a persister-only process (same broker, same database) writes them into MySQL. Each kill
//! comes once the restarted persister has stored rows and while it has records not yet committed
//! (lag > 0), so batches are cut short before or after their DB commit. At the end the row count equals
//! the acked count: no duplicate, no gap.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_tests::{Node, unique};

use super::support::{
    STORE_WAIT, SendPlan, Sender, check, check_history, ensure_stored_once, gateway_only,
    persister_lag, persister_of, prerequisites, wait_in_history, wait_lag_drained, wait_rows,
};

const KILLS: usize = 3;

#[tokio::test]
async fn persister_sigkilled_mid_batch_stores_every_acked_message_once() {
    let Some((mysql, broker)) =
        prerequisites("persister_sigkilled_mid_batch_stores_every_acked_message_once").await
    else {
        return;
    };
    let gateway = gateway_only("durable-gateway", &broker, &mysql)
        .start()
        .await
        .expect("gateway node");
    let db = gateway
        .mysql_database()
        .expect("the gateway has a database")
        .to_owned();
    let mut persister = persister_of(&gateway, "durable-persister", &broker, &mysql)
        // Batches that take a while to fill: a kill finds rows buffered, being written or committed.
        .env("BANTER_PERSISTER__BATCH_ROWS", 40)
        .env("BANTER_PERSISTER__BATCH_MS", 300)
        .start()
        .await
        .expect("persister node");
    check(scenario(&gateway, &mut persister, &mysql, &db).await);
}

async fn scenario(gateway: &Node, persister: &mut Node, mysql: &str, db: &str) -> Result<()> {
    let api = gateway.api();
    // Without the gateway role a process serves only /healthz and /metrics.
    let r = persister.api().get("/api/rooms", None).await?;
    ensure!(
        r.status == 404,
        "a persister-only process answered GET /api/rooms with {}",
        r.status
    );
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("pkill")).await?.id;
    let mut plan = SendPlan::new("pkill");
    plan.window = 32;
    plan.rate = Some(150.0);
    let sender = Sender::spawn(&gateway.ws_url(), &alice.token, room, plan);
    sender.wait_acked(50, Duration::from_secs(20)).await?;

    for kill in 1..=KILLS {
        busy_with_uncommitted_records(persister)
            .await
            .with_context(|| format!("before kill {kill}"))?;
        persister.kill9();
        eprintln!(
            "persister SIGKILLed ({kill}/{KILLS}) at {} receipts",
            sender.acked()
        );
        // Records pile up while no persister runs.
        tokio::time::sleep(Duration::from_millis(500)).await;
        persister.restart().await?;
    }
    // The last incarnation stores something while the sender still runs, then the sender stops.
    busy_with_uncommitted_records(persister)
        .await
        .context("after the last restart")?;
    let log = sender.finish(Duration::from_secs(20)).await?;
    eprintln!("sender: {}", log.summary());
    log.ensure_all_acked()?;
    log.ensure_seqs_rise()?;
    let n = log.acked.len() as u64;

    let history = wait_in_history(&api, &alice.token, room, &log.acked, STORE_WAIT).await?;
    let acked: Vec<_> = log.acked.iter().collect();
    check_history(&history, &acked, &log.bodies(), true)?;
    ensure!(
        history.len() as u64 == n,
        "{} messages in history, {n} acknowledged",
        history.len()
    );
    wait_rows(mysql, db, room, n, STORE_WAIT).await?;
    wait_lag_drained(persister, Duration::from_secs(20)).await?;
    ensure_stored_once(mysql, db, room, n).await?;
    Ok(())
}

/// Waits (bounded) until this incarnation of the persister has stored rows and, at the same time,
/// has records of the topic not yet committed.
async fn busy_with_uncommitted_records(persister: &Node) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = persister.metric_sum("banter_persister_rows_total").await?;
        let lag = persister_lag(persister).await?;
        if rows.is_some_and(|r| r > 0.0) && lag.is_some_and(|l| l > 0.0) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the persister never had stored rows and a lag at once (rows stored {rows:?}, lag {lag:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
