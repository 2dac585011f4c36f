//! Real `banter` processes: the binary (built once per run), [`NodeBuilder`], [`Node`] and the
//! [`shared_node`].
//!
//! A node gets a free port on 127.0.0.1, a temporary data dir (its log is `node.log` there) and its own
//! store: SQLite in the data dir, or a fresh MySQL database — or the MySQL database of another node,
//! as a second node of its cluster ([`NodeBuilder::same_database_as`]). It is configured only through `BANTER_*`
//! environment variables; the test process's own `BANTER_*` variables are never passed on (the node's
//! config refuses unknown keys such as `BANTER_TEST_MYSQL_URL`).
//!
//! Processes never outlive the test run: [`Node`] kills its process on drop, and every process has a
//! watchdog (`sh` reading a pipe from the test process) that kills it when the test process is gone
//! however it ended — the [`shared_node`] lives in a static and is never dropped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::sync::OnceCell;

use crate::mysql::{self, TestDatabase};
use crate::watched::Watched;

/// Variable that names a prebuilt `banter` binary, skipping the build.
pub const BIN_VAR: &str = "BANTER_BIN";
/// Longest wait for a node to answer `GET /healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for `cargo build` of the binary (a cold build of the node on 2 cores).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1500);
/// Lines of the node log printed when something fails.
const LOG_TAIL_LINES: usize = 80;

/// Settings every node gets unless the test overrides them: auth and send limits high enough that
/// tests sharing a node (all from 127.0.0.1) never trip them by accident.
const DEFAULT_ENV: &[(&str, &str)] = &[
    ("BANTER_LIMITS__AUTH_PER_MINUTE", "1000000"),
    ("BANTER_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE", "1000000"),
    ("BANTER_LIMITS__SEND_PER_SECOND", "1000000"),
    ("BANTER_LIMITS__SEND_BURST", "1000000"),
];

/// Returns the path of the `banter` binary: `BANTER_BIN` when set, else the one next to this test
/// executable's profile dir, built once per run with `cargo build -p banter-node --bin banter` in the
/// same profile and target dir.
pub fn banter_bin() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| locate_or_build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

fn locate_or_build() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(BIN_VAR) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("{BIN_VAR}={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    let exe = std::env::current_exe().context("failed to find the test executable")?;
    // target/<profile>/deps/integration-<hash>, or target/<profile>/<name> for a binary using the lib.
    let mut profile_dir = exe.parent().context("test executable has no parent dir")?;
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir.parent().context("deps dir has no parent")?;
    }
    let target_dir = profile_dir.parent().context("profile dir has no parent")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("profile dir has no name")?
        .to_owned();
    let manifest = crate::util::manifest_dir().join("..").join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", "banter-node", "--bin", "banter"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to run {cargo:?} build"))?;
    // Drain the pipes in threads so a chatty build cannot block on a full pipe.
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > BUILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("cargo build of banter took longer than {BUILD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if !status.success() {
        bail!("cargo build -p banter-node --bin banter failed ({status}):\n{out}\n{err}");
    }
    let bin = profile_dir.join("banter");
    if !bin.is_file() {
        bail!("cargo build succeeded but {} does not exist", bin.display());
    }
    Ok(bin)
}

fn drain<R: std::io::Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

/// Returns the node shared by every test that needs no config of its own (SQLite store, default
/// settings but high auth/send limits). Started on first use; lives until the test process ends.
/// Tests on it isolate themselves with unique usernames and room names.
pub async fn shared_node() -> Result<&'static Node> {
    static SHARED: OnceCell<Node> = OnceCell::const_new();
    SHARED
        .get_or_try_init(|| NodeBuilder::new("shared").start())
        .await
}

/// Which store a node uses.
#[derive(Clone, Debug)]
enum StoreChoice {
    Sqlite,
    /// A fresh database on the server at this URL.
    Mysql(String),
    /// The database of another node: its URL and name (`None`: that node has none).
    SameAs(Option<(String, String)>),
}

/// Configures and starts a [`Node`].
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    name: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    store: StoreChoice,
}

impl NodeBuilder {
    /// Starts a description of a node; `name` shows in logs and error messages.
    pub fn new(name: &str) -> Self {
        NodeBuilder {
            name: name.to_owned(),
            env: Vec::new(),
            args: Vec::new(),
            store: StoreChoice::Sqlite,
        }
    }

