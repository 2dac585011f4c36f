//! Throwaway MariaDB/MySQL databases for nodes that run on the MySQL store.
//!
//! `BANTER_TEST_MYSQL_URL` names the server without a database (`mysql://banter:banter@127.0.0.1:3307`,
//! as `scripts/mariadb.sh start` prints it). Each [`TestDatabase`] is a fresh `banter_it_<hex>`
//! database, created and dropped with the `mariadb`/`mysql` client binary, so the harness needs no
//! database driver of its own; [`query`] reads one the same way.
//!
//! A test that stops and starts the server itself gets a [`PrivateMariaDb`]: a server of its own, from
//! the same `scripts/mariadb.sh` with its own state dir and port, so that the shared one keeps serving
//! every other test.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Url;

use crate::util::random_hex;

/// Variable naming the MySQL server the tests may use.
pub const MYSQL_URL_VAR: &str = "BANTER_TEST_MYSQL_URL";
/// When `1`, tests that need MySQL fail instead of being skipped when [`MYSQL_URL_VAR`] is unset.
pub const REQUIRE_MYSQL_VAR: &str = "BANTER_REQUIRE_MYSQL";

/// Returns the server URL from the environment, `None` when unset. Panics (fails the test) when it is
/// unset and `BANTER_REQUIRE_MYSQL=1`; otherwise prints a skip notice for `test`.
pub fn server_url_or_skip(test: &str) -> Option<String> {
    match std::env::var(MYSQL_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_owned()),
        _ => {
            if std::env::var(REQUIRE_MYSQL_VAR).as_deref() == Ok("1") {
                panic!(
                    "{test}: {MYSQL_URL_VAR} is unset but {REQUIRE_MYSQL_VAR}=1 (run scripts/mariadb.sh start)"
                );
            }
            eprintln!(
                "SKIPPED {test}: {MYSQL_URL_VAR} is unset (run scripts/test.sh, or eval \"$(scripts/mariadb.sh start | tail -1)\")"
            );
            None
        }
    }
}

/// A database created for one node; dropped when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    server: Url,
    name: String,
}

impl TestDatabase {
    /// Creates `banter_it_<hex>` on the server at `server_url` (no database in the path).
    pub fn create(server_url: &str) -> Result<Self> {
        let server = Url::parse(server_url)
            .with_context(|| format!("failed to parse {MYSQL_URL_VAR}={server_url}"))?;
        if server.scheme() != "mysql" && server.scheme() != "mariadb" {
            bail!("{MYSQL_URL_VAR} must be a mysql:// URL, got {server_url}");
        }
        let db = TestDatabase {
            server,
            name: format!("banter_it_{}", random_hex(16)),
        };
        db.sql(&format!("CREATE DATABASE `{}`", db.name))?;
        Ok(db)
    }

    /// Returns the database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the URL of the database, for `BANTER_STORE__URL`.
    pub fn url(&self) -> String {
        let mut u = self.server.clone();
        u.set_path(&format!("/{}", self.name));
        u.to_string()
    }

    fn sql(&self, statement: &str) -> Result<()> {
        run_client(&self.server, None, statement).map(drop)
    }
}

/// Runs `statement` on `database` of the server at `server_url` (no database in the path) with the
/// `mariadb`/`mysql` client; returns its output: one line per row, tab-separated, no column names.
pub fn query(server_url: &str, database: &str, statement: &str) -> Result<String> {
    let server = Url::parse(server_url)
        .with_context(|| format!("failed to parse the MySQL server URL {server_url}"))?;
    run_client(&server, Some(database), statement)
}

fn run_client(server: &Url, database: Option<&str>, statement: &str) -> Result<String> {
    let host = server.host_str().unwrap_or("127.0.0.1");
    let port = server.port().unwrap_or(3306).to_string();
    let user = percent_decode(server.username());
    let password = percent_decode(server.password().unwrap_or(""));
    let mut last_err = None;
    for client in ["mariadb", "mysql"] {
        let mut cmd = Command::new(client);
        cmd.args([
            "--no-defaults",
            "--protocol=TCP",
            "--batch",
            "--skip-column-names",
            "--connect-timeout=10",
            "-h",
            host,
            "-P",
            &port,
            "-u",
            &user,
        ]);
        if let Some(db) = database {
            cmd.args(["-D", db]);
        }
        let out = cmd
            .arg("-e")
            .arg(statement)
            .env("MYSQL_PWD", &password)
            .output();
        match out {
            Ok(out) if out.status.success() => {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            Ok(out) => bail!(
                "{client} failed ({}) running {statement}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => last_err = Some(e),
        }
    }
    bail!(
        "no mariadb/mysql client binary could be run: {last_err:?} (apt-get install mariadb-client)"
    )
}

/// Longest run of `scripts/mariadb.sh start` or `stop`.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A MariaDB server of one test's own: `scripts/mariadb.sh` with `BANTER_STATE_DIR` a temporary dir
/// and `BANTER_MYSQL_PORT` a free port. It can be stopped and started again (same data). Stopped and
/// its dir removed on drop; a watchdog (`sh` reading a pipe from the test process, as in
/// [`crate::node`]) does the same when the test process is gone however it ended.
pub struct PrivateMariaDb {
    dir: Option<tempfile::TempDir>,
    port: u16,
    watchdog: Option<Child>,
    // Held open: when the test process ends, the watchdog reads EOF and stops the server.
    lifeline: Option<ChildStdin>,
}

impl std::fmt::Debug for PrivateMariaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateMariaDb")
            .field("port", &self.port)
            .field("dir", &self.dir())
            .finish()
    }
}

