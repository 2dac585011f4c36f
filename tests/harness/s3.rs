//! A real S3 server per test: s3s-fs 0.14.1 (ARCHITECTURE.md section 9) on a free port of
//! 127.0.0.1, storing into its own temporary dir. It checks signatures, expiries and POST
//! policies as S3 does, so forged or stale forms and URLs are refused by the server itself.
//!
//! The binary is `BANTER_S3S_BIN`, else `$HOME/.cache/banter/tools/bin/s3s-fs` (`scripts/s3.sh
//! install` builds it there); missing, a test skips, or fails when `BANTER_REQUIRE_S3=1` (as
//! `scripts/test.sh` sets it). The process is killed on drop and by its watchdog when the test
//! process is gone ([`crate::watched`]).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::node::free_port;
use crate::tools::{Tool, current_test};
use crate::watched::Watched;

/// The s3s-fs binary.
pub const S3S: Tool = Tool {
    var: "BANTER_S3S_BIN",
    file: "s3s-fs",
    require_var: "BANTER_REQUIRE_S3",
    script: "scripts/s3.sh",
};

/// The credentials of every test server.
pub const ACCESS_KEY: &str = "banter-test";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "banter-test-secret";

/// Longest wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running s3s-fs.
pub struct S3Server {
    port: u16,
    dir: tempfile::TempDir,
    proc: Option<Watched>,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("port", &self.port)
            .finish()
    }
}

impl S3Server {
    /// Starts a server for the current test, or returns `None` (after a skip notice) when s3s-fs
    /// is missing and not required.
    pub async fn start() -> Result<Option<S3Server>> {
        let Some(bin) = S3S.bin_or_skip(&current_test("s3 test")) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("banter-it-s3-")
            .tempdir()
            .context("failed to create the S3 server's dir")?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(dir.path().join("s3s-fs.log"))?;
        let port = free_port()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&data)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let proc = Watched::spawn(&mut cmd, &bin, dir.path())?;
        let mut server = S3Server {
            port,
            dir,
            proc: Some(proc),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = server.proc.as_mut().and_then(|p| p.child.try_wait().ok()?) {
                bail!("s3s-fs exited ({status}): {}", server.log());
            }
            if Instant::now() >= deadline {
                bail!("s3s-fs did not listen on {port}: {}", server.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(server))
    }

    /// The endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder of `bucket`'s objects on disk.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.dir.path().join("data").join(bucket)
    }

    /// The node settings (`BANTER_…` variables) of a blob store in `bucket` on this server.
    pub fn node_env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("BANTER_MEDIA__KIND", "s3".into()),
            ("BANTER_MEDIA__S3__ENDPOINT", self.endpoint()),
            ("BANTER_MEDIA__S3__BUCKET", bucket.into()),
            ("BANTER_MEDIA__S3__ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("BANTER_MEDIA__S3__SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("s3s-fs.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill9();
        }
    }
}

/// Posts an upload form as a browser does: a `multipart/form-data` POST to `url` of `fields`, in
/// order, then `file` as the last part, named `file`. Returns the status, or 0 when the server
/// closed the connection before answering (an S3 server may, on an upload it refuses).
pub async fn post_form(url: &str, fields: &[(String, String)], file: Vec<u8>) -> Result<u16> {
    use reqwest::multipart::{Form, Part};
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    let part = Part::bytes(file)
        .file_name("upload.bin")
        .mime_str("application/octet-stream")?;
    form = form.part("file", part);
    match reqwest::Client::new()
        .post(url)
        .multipart(form)
        .send()
        .await
    {
        Ok(answer) => Ok(answer.status().as_u16()),
        Err(e) if e.is_request() || e.is_body() => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Whether an upload's status says the store refused it: a 4xx, or the connection closed.
pub fn refused(status: u16) -> bool {
    status == 0 || (400..500).contains(&status)
}
