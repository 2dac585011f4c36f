//! The web app at `/` (issue #22): a node serves its build's files, routes every other path to
//! `index.html` (the app routes it), caches hashed assets for good and nothing else, keeps
//! requests inside the folder, and leaves the API's JSON errors alone. Without a build, `/` says how
//! to make one. A client that accepts Brotli gets a file's precompressed copy.

use anyhow::{Context, Result, ensure};
use banter_tests::{Node, NodeBuilder, shared_node};

const INDEX: &str = "<!doctype html><title>Banter</title><app-root>index marker</app-root>";
const SCRIPT: &str = "console.log('main');";
/// Stands for the script's Brotli copy: the node sends the sibling's bytes as they are.
const BROTLI: &[u8] = b"\x1b\x13\x00brotli-bytes";

#[tokio::test]
async fn a_build_is_served_with_its_routes_and_cache_headers() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("index.html"), INDEX).expect("index");
    std::fs::write(dir.path().join("main-5NJ2XMEF.js"), SCRIPT).expect("script");
    std::fs::write(dir.path().join("main-5NJ2XMEF.js.br"), BROTLI).expect("its Brotli copy");
    std::fs::create_dir(dir.path().join("media")).expect("media");
    std::fs::write(dir.path().join("media/logo.svg"), "<svg/>").expect("logo");
    let node = NodeBuilder::new("web")
        .env("BANTER_HTTP__WEB_DIR", dir.path().display())
        .start()
        .await
        .expect("node");
    node.check(built(&node).await);
}

/// GET `path`: status, content type, cache control, body.
async fn get(node: &Node, path: &str) -> Result<(u16, String, String, String)> {
    let api = node.api();
    let r = api.http().get(api.url(path)).send().await?;
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (status, ty, cache) = (
        r.status().as_u16(),
        header("content-type"),
        header("cache-control"),
    );
    Ok((status, ty, cache, r.text().await?))
}

async fn built(node: &Node) -> Result<()> {
    for path in ["/", "/index.html", "/rooms/12", "/login?next=%2Frooms"] {
        let (status, ty, cache, body) = get(node, path).await?;
        ensure!(
            status == 200 && ty.starts_with("text/html") && body == INDEX && cache == "no-cache",
            "{path}: {status} {ty} {cache} {body}"
        );
    }
    let (status, ty, cache, body) = get(node, "/main-5NJ2XMEF.js").await?;
    ensure!(
        status == 200
            && ty.contains("javascript")
            && cache == "public, max-age=31536000, immutable"
            && body == SCRIPT,
        "hashed asset: {status} {ty} {cache}"
    );
    // A client that takes Brotli gets the precompressed copy, marked as such; others the file.
    let api = node.api();
    let r = api
        .http()
        .get(api.url("/main-5NJ2XMEF.js"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await?;
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (encoding, vary, ty) = (
        header("content-encoding"),
        header("vary"),
        header("content-type"),
    );
    let (status, body) = (r.status().as_u16(), r.bytes().await?);
    ensure!(
        status == 200
            && encoding == "br"
            && vary.to_ascii_lowercase().contains("accept-encoding")
            && ty.contains("javascript")
            && &body[..] == BROTLI,
        "precompressed: {status} {encoding} {vary} {ty}"
    );
    let (status, ty, cache, _) = get(node, "/media/logo.svg").await?;
    ensure!(
        status == 200 && ty.starts_with("image/svg") && cache == "no-cache",
        "plain asset: {status} {ty} {cache}"
    );
    // Nothing outside the folder: a climb is the app's page at most.
    for path in [
        "/..%2f..%2fCargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/media/..%2f..%2f..%2fetc/hosts",
    ] {
        let (_, _, _, body) = get(node, path).await?;
        ensure!(
            body == INDEX || body.contains("\"not_found\""),
            "{path} served {body:.80}"
        );
    }
    // The API keeps its own answers.
    let (status, ty, _, body) = get(node, "/api/no-such-thing").await?;
    ensure!(
        status == 404 && ty.starts_with("application/json") && body.contains("\"not_found\""),
        "unknown API path: {status} {ty} {body}"
    );
    let (status, ty, _, _) = get(node, "/api/openapi.json").await?;
    ensure!(
        status == 200 && ty.starts_with("application/json"),
        "openapi: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_build_the_root_says_how_to_make_one() {
    let node = shared_node().await.expect("shared node");
    node.check(
        async {
            let (status, ty, _, body) = get(node, "/").await?;
            ensure!(
                status == 200 && ty.starts_with("text/html") && body.contains("http.web_dir"),
                "/: {status} {ty}"
            );
            let (status, _, _, body) = get(node, "/rooms/12").await?;
            ensure!(
                status == 404 && body.contains("\"not_found\""),
                "{status} {body}"
            );
            Ok(())
        }
        .await
        .context("no build"),
    );
}

/// The app's budget (issue #22): the JavaScript a first visit loads before it can render — the
/// scripts `index.html` names and preloads — is at most 350 kB compressed (the gzip copies the
/// build ships, which the node serves).
#[test]
fn the_apps_initial_javascript_is_at_most_350_kb_compressed() {
    let Some(app) = banter_tests::browser::WebApp::or_skip("initial javascript budget") else {
        return;
    };
    let index = std::fs::read_to_string(app.dist.join("index.html")).expect("index.html");
    let mut total = 0;
    let mut scripts = Vec::new();
    for part in index.split(['"', '\'']) {
        if part.ends_with(".js") && !part.contains('/') && !scripts.contains(&part) {
            scripts.push(part);
        }
    }
    assert!(
        scripts.iter().any(|s| s.starts_with("main-")),
        "index.html names no main script: {scripts:?}"
    );
    for script in &scripts {
        let gz = app.dist.join(format!("{script}.gz"));
        total += std::fs::metadata(&gz)
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/web.sh build makes it)", gz.display()))
            .len();
    }
    eprintln!(
        "initial JavaScript: {} scripts, {total} bytes gzip",
        scripts.len()
    );
    assert!(
        total <= 350 * 1000,
        "initial JavaScript is {total} bytes gzip: {scripts:?}"
    );
}