impl PrivateMariaDb {
    /// Starts a fresh server (initialising its data dir) and waits until it answers; tries a few
    /// ports, as one picked free can be taken before the server binds it.
    pub async fn start() -> Result<PrivateMariaDb> {
        let dir = tempfile::Builder::new()
            .prefix("banter-it-mariadb-")
            .tempdir()
            .context("failed to create the MariaDB state dir")?;
        let script = script_path();
        let lifeline_script = format!(
            "read -r _x; BANTER_STATE_DIR='{dir}' '{script}' stop >/dev/null 2>&1; rm -rf '{dir}'",
            dir = dir.path().display(),
            script = script.display(),
        );
        let (watchdog, lifeline) = crate::watched::spawn_watchdog(&lifeline_script)?;
        let mut db = PrivateMariaDb {
            dir: Some(dir),
            port: 0,
            watchdog: Some(watchdog),
            lifeline,
        };
        let mut last = None;
        for _ in 0..3 {
            db.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .context("failed to find a free port")?
                .port();
            match db.script("start").await {
                Ok(()) => return Ok(db),
                Err(e) => {
                    let _ = db.script("stop").await;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("the private MariaDB never started")))
    }

    /// Returns the server URL without a database, as `BANTER_TEST_MYSQL_URL` names the shared one (for
    /// [`crate::NodeBuilder::mysql`] and [`query`]).
    pub fn url(&self) -> String {
        format!("mysql://banter:banter@127.0.0.1:{}", self.port)
    }

    /// Returns the port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the state dir (data, socket, config, `mariadbd.err`).
    pub fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map_or_else(PathBuf::new, |d| d.path().join("mariadb"))
    }

    /// Stops the server (SIGTERM, waiting until it is gone).
    pub async fn stop(&self) -> Result<()> {
        self.script("stop").await
    }

    /// Starts the server again with its data, on the same port, and waits until it answers.
    pub async fn start_again(&self) -> Result<()> {
        self.script("start").await
    }

    /// Returns the last lines of the server's error log.
    pub fn log_tail(&self) -> String {
        let path = self.dir().join("mariadbd.err");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(30)..].join("\n")
            }
            Err(e) => format!("(no log at {}: {e})", path.display()),
        }
    }

    async fn script(&self, command: &str) -> Result<()> {
        let Some(dir) = self.dir.as_ref() else {
            bail!("the private MariaDB is gone");
        };
        let out = tokio::process::Command::new(script_path())
            .arg(command)
            .env("BANTER_STATE_DIR", dir.path())
            .env("BANTER_MYSQL_PORT", self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(SCRIPT_TIMEOUT, out)
            .await
            .with_context(|| format!("scripts/mariadb.sh {command} took over {SCRIPT_TIMEOUT:?}"))?
            .with_context(|| format!("failed to run scripts/mariadb.sh {command}"))?;
        if !out.status.success() {
            bail!(
                "scripts/mariadb.sh {command} (port {}) failed ({}): {}",
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

fn script_path() -> PathBuf {
    crate::util::manifest_dir().join("../scripts/mariadb.sh")
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- private MariaDB 127.0.0.1:{}: log tail ----\n{}",
                self.port,
                self.log_tail()
            );
        }
        // The watchdog stops the server and removes the dir as soon as its pipe closes; wait for it.
        if let Some(mut lifeline) = self.lifeline.take() {
            let _ = lifeline.write_all(b"\n");
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test database {} kept: the test failed", self.name);
            return;
        }
        if let Err(e) = self.sql(&format!("DROP DATABASE IF EXISTS `{}`", self.name)) {
            eprintln!("warning: could not drop test database {}: {e:#}", self.name);
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
