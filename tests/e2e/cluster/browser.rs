//! The web app on a cluster (issue #22): two members on one MariaDB and one broker each serve the
//! app; alice's browser talks to one, bob's to the other. They register, open a DM and chat both
//! ways live; bob reloads and the conversation is whole; an edit on one node shows on the other
//! (`web-angular/e2e/cluster.mjs`).

use std::time::Duration;

use banter_tests::browser::WebApp;

use super::{member, settled};
use crate::e2e::durable::support::{check, prerequisites};

#[tokio::test]
async fn two_people_on_two_nodes_of_a_cluster_chat_in_the_browser() {
    let Some(app) = WebApp::or_skip("cluster browser") else {
        return;
    };
    let Some((mysql, broker)) = prerequisites("cluster browser").await else {
        return;
    };
    let web = app.dist.display().to_string();
    let mut a = check(
        check(member("a", &broker))
            .env("BANTER_HTTP__WEB_DIR", &web)
            .mysql(&mysql)
            .start()
            .await,
    );
    let b = check(
        check(member("b", &broker))
            .env("BANTER_HTTP__WEB_DIR", &web)
            .same_database_as(&a)
            .start()
            .await,
    );
    a.check(settled(&[&a, &b], Duration::from_secs(30)).await);
    let second = [("BANTER_BASE_URL_2", b.base_url())];
    let outcome = app
        .run_with(
            "cluster.mjs",
            &mut a,
            None,
            &second,
            Duration::from_secs(180),
        )
        .await;
    a.check(outcome);
}