    /// Sets a `BANTER_*` variable (overrides the harness defaults), e.g.
    /// `.env("BANTER_ROOMS__RING_SIZE", "16")`.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    /// Passes a command-line argument to `banter` (for the flags with no `BANTER_*` variable, such
    /// as `--log-format json`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Uses a fresh database on the MySQL server at `server_url` (see [`mysql::server_url_or_skip`]).
    pub fn mysql(mut self, server_url: &str) -> Self {
        self.store = StoreChoice::Mysql(server_url.to_owned());
        self
    }

    /// Uses the MySQL database of `other` (a node started with [`NodeBuilder::mysql`]): the two are
    /// nodes of one cluster. The database stays `other`'s, dropped with it. Starting fails when
    /// `other` has no MySQL database.
    pub fn same_database_as(mut self, other: &Node) -> Self {
        let db = other.db.as_ref().map(|d| (d.url(), d.name().to_owned()));
        self.store = StoreChoice::SameAs(db);
        self
    }

    /// Spawns the node and waits until it answers `GET /healthz`.
    pub async fn start(self) -> Result<Node> {
        let bin = tokio::task::spawn_blocking(banter_bin).await??;
        let dir = tempfile::Builder::new()
            .prefix(&format!("banter-it-{}-", self.name))
            .tempdir()
            .context("failed to create the node's data dir")?;
        let (db, shared) = match &self.store {
            StoreChoice::Sqlite => (None, None),
            StoreChoice::Mysql(url) => {
                let url = url.clone();
                let db = tokio::task::spawn_blocking(move || TestDatabase::create(&url)).await??;
                (Some(db), None)
            }
            StoreChoice::SameAs(Some(shared)) => (None, Some(shared.clone())),
            StoreChoice::SameAs(None) => {
                bail!(
                    "node {}: the node whose database it shares has none",
                    self.name
                )
            }
        };
        let mut env: Vec<(String, String)> = DEFAULT_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.extend(self.env);
        let mut node = Node {
            name: self.name,
            bin,
            port: 0,
            log_path: dir.path().join("node.log"),
            dir: Some(dir),
            env,
            args: self.args,
            store_url: None,
            db,
            proc: None,
            log_printed: std::sync::atomic::AtomicBool::new(false),
            mysql_name: None,
        };
        match (&node.db, shared) {
            (Some(db), _) => {
                node.store_url = Some(db.url());
                node.mysql_name = Some(db.name().to_owned());
            }
            (None, Some((url, name))) => {
                node.store_url = Some(url);
                node.mysql_name = Some(name);
            }
            (None, None) => {}
        }
        // A port picked free can be taken before the node binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            node.port = free_port()?;
            match node.spawn_and_wait().await {
                Ok(()) => return Ok(node),
                Err(e) => {
                    node.stop();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("node never started")))
    }
}

/// Returns a TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("failed to bind a free port")?;
    Ok(l.local_addr()?.port())
}

/// A running `banter` process. Killed (SIGKILL) on drop; its data dir is removed then, unless the
/// test is panicking, in which case the dir is kept and the log tail printed.
pub struct Node {
    name: String,
    bin: PathBuf,
    port: u16,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// `BANTER_STORE__URL`: the node's MySQL database, its own or another node's.
    store_url: Option<String>,
    /// The MySQL database this node created (and drops).
    db: Option<TestDatabase>,
    proc: Option<Watched>,
    log_printed: std::sync::atomic::AtomicBool,
    mysql_name: Option<String>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("data_dir", &self.data_dir())
            .finish()
    }
}

