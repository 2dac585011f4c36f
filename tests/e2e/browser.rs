//! The web app in a real browser (issue #22): Debian's Chromium, driven by Playwright
//! (`web-angular/e2e/browser.mjs`), against a real node serving the app's build at `/`.
//!
//! Two people, one at a desktop width and one at a phone's (375 px): the login page refuses a
//! wrong password next to the form; both register (the username check says a taken name is taken);
//! one finds the other and opens a DM; messages go both ways live, with the unread count, the
//! newest message and the presence dot in the room list, "typing…" and "Seen by"; 70 more
//! messages, then a reload scrolls back through history to the first, each message once; an edit
//! and a delete show on the other side; the node is killed (`kill -9`) and restarted, both pages
//! reconnect, and what is sent then arrives once; the profile's display name changes. Screenshots
//! of each screen go to `$BANTER_SCREENSHOTS` (default `~/.cache/banter/screenshots`).

use std::time::Duration;

use banter_tests::NodeBuilder;
use banter_tests::browser::WebApp;

#[tokio::test]
async fn two_people_chat_in_the_browser_across_a_restart_of_the_node() {
    let Some(app) = WebApp::or_skip("browser chat") else {
        return;
    };
    let mut node = NodeBuilder::new("browser")
        .env("BANTER_HTTP__WEB_DIR", app.dist.display())
        .start()
        .await
        .expect("node");
    let outcome = app
        .run("browser.mjs", &mut node, Duration::from_secs(240))
        .await;
    node.check(outcome);
}
