//! The web app in a real browser: the app's build (`BANTER_WEB_DIST`, made by `scripts/web.sh
//! build`), Debian's Chromium (`BANTER_CHROMIUM`, installed by `scripts/chromium.sh`) and Node.js,
//! which runs the Playwright scripts of `web-angular/e2e/`. Missing, a test skips, or fails when
//! `BANTER_REQUIRE_WEB=1` (as `scripts/test.sh` sets it).
//!
//! A script and the test talk over stdio: every line the script prints is kept (and shown when it
//! fails); a line `@restart` makes the test `kill -9` and restart the node, then answer `restarted`;
//! a line `@feed` starts the replay feed server the test gave (the node's ingest source connects to
//! it), then answers `feed`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use banter_feeds::replay::{ReplayConfig, serve};
use tokio::net::TcpListener;

use crate::Node;
use crate::util::manifest_dir;

/// A replay feed server to start when the script asks (`@feed`): its port is bound already, so
/// the node's source can be configured with it.
pub struct Replay {
    /// The bound port.
    pub listener: TcpListener,
    /// The frames it serves.
    pub frames: Vec<String>,
    /// Pace, drops, repeats.
    pub config: ReplayConfig,
}

/// What the browser tests need.
#[derive(Debug, Clone)]
pub struct WebApp {
    /// The app's build: the node's `http.web_dir`.
    pub dist: PathBuf,
    /// The browser.
    pub chromium: PathBuf,
    /// Where the scripts save their screenshots (outside the repo).
    pub screenshots: PathBuf,
    /// Where the scripts write their reports (`lighthouse.json`), which the test command prints.
    pub reports: PathBuf,
}

impl WebApp {
    /// The build, browser and Node.js, or `None` (with a notice) when one is missing and not
    /// required; panics when one is missing and `BANTER_REQUIRE_WEB=1`.
    pub fn or_skip(test: &str) -> Option<WebApp> {
        match Self::find() {
            Ok(app) => Some(app),
            Err(e) if std::env::var("BANTER_REQUIRE_WEB").as_deref() == Ok("1") => {
                panic!("{test}: {e:#} but BANTER_REQUIRE_WEB=1 (scripts/test.sh prepares them)")
            }
            Err(e) => {
                eprintln!("SKIP {test}: {e:#}");
                None
            }
        }
    }

    fn find() -> Result<WebApp> {
        let dist = PathBuf::from(std::env::var_os("BANTER_WEB_DIST").context(
            "BANTER_WEB_DIST (the web app's build, from scripts/web.sh build) is not set",
        )?);
        if !dist.join("index.html").is_file() {
            bail!("{} has no index.html", dist.display());
        }
        let chromium = PathBuf::from(
            std::env::var_os("BANTER_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
        );
        if !chromium.is_file() {
            bail!(
                "no browser at {} (scripts/chromium.sh install)",
                chromium.display()
            );
        }
        let node = std::process::Command::new("node")
            .arg("--version")
            .output()
            .context("node (Node.js) is not on the PATH")?;
        if !node.status.success() {
            bail!("node --version failed");
        }
        let cache = || -> Result<PathBuf> {
            Ok(
                PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
                    .join(".cache/banter"),
            )
        };
        let screenshots = match std::env::var_os("BANTER_SCREENSHOTS") {
            Some(dir) => PathBuf::from(dir),
            None => cache()?.join("screenshots"),
        };
        let reports = match std::env::var_os("BANTER_REPORTS") {
            Some(dir) => PathBuf::from(dir),
            None => cache()?.join("reports"),
        };
        Ok(WebApp {
            dist,
            chromium,
            screenshots,
            reports,
        })
    }

    /// Runs `web-angular/e2e/<script>` against `node` (restarting it when asked) within `limit`;
    /// its output when it failed.
    pub async fn run(
        &self,
        script: &str,
        node: &mut Node,
        feed: Option<Replay>,
        limit: Duration,
    ) -> Result<Vec<String>> {
        self.run_with(script, node, feed, &[], limit).await
    }

    /// [`WebApp::run`] with more variables for the script (a second node's URL).
    pub async fn run_with(
        &self,
        script: &str,
        node: &mut Node,
        mut feed: Option<Replay>,
        env: &[(&str, String)],
        limit: Duration,
    ) -> Result<Vec<String>> {
        let (_stop_feed, feed_stopped) = tokio::sync::watch::channel(false);
        let path = manifest_dir().join("../web-angular/e2e").join(script);
        let mut child = Command::new("node")
            .arg(&path)
            .env("BANTER_BASE_URL", node.base_url())
            .env("BANTER_CHROMIUM", &self.chromium)
            .env("BANTER_SCREENSHOTS", &self.screenshots)
            .env("BANTER_REPORTS", &self.reports)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to run node {}", path.display()))?;
        let mut stdin = child.stdin.take().context("no stdin")?;
        let mut out = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let stderr = child.stderr.take().context("no stderr")?;
        let errors = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut kept = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                kept.push(line);
            }
            kept
        });
        let mut seen = Vec::new();
        let talk = async {
            while let Some(line) = out.next_line().await? {
                if line == "@restart" {
                    node.kill9();
                    node.restart().await.context("restarting the node")?;
                    stdin.write_all(b"restarted\n").await?;
                    stdin.flush().await?;
                } else if line == "@feed" {
                    let Replay {
                        listener,
                        frames,
                        config,
                    } = feed
                        .take()
                        .context("the script asked for a feed the test has not")?;
                    tokio::spawn(serve(listener, frames, config, feed_stopped.clone()));
                    stdin.write_all(b"feed\n").await?;
                    stdin.flush().await?;
                }
                seen.push(line);
            }
            anyhow::Ok(child.wait().await?)
        };
        let status = match tokio::time::timeout(limit, talk).await {
            Ok(status) => status?,
            Err(_) => {
                child.kill().await.ok();
                bail!(
                    "{script} did not finish within {limit:?}; its output:\n{}",
                    seen.join("\n")
                );
            }
        };
        let errors = errors.await.unwrap_or_default();
        if !status.success() || seen.last().map(String::as_str) != Some("ok") {
            bail!(
                "{script} failed ({status}); its output:\n{}\n{}",
                seen.join("\n"),
                errors.join("\n")
            );
        }
        Ok(seen)
    }
}
