//! A stock STOMP client: `stomp.py` (PyPI) over WebSocket, run by `tests/python/stomp_py_check.py`
//! with the interpreter of the venv that `scripts/test.sh` prepares (`BANTER_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::stomp::{header, header_u64, room_dest};
use banter_tests::{Node, StompClient, shared_node, unique};

/// Python interpreter with `stomp.py` installed.
pub(super) const PYTHON_VAR: &str = "BANTER_PYTHON";
/// When `1`, a missing interpreter fails the test instead of skipping it.
pub(super) const REQUIRE_VAR: &str = "BANTER_REQUIRE_PY";

pub(super) fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(PYTHON_VAR).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = Path::new(&std::env::var_os("HOME")?).join(".cache/banter/venv/bin/python");
    default.is_file().then_some(default)
}

#[tokio::test]
async fn stomp_py_round_trip() {
    let Some(python) = python() else {
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!("{PYTHON_VAR} is unset and {REQUIRE_VAR}=1 (scripts/test.sh prepares the venv)");
        }
        eprintln!("SKIPPED stomp_py_round_trip: {PYTHON_VAR} is unset (run scripts/test.sh)");
        return;
    };
    let node = shared_node().await.expect("shared node");
    node.check(round_trip(node, &python).await);
}

async fn round_trip(node: &Node, python: &Path) -> Result<()> {
    let api = node.api();
    let py_user = api.new_user("stomppy").await?;
    let rust_user = api.new_user("rusty").await?;
    let room = api.create_room(&py_user.token, &unique("py")).await?.id;
    api.join(&rust_user.token, room).await?;
    let mut rust_c = StompClient::connect(&node.ws_url(), &rust_user.token).await?;
    rust_c.subscribe(&room_dest(room), "py", None).await?;

    let body = format!("hello from stomp.py {}", unique("m"));
    let script = banter_tests::util::manifest_dir().join("python/stomp_py_check.py");
    let child = tokio::process::Command::new(python)
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", &node.port().to_string()])
        .args([
            "--token",
            &py_user.token,
            "--room",
            &room.to_string(),
            "--body",
            &body,
        ])
        .args(["--timeout", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to run {} {}", python.display(), script.display()))?;
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("stomp_py_check.py did not finish within 60 s")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "stomp_py_check.py failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );

    // The message stomp.py sent reached a Rust client too, with the sender taken from the token.
    let m = rust_c.recv_message("py").await?;
    ensure!(m.body.as_ref() == body.as_bytes(), "rust client got {m:?}");
    ensure!(
        header(&m, "sender-id") == Some(py_user.id.to_string().as_str()),
        "sender-id of {m:?}"
    );
    let seq = header_u64(&m, "seq").context("seq")?;
    ensure!(
        stdout.contains(&format!("seq={seq}")),
        "stomp.py saw the same seq {seq}: {stdout}"
    );
    Ok(())
}
