//! What the Kafka tests of this crate need: a broker and a MariaDB server, or a skip notice.
//!
//! Broker: `BANTER_TEST_KAFKA_BROKERS` when set; otherwise a tansu broker started here (sqlite engine,
//! a free port, a temporary dir) from `BANTER_TANSU_BIN` or `$HOME/.cache/banter/tools/bin/tansu`,
//! killed on drop (and by a watchdog if the test process dies). Neither: the test is skipped, or fails
//! when `BANTER_REQUIRE_KAFKA=1`. MariaDB: `BANTER_TEST_MYSQL_URL`, the same rule with
//! `BANTER_REQUIRE_MYSQL=1`. Each test then isolates itself with its own topics, group and database.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{KafkaConfig, PersisterConfig};

/// A broker for one test.
pub(crate) struct TestBroker {
    /// Bootstrap address.
    pub(crate) brokers: String,
    /// The tansu started here (`None` with `BANTER_TEST_KAFKA_BROKERS`).
    local: Option<LocalTansu>,
}

struct LocalTansu {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    _watchdog: Option<(Child, ChildStdin)>,
    dir: tempfile::TempDir,
}

impl Drop for LocalTansu {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl LocalTansu {
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts tansu on the port and database of this dir, and waits until it serves.
    fn spawn(&mut self) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(self.dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
        for var in [
            "CLUSTER_ID",
            "LISTENER_URL",
            "ADVERTISED_LISTENER_URL",
            "STORAGE_ENGINE",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        // Kills the broker when this process is gone however it ended (its end of the pipe closes).
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                &format!("cat >/dev/null; kill -9 {} 2>/dev/null", child.id()),
            ])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let lifeline = watchdog.stdin.take().ok_or("no watchdog pipe")?;
        self.child = Some(child);
        self._watchdog = Some((watchdog, lifeline));
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready once it accepts connections and its schema exists (the index goes onto `header`).
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!("tansu exited ({status}): {}", self.log()));
            }
            let up = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            let indexed = up
                && Command::new("sqlite3")
                    .arg(self.dir.path().join("tansu.db"))
                    .arg("create index if not exists header_topition_offset on header(topition, offset_id)")
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if indexed {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("tansu not ready within 30 s: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl TestBroker {
    /// Kills the broker with SIGKILL; `false` when it was not started here.
    pub(crate) fn kill9(&mut self) -> bool {
        self.local.as_mut().map(LocalTansu::kill9).is_some()
    }

    /// Starts the killed broker again on the same port and database.
    pub(crate) async fn restart(&mut self) {
        let mut local = self.local.take().expect("a broker started here");
        let local = tokio::task::spawn_blocking(move || local.spawn().map(|()| local))
            .await
            .expect("restart task")
            .unwrap_or_else(|e| panic!("cannot restart tansu: {e}"));
        self.local = Some(local);
    }

    /// Returns the broker's log (empty when it was not started here).
    pub(crate) fn log(&self) -> String {
        self.local.as_ref().map(LocalTansu::log).unwrap_or_default()
    }
}

fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

fn skip(test: &str, why: &str, require_var: &str) {
    if required(require_var) {
        panic!("{test}: {why} but {require_var}=1");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Returns the MariaDB server URL (without a database), or `None` after a skip notice.
pub(crate) fn mysql_or_skip(test: &str) -> Option<String> {
    match std::env::var("BANTER_TEST_MYSQL_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(
                test,
                "BANTER_TEST_MYSQL_URL is unset (scripts/mariadb.sh start)",
                "BANTER_REQUIRE_MYSQL",
            );
            None
        }
    }
}

fn tansu_bin() -> Option<PathBuf> {
    let bin = match std::env::var_os("BANTER_TANSU_BIN") {
        Some(b) if !b.is_empty() => PathBuf::from(b),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache/banter/tools/bin/tansu"),
    };
    bin.is_file().then_some(bin)
}

/// Returns a broker for `test`, or `None` after a skip notice.
pub(crate) async fn broker_or_skip(test: &str) -> Option<TestBroker> {
    init_logs();
    if let Ok(brokers) = std::env::var("BANTER_TEST_KAFKA_BROKERS")
        && !brokers.is_empty()
    {
        return Some(TestBroker {
            brokers,
            local: None,
        });
    }
    let Some(bin) = tansu_bin() else {
        skip(
            test,
            "neither BANTER_TEST_KAFKA_BROKERS nor a tansu binary (scripts/kafka.sh install)",
            "BANTER_REQUIRE_KAFKA",
        );
        return None;
    };
    let started = tokio::task::spawn_blocking(move || start_tansu(&bin))
        .await
        .expect("tansu start task");
    Some(started.unwrap_or_else(|e| panic!("{test}: cannot start tansu: {e}")))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_tansu(bin: &std::path::Path) -> Result<TestBroker, String> {
    let dir = tempfile::Builder::new()
        .prefix("banter-node-kafka-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let port = free_port().map_err(|e| e.to_string())?;
    let mut local = LocalTansu {
        bin: bin.to_owned(),
        port,
        child: None,
        _watchdog: None,
        dir,
    };
    local.spawn()?;
    Ok(TestBroker {
        brokers: format!("127.0.0.1:{port}"),
        local: Some(local),
    })
}

/// Sends this crate's logs to the test's output (shown for failing tests, or with `--nocapture`);
/// `BANTER_TEST_LOG` overrides the filter.
pub(crate) fn init_logs() {
    let filter =
        std::env::var("BANTER_TEST_LOG").unwrap_or_else(|_| "banter_node=debug,warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

/// Returns Kafka settings of a test: its own topics on `brokers`, `partitions` each.
pub(crate) fn kafka_config(brokers: &str, partitions: i32) -> KafkaConfig {
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    KafkaConfig {
        brokers: brokers.to_owned(),
        topic: format!("test.{suffix}.messages"),
        dead_letter_topic: format!("test.{suffix}.dlq"),
        partitions,
        ..KafkaConfig::default()
    }
}

/// Returns persister settings of a test: its own group, small fast batches.
pub(crate) fn persister_config(kafka: &KafkaConfig) -> PersisterConfig {
    PersisterConfig {
        group_id: format!("{}.persister", kafka.topic),
        batch_rows: 64,
        batch_ms: 50,
        max_backoff_ms: 1_000,
        lag_interval_ms: 200,
    }
}
