//! A bystander connection that shows a node still serves others after one client misbehaved.

use anyhow::{Context, Result, bail};

use crate::api::{Api, TestUser};
use crate::frames::{describe, header, is_event};
use crate::node::Node;
use crate::stomp::{StompClient, TIMEOUT};

/// A bystander: a user connected to the node with a room of its own subscribed, used to show that
/// the node still serves other connections after one misbehaved.
#[derive(Debug)]
pub struct Witness {
    /// The witness user.
    pub user: TestUser,
    /// Its room.
    pub room: i64,
    /// Its connection.
    pub client: StompClient,
    checks: u32,
}

impl Witness {
    /// Registers a user, creates a room, connects and subscribes to it.
    pub async fn new(node: &Node) -> Result<Self> {
        let api: Api = node.api();
        let user = api.new_user("witness").await?;
        let room = api
            .create_room(&user.token, &crate::unique("witness"))
            .await?
            .id;
        let mut client = StompClient::connect(&node.ws_url(), &user.token).await?;
        client
            .subscribe(&format!("/rooms/{room}"), "w", None)
            .await?;
        Ok(Witness {
            user,
            room,
            client,
            checks: 0,
        })
    }

    /// Sends a message with a receipt and receives it on the subscription: the node still serves it.
    pub async fn assert_served(&mut self) -> Result<()> {
        self.checks += 1;
        let body = format!("witness check {}", self.checks);
        let dest = format!("/rooms/{}", self.room);
        let receipt = self
            .client
            .send_confirmed(&dest, &body)
            .await
            .context("the witness connection is no longer served")?;
        let m = self
            .client
            .recv_where(TIMEOUT, "the witness's own message", |f| {
                is_event(f, "message") && header(f, "seq") == Some(receipt.seq.to_string().as_str())
            })
            .await?;
        if m.body.as_ref() != body.as_bytes() {
            bail!("witness got {} instead of its message", describe(&m));
        }
        Ok(())
    }
}
