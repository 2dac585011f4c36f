//! The REST API against its own OpenAPI document: `schemathesis` (PyPI), from the venv that
//! `scripts/test.sh` prepares (`BANTER_PYTHON`), runs every check it has over every operation of
//! `/api/openapi.json` with a user's bearer token. A failure means the document and the handlers
//! disagree: a constraint the schema states and the handler does not enforce (or the reverse), an
//! answer the schema does not list, a body that does not match its schema.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use banter_tests::{Node, NodeBuilder};

use super::third_party::{PYTHON_VAR, REQUIRE_VAR, python};

/// Test cases per operation and phase: the run stays near 20 s on 2 cores.
const MAX_EXAMPLES: &str = "30";
/// Fixed, so that a failure reproduces with the same inputs.
const SEED: &str = "17";

#[tokio::test]
async fn openapi_document_matches_the_handlers() {
    let Some(python) = python() else {
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!("{PYTHON_VAR} is unset and {REQUIRE_VAR}=1 (scripts/test.sh prepares the venv)");
        }
        eprintln!("SKIPPED openapi_document_matches_the_handlers: {PYTHON_VAR} is unset");
        return;
    };
    let cli = python.with_file_name("schemathesis");
    if !cli.is_file() {
        if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
            panic!("{} is missing (scripts/test.sh installs it)", cli.display());
        }
        eprintln!("SKIPPED openapi_document_matches_the_handlers: no schemathesis in the venv");
        return;
    }
    // A node of its own: the run registers users, logs out and spends budgets by the hundred.
    let node = NodeBuilder::new("contract").start().await.expect("node");
    node.check(run_schemathesis(&node, &python, &cli).await);
}

async fn run_schemathesis(node: &Node, python: &Path, cli: &Path) -> Result<()> {
    let user = node.api().new_user("contract").await?;
    let work = tempfile::tempdir().context("failed to create a work dir")?;
    let started = Instant::now();
    let child = tokio::process::Command::new(python)
        .arg(cli)
        .arg("run")
        .arg(format!("{}/api/openapi.json", node.base_url()))
        // Every check, none excluded: each applies to this API.
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {}", user.token)])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--generation-database", "none"])
        .args(["--request-timeout", "10", "--no-color"])
        .current_dir(work.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("failed to run {} {}", python.display(), cli.display()))?;
    let out = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .context("schemathesis did not finish within 240 s")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "schemathesis found contract failures ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    eprintln!(
        "schemathesis passed in {:.1?}: {}",
        started.elapsed(),
        stdout
            .lines()
            .rev()
            .find(|l| l.contains("passed"))
            .unwrap_or("")
    );
    Ok(())
}
