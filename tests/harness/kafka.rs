//! A real Kafka-protocol broker per test: tansu 0.6.0 (ARCHITECTURE.md section 10) on its sqlite
//! storage engine, on a free port of 127.0.0.1, in its own temporary dir.
//!
//! The binary is `BANTER_TANSU_BIN`, else `$HOME/.cache/banter/tools/bin/tansu` (`scripts/kafka.sh
//! install` builds it there). When it is missing, [`Broker::start`] returns `None` after printing a skip
//! notice, or fails the test when `BANTER_REQUIRE_KAFKA=1` (as `scripts/test.sh` sets it) — the same
//! rule as `BANTER_REQUIRE_MYSQL` in [`crate::mysql`].
//!
//! A [`Broker`] can be killed with SIGKILL ([`Broker::kill9`]) or stopped with SIGTERM
//! ([`Broker::stop`]) and started again on the same port with the same database ([`Broker::restart`]):
//! the sqlite engine keeps every acknowledged record across a SIGKILL. Once the broker has created its
//! database the harness adds the index tansu lacks (`header_topition_offset`, without which consumers
//! time out), with the `sqlite3` CLI so that the harness needs no database driver of its own.
//!
//! Never delete a topic on it: tansu 0.6.0's sqlite engine answers DeleteTopics by deleting *every*
//! topic of the cluster with its records (its `topic_delete_by.sql` filters on the cluster only).
//! Tests isolate themselves with unique topic names, or a broker of their own.
//!
//! Brokers never outlive the test run: [`Broker`] kills its process on drop, and every process has a
//! watchdog (`sh` reading a pipe from the test process, [`crate::watched`]) that kills it when the
//! test process is gone however it ended.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::tools::{Tool, current_test};
use crate::watched::Watched;

/// Variable naming the tansu binary.
pub const TANSU_BIN_VAR: &str = "BANTER_TANSU_BIN";
/// When `1`, tests that need a broker fail instead of being skipped when the tansu binary is missing.
pub const REQUIRE_KAFKA_VAR: &str = "BANTER_REQUIRE_KAFKA";
/// `RUST_LOG` for the broker (the test process's own `RUST_LOG` is not passed on). Default: unset.
pub const TANSU_LOG_VAR: &str = "BANTER_TANSU_RUST_LOG";
/// Longest wait for the broker to accept connections and for its schema to exist.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the broker to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the port to be free again before a restart.
const PORT_FREE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the broker log printed when something fails.
const LOG_TAIL_LINES: usize = 60;
/// The sqlite database, relative to the broker's working directory (its temp dir).
const DB_FILE: &str = "tansu.db";
const INDEX_SQL: &str =
    "create index if not exists header_topition_offset on header(topition, offset_id)";
/// Variables tansu reads as defaults of its flags; removed so that a stray one cannot redirect it.
const TANSU_ENV_VARS: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DATA_LAKE",
    "RUST_LOG",
];

/// The tansu binary.
pub const TANSU: Tool = Tool {
    var: TANSU_BIN_VAR,
    file: "tansu",
    require_var: REQUIRE_KAFKA_VAR,
    script: "scripts/kafka.sh",
};

/// Returns the tansu binary: `BANTER_TANSU_BIN` when set, else `$HOME/.cache/banter/tools/bin/tansu`;
/// `None` when that file does not exist.
pub fn tansu_bin() -> Option<PathBuf> {
    TANSU.bin()
}

/// A running tansu broker with its port and database. Killed (SIGKILL) on drop; its dir is removed
/// then, unless the test is panicking, in which case the dir is kept and the log tail printed.
pub struct Broker {
    bin: PathBuf,
    port: u16,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    proc: Option<Watched>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("port", &self.port)
            .field("dir", &self.dir())
            .finish()
    }
}

impl Broker {
    /// Starts a broker for the current test, or returns `None` (after a skip notice) when the tansu
    /// binary is missing and `BANTER_REQUIRE_KAFKA` is not `1` ([`Tool::bin_or_skip`]). The notice
    /// names the test after the current thread, which libtest names after the test.
    pub async fn start() -> Result<Option<Broker>> {
        match TANSU.bin_or_skip(&current_test("kafka test")) {
            Some(bin) => Broker::start_with(&bin).await.map(Some),
            None => Ok(None),
        }
    }

    /// Starts the broker `bin` on a free port with a fresh database, and waits until it accepts
    /// connections and its schema (with the added index) exists.
    pub async fn start_with(bin: &Path) -> Result<Broker> {
        let dir = tempfile::Builder::new()
            .prefix("banter-it-kafka-")
            .tempdir()
            .context("failed to create the broker's dir")?;
        let mut broker = Broker {
            bin: bin.to_owned(),
            port: 0,
            log_path: dir.path().join("tansu.log"),
            dir: Some(dir),
            proc: None,
        };
        // A port picked free can be taken before tansu binds it (tansu then exits): try a few.
        let mut last = None;
        for _ in 0..3 {
            broker.port = free_port()?;
            match broker.spawn_and_wait().await {
                Ok(()) => return Ok(broker),
                Err(e) => {
                    broker.kill9();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("broker never started")))
    }

    /// Returns the bootstrap servers, `127.0.0.1:PORT` (for `bootstrap.servers` / the node's config).
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Returns the tansu binary this broker runs (its `topic` and `cat` subcommands are clients too).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Returns the port the broker listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the broker's dir (its working directory, holding `tansu.db` and `tansu.log`).
    pub fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map_or_else(PathBuf::new, |d| d.path().to_owned())
    }

