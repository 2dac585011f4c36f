//! Lighthouse on the web app (issue #22), in a test binary of its own: cargo runs test binaries one
//! after another, so no other test loads the machine while Lighthouse times the pages (its
//! performance score counts CPU time).

use std::time::Duration;

use banter_tests::NodeBuilder;
use banter_tests::browser::WebApp;

/// Lighthouse (`web-angular/e2e/lighthouse.mjs`, npm `lighthouse` 12.2.3 in Debian's Chromium) on
/// the login page and a signed-in chat view: accessibility ≥ 95, best practices ≥ 95, performance
/// ≥ 90 under its default mobile profile. The scores go to `$BANTER_REPORTS/lighthouse.json`, which
/// the test command prints.
#[tokio::test]
async fn lighthouse_scores_the_login_page_and_the_chat_view_above_the_targets() {
    let Some(app) = WebApp::or_skip("lighthouse") else {
        return;
    };
    let mut node = NodeBuilder::new("lighthouse")
        .env("BANTER_HTTP__WEB_DIR", app.dist.display())
        .start()
        .await
        .expect("node");
    let outcome = app
        .run("lighthouse.mjs", &mut node, None, Duration::from_secs(300))
        .await;
    node.check(outcome);
}
