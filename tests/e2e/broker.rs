//! The harness's Kafka-protocol broker ([`banter_tests::kafka::Broker`], tansu): records acknowledged
//! before a SIGKILL of the broker, or a SIGTERM, are there after a restart on the same port, and new
//! records continue after them. The client is tansu's own CLI (`topic create`, `cat produce` with
//! acks=all, `cat consume`), one record per produce call.

use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use banter_tests::kafka::Broker;
use banter_tests::unique;

#[tokio::test]
async fn broker_keeps_records_across_sigkill_sigterm_and_restart() {
    let started = Instant::now();
    let Some(mut broker) = Broker::start().await.expect("broker") else {
        return;
    };
    eprintln!(
        "broker {} ready in {:?}",
        broker.brokers(),
        started.elapsed()
    );
    if let Err(e) = scenario(&mut broker).await {
        panic!(
            "{e:#}\n---- broker {} log tail ----\n{}",
            broker.brokers(),
            broker.log_tail()
        );
    }
}

async fn scenario(broker: &mut Broker) -> Result<()> {
    let topic = unique("smoke");
    let port = broker.port();
    cli(
        broker,
        &["topic", "create", &topic, "--partitions", "1"],
        None,
    )
    .await?;
    for i in 0..3 {
        produce(broker, &topic, i).await?;
    }
    expect_records(broker, &topic, 3).await?;

    broker.kill9();
    ensure!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "port {port} still accepts connections after kill9"
    );
    let restarted = Instant::now();
    broker.restart().await?;
    eprintln!(
        "broker restarted after SIGKILL in {:?}",
        restarted.elapsed()
    );
    ensure!(
        broker.port() == port,
        "restart moved the broker to port {}",
        broker.port()
    );
    expect_records(broker, &topic, 3).await?;
    produce(broker, &topic, 3).await?;
    expect_records(broker, &topic, 4).await?;

    let stopping = Instant::now();
    broker.stop()?;
    eprintln!("broker stopped by SIGTERM in {:?}", stopping.elapsed());
    broker.restart().await?;
    expect_records(broker, &topic, 4).await
}

async fn produce(broker: &Broker, topic: &str, i: usize) -> Result<()> {
    let line = format!("{{\"key\":\"k{i}\",\"value\":\"v{i}\"}}\n");
    cli(broker, &["cat", "produce", topic], Some(&line)).await?;
    Ok(())
}

/// Consumes partition 0 from the start and checks it holds exactly records k0..k{n-1}, in order.
async fn expect_records(broker: &Broker, topic: &str, n: usize) -> Result<()> {
    let out = cli(
        broker,
        &["cat", "consume", topic, "--max-wait-time-ms", "500"],
        None,
    )
    .await?;
    let records: serde_json::Value = serde_json::from_str(out.trim())
        .with_context(|| format!("consume printed {out:?}, not a JSON array"))?;
    let keys: Vec<&str> = records
        .as_array()
        .context("consume output is not an array")?
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    let want: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    ensure!(
        keys == want,
        "topic {topic} holds keys {keys:?}, expected {want:?}"
    );
    Ok(())
}

/// Runs `tansu ARGS --broker tcp://127.0.0.1:PORT` with `stdin` as input; returns its stdout. tansu's
/// CLI reports some failures on stderr with exit status 0: any ERROR line there fails too.
async fn cli(broker: &Broker, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use tokio::io::AsyncWriteExt as _;
    let url = format!("tcp://127.0.0.1:{}", broker.port());
    let mut child = tokio::process::Command::new(broker.bin())
        .args(args)
        .args(["--broker", &url])
        .env_remove("ADVERTISED_LISTENER_URL")
        .env_remove("SCHEMA_REGISTRY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("failed to run the tansu CLI")?;
    let mut input = child.stdin.take().context("no stdin")?;
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await?;
    }
    drop(input);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .with_context(|| format!("tansu {args:?} took more than 30 s"))??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("ERROR") {
        bail!("tansu {args:?} failed ({}): {}", out.status, stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
