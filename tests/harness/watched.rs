//! A child process that never outlives the test run: a watchdog `sh` reads a pipe whose only writer is
//! the test process, so `read` returns when the test process is gone (however it ended), and then
//! kills the child and removes its directory.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result};

/// A spawned child and its watchdog.
pub struct Watched {
    /// The process itself.
    pub child: Child,
    watchdog: Child,
    // Held open: when the test process ends, the watchdog reads EOF and kills the child.
    _lifeline: Option<ChildStdin>,
}

impl Watched {
    /// Sends `signal` (as `kill` spells it: `-STOP`, `-CONT`, ...) to the process.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args([signal, &pid])
            .status()?
            .success();
        anyhow::ensure!(ok, "kill {signal} {pid} failed");
        Ok(())
    }

    /// Spawns `cmd` (its binary `bin`, for the error) and a watchdog that kills it and removes `dir`
    /// once the test process has gone (waiting a bounded time for the kernel to reap it).
    pub fn spawn(cmd: &mut Command, bin: &Path, dir: &Path) -> Result<Watched> {
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to spawn {}", bin.display()))?;
        let pid = child.id();
        let script = format!(
            "read -r _x; kill -9 {pid} 2>/dev/null; i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -rf '{}'",
            dir.display()
        );
        let (watchdog, lifeline) = spawn_watchdog(&script)?;
        Ok(Watched {
            child,
            watchdog,
            _lifeline: lifeline,
        })
    }

    /// Kills the child with SIGKILL, waits for it, and retires the watchdog.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.retire();
    }

    /// Retires the watchdog of a child that is gone (or being handled by the caller).
    pub fn retire(mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// Spawns a watchdog `sh` running `script`, which starts with `read`: returns it and the write end of
/// its stdin, the lifeline to hold open while the test process lives.
pub fn spawn_watchdog(script: &str) -> Result<(Child, Option<ChildStdin>)> {
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("failed to spawn the watchdog shell")?;
    let lifeline = watchdog.stdin.take();
    Ok((watchdog, lifeline))
}