impl Node {
    /// Returns `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Returns `ws://127.0.0.1:PORT/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// Process id of the running node, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    /// Returns the port the node listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the node's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map_or_else(PathBuf::new, |d| d.path().to_owned())
    }

    /// Returns the name of the node's MySQL database (its own or the one it shares), if it has one.
    pub fn mysql_database(&self) -> Option<&str> {
        self.mysql_name.as_deref()
    }

    /// Returns a REST client for this node.
    pub fn api(&self) -> crate::Api {
        crate::Api::new(&self.base_url())
    }

    /// Returns the resident memory of the node's process in bytes (from `/proc`).
    pub fn rss_bytes(&self) -> Result<u64> {
        let pid = self.pid().context("node has no pid")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmRSS in /proc/PID/status")?;
        Ok(kib * 1024)
    }

    /// Returns the sum of every series of metric `name` in `GET /metrics` (`None`: no series yet).
    pub async fn metric_sum(&self, name: &str) -> Result<Option<f64>> {
        self.metric_matching(name, "").await
    }

    /// Returns the sum of the series of metric `name` whose line contains `labels` (such as
    /// `state="up"`; empty: every series), `None` when there is none.
    pub async fn metric_matching(&self, name: &str, labels: &str) -> Result<Option<f64>> {
        let api = self.api();
        let text = api
            .http()
            .get(api.url("/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut sum = None;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with('{') || rest.starts_with(' ')) || !rest.contains(labels) {
                continue;
            }
            let value: f64 = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("unparsable metric line {line:?}"))?;
            *sum.get_or_insert(0.0) += value;
        }
        Ok(sum)
    }

    /// Returns the value of `r`, or panics with its error and this node's log tail (and, for a node
    /// that is dropped by the panic, keeps its data dir). Tests end with
    /// `node.check(scenario(&node).await)` so a failure shows what the node logged.
    #[track_caller]
    pub fn check<T>(&self, r: Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.log_printed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                panic!(
                    "{e:#}\n---- node {} (port {}, data dir {}) log tail ----\n{}",
                    self.name,
                    self.port,
                    self.data_dir().display(),
                    self.log_tail()
                )
            }
        }
    }

    /// Returns the last lines of the node's log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, LOG_TAIL_LINES)
    }

    /// Returns the node's whole log (its standard output and error, and the harness's lines).
    pub fn log(&self) -> Result<String> {
        let bytes = std::fs::read(&self.log_path)
            .with_context(|| format!("failed to read {}", self.log_path.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub fn kill9(&mut self) {
        self.stop();
    }

    /// Freezes the process with SIGSTOP (a long pause: it holds its sockets and answers nothing)
    /// until [`Node::thaw`].
    pub fn freeze(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Resumes a frozen process with SIGCONT.
    pub fn thaw(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        self.proc
            .as_ref()
            .context("the node is not running")?
            .signal(signal)
    }

    /// Stops the process with SIGTERM (a graceful stop) and waits, at most `within`, for it to exit;
    /// returns its exit status. Past `within` it is killed and this fails.
    pub async fn terminate(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        let Some(mut p) = self.proc.take() else {
            bail!("node is not running");
        };
        let pid = p.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + within;
        let outcome = loop {
            if let Some(status) = p.child.try_wait()? {
                break Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = p.child.kill();
                let _ = p.child.wait();
                break Err(anyhow!(
                    "node {} did not exit within {within:?} of SIGTERM; log tail:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        p.retire();
        outcome
    }

    /// Starts the process again with the same data dir, port, store and settings, and waits until it
    /// answers `GET /healthz`.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn_and_wait().await
    }

    fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill9();
        }
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.spawn()?;
        self.wait_ready().await.with_context(|| {
            format!(
                "node {} (port {}) did not become ready; data dir {}; log tail:\n{}",
                self.name,
                self.port,
                self.data_dir().display(),
                self.log_tail()
            )
        })
    }

    fn spawn(&mut self) -> Result<()> {
        let data_dir = self.data_dir();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("failed to open {}", self.log_path.display()))?;
        writeln!(
            log,
            "==== harness: starting node {} on 127.0.0.1:{} ====",
            self.name, self.port
        )?;
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BANTER_") {
                cmd.env_remove(k);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        // The log goes to a file: no colour codes.
        cmd.env("NO_COLOR", "1");
        cmd.env("BANTER_HTTP__LISTEN", format!("127.0.0.1:{}", self.port))
            .env("BANTER_DATA_DIR", &data_dir);
        if let Some(url) = &self.store_url {
            cmd.env("BANTER_STORE__URL", url);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .current_dir(&data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.proc = Some(Watched::spawn(&mut cmd, &self.bin, &data_dir)?);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/healthz", self.base_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(p) = self.proc.as_mut() {
                if let Some(status) = p.child.try_wait()? {
                    bail!("node exited during start-up ({status})");
                }
            } else {
                bail!("node is not running");
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("GET /healthz did not answer 200 within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let kept = self.dir.take().map(tempfile::TempDir::keep);
            let tail = if self.log_printed.load(std::sync::atomic::Ordering::Relaxed) {
                String::from("(printed above)")
            } else {
                log_tail(&self.log_path, LOG_TAIL_LINES)
            };
            eprintln!(
                "---- node {} (port {}{}): data dir kept at {}; log tail ----\n{tail}",
                self.name,
                self.port,
                self.mysql_name
                    .as_ref()
                    .map_or(String::new(), |d| format!(", mysql db {d} kept")),
                kept.as_deref().unwrap_or(Path::new("?")).display(),
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

/// Re-exported so tests can write `node::mysql_url_or_skip`.
pub use mysql::server_url_or_skip as mysql_url_or_skip;