    /// Returns the path of the broker's sqlite database.
    pub fn db_path(&self) -> PathBuf {
        self.dir().join(DB_FILE)
    }

    /// Tells whether the broker process is alive.
    pub fn is_running(&mut self) -> bool {
        self.proc
            .as_mut()
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Returns the last lines of the broker's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, LOG_TAIL_LINES)
    }

    /// Kills the broker with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Freezes the broker with SIGSTOP: it holds its connections but answers nothing (a stalled broker,
    /// as after a long GC pause or a hung disk) until [`Broker::thaw`].
    pub fn freeze(&mut self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Resumes a frozen broker with SIGCONT.
    pub fn thaw(&mut self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&mut self, signal: &str) -> Result<()> {
        self.proc
            .as_ref()
            .context("the broker is not running")?
            .signal(signal)
    }

    /// Stops the broker with SIGTERM and waits for it to exit (SIGKILL after 15 s).
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut p) = self.proc.take() else {
            return Ok(());
        };
        let pid = p.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map(|s| s.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        let outcome = loop {
            match p.child.try_wait() {
                Ok(Some(_)) => break Ok(()),
                Ok(None) if sent.as_ref().is_ok_and(|ok| *ok) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break Err(anyhow!(
                        "broker (pid {pid}) did not exit within {STOP_TIMEOUT:?} of SIGTERM ({sent:?}); killed"
                    ));
                }
                Err(e) => break Err(e.into()),
            }
        };
        p.retire();
        outcome
    }

    /// Starts the broker again on the same port with the same database (stopping it with SIGTERM
    /// first if it runs), and waits until it is ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop()?;
        let deadline = Instant::now() + PORT_FREE_TIMEOUT;
        while std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            if Instant::now() >= deadline {
                bail!(
                    "port {} is still taken {PORT_FREE_TIMEOUT:?} after the broker stopped",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.spawn_and_wait().await
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.spawn()?;
        self.wait_ready().await.with_context(|| {
            format!(
                "broker on port {} did not become ready; dir {}; log tail:\n{}",
                self.port,
                self.dir().display(),
                self.log_tail()
            )
        })
    }

    fn spawn(&mut self) -> Result<()> {
        let dir = self.dir();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("failed to open {}", self.log_path.display()))?;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        writeln!(log, "==== harness: starting tansu on {url} ====")?;
        let mut cmd = Command::new(&self.bin);
        for var in TANSU_ENV_VARS {
            cmd.env_remove(var);
        }
        if let Some(level) = std::env::var_os(TANSU_LOG_VAR) {
            cmd.env("RUST_LOG", level);
        }
        cmd.env("NO_COLOR", "1")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &format!("sqlite://{DB_FILE}")])
            // tansu reads a `.env` in its working directory and resolves the sqlite path against it.
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.proc = Some(Watched::spawn(&mut cmd, &self.bin, &dir)?);
        Ok(())
    }

    fn check_alive(&mut self) -> Result<()> {
        let Some(p) = self.proc.as_mut() else {
            bail!("broker is not running");
        };
        if let Some(status) = p.child.try_wait()? {
            // tansu exits with status 0 when its port is taken.
            bail!(
                "tansu exited during start-up ({status}; was port {} taken?)",
                self.port
            );
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = ("127.0.0.1", self.port);
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                bail!("no TCP connection accepted within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The schema may be created just after the listener: retry until the table exists.
        let db = self.db_path();
        let mut last = String::from("no database file yet");
        loop {
            self.check_alive()?;
            if db.is_file() {
                match sqlite3(&db, INDEX_SQL).await {
                    Ok(_) => break,
                    Err(e) => last = format!("{e:#}"),
                }
            }
            if Instant::now() >= deadline {
                bail!("could not add the index to {}: {last}", db.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let found = sqlite3(
            &db,
            "select count(*) from sqlite_master where type = 'index' and name = 'header_topition_offset'",
        )
        .await?;
        if found.trim() != "1" {
            bail!(
                "index header_topition_offset missing from {} after creating it",
                db.display()
            );
        }
        Ok(())
    }
}

/// Runs one SQL statement on `db` with the `sqlite3` CLI; returns its stdout.
pub async fn sqlite3(db: &Path, sql: &str) -> Result<String> {
    let out = tokio::process::Command::new("sqlite3")
        .args(["-batch", "-cmd", ".timeout 5000"])
        .arg(db)
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .await
        .context("failed to run the sqlite3 CLI (apt-get install sqlite3)")?;
    if !out.status.success() {
        bail!(
            "sqlite3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("failed to bind a free port")?;
    Ok(l.local_addr()?.port())
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let kept = self.dir.take().map(tempfile::TempDir::keep);
            eprintln!(
                "---- broker 127.0.0.1:{}: dir kept at {}; log tail ----\n{}",
                self.port,
                kept.as_deref().unwrap_or(Path::new("?")).display(),
                log_tail(&self.log_path, LOG_TAIL_LINES)
            );
        }
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}
