//! The web app in a real browser (issue #22): Debian's Chromium, driven by Playwright
//! (`web-angular/e2e/browser.mjs`), against a real node serving the app's build at `/`.
//!
//! Two people, one at a desktop width and one at a phone's (375 px): the login page refuses a
//! wrong password next to the form; both register (the username check says a taken name is taken);
//! one finds the other and opens a DM; messages go both ways live, with the unread count, the
//! newest message and the presence dot in the room list, "typing…" and "Seen by"; 70 more
//! messages, then a reload scrolls back through history to the first, each message once; an edit
//! and a delete show on the other side; an image goes up with a progress bar and shows on the
//! other side at its size before it loads, then loads; the earthquake feed (the replay server
//! serving the EMSC fixture) fills the feed room's map and list live, and choosing an event in
//! either highlights it in both; the node is killed (`kill -9`) and restarted, both pages
//! reconnect, and what is sent then arrives once; the profile's display name changes. Screenshots
//! of each screen go to `$BANTER_SCREENSHOTS` (default `~/.cache/banter/screenshots`).

use std::time::Duration;

use banter_feeds::replay::{ReplayConfig, load_fixture};
use banter_tests::NodeBuilder;
use banter_tests::browser::{Replay, WebApp};
use banter_tests::util::manifest_dir;
use tokio::net::TcpListener;

#[tokio::test]
async fn two_people_chat_in_the_browser_across_a_restart_of_the_node() {
    let Some(app) = WebApp::or_skip("browser chat") else {
        return;
    };
    // The feed's port is taken now; it serves once the script asks, so events arrive while the
    // page watches.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let frames =
        load_fixture(&manifest_dir().join("../nodes/feeds/fixtures/emsc.jsonl")).expect("fixture");
    let feed = Replay {
        listener,
        frames,
        config: ReplayConfig {
            interval: Duration::from_millis(2500),
            drop_after: None,
            overlap: 0,
            repeat: false,
        },
    };
    let mut node = NodeBuilder::new("browser")
        .env("BANTER_HTTP__WEB_DIR", app.dist.display())
        .env(
            "BANTER_FEEDS__SOURCES",
            format!("[{{name=\"emsc\",kind=\"emsc\",url=\"ws://127.0.0.1:{port}/\",room=\"Earthquakes\",max_backoff_secs=1}}]"),
        )
        .start()
        .await
        .expect("node");
    let outcome = app
        .run(
            "browser.mjs",
            &mut node,
            Some(feed),
            Duration::from_secs(300),
        )
        .await;
    node.check(outcome);
}
