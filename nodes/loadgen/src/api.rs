//! Banter's REST API, as far as the load generator needs it: users (registered, or logged in when
//! they exist from an earlier run), rooms and memberships.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

/// Password of every load-generator user.
pub const PASSWORD: &str = "loadgen password";
/// Requests in flight while setting up.
const CONCURRENCY: usize = 32;

/// A user the load generator acts as.
#[derive(Clone, Debug)]
pub struct Account {
    /// User id.
    pub id: i64,
    /// Access token.
    pub token: String,
}

#[derive(Deserialize)]
struct SessionBody {
    user: UserBody,
    access_token: String,
}

#[derive(Deserialize)]
struct UserBody {
    id: i64,
}

#[derive(Deserialize)]
struct RoomBody {
    id: i64,
}

/// REST client of one node, its requests spread over several loopback source addresses (so a
/// per-IP limit sees many clients, as it would in production).
pub struct Api {
    base: String,
    clients: Vec<reqwest::Client>,
}

impl Api {
    /// A client of the node at `server`.
    pub fn new(server: SocketAddr) -> Result<Api> {
        let spread = if crate::net::is_loopback(server) {
            16
        } else {
            1
        };
        let clients = (0..spread)
            .map(|i| {
                let mut b = reqwest::Client::builder();
                if spread > 1 {
                    b = b.local_address(IpAddr::V4(crate::net::source_ip(50_000 + i)));
                }
                b.build().context("http client")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Api {
            base: format!("http://{server}"),
            clients,
        })
    }

    fn client(&self, i: usize) -> &reqwest::Client {
        &self.clients[i % self.clients.len()]
    }

    /// Registers `username`, or logs it in when it already exists (a rerun reuses its users).
    pub async fn account(&self, i: usize, username: &str) -> Result<Account> {
        let body = json!({"username": username, "password": PASSWORD});
        let resp = self
            .client(i)
            .post(format!("{}/api/auth/register", self.base))
            .json(&body)
            .send()
            .await
            .context("register")?;
        let resp = if resp.status() == StatusCode::CONFLICT {
            self.client(i)
                .post(format!("{}/api/auth/login", self.base))
                .json(&body)
                .send()
                .await
                .context("login")?
        } else {
            resp
        };
        let session: SessionBody = json_of(resp, "register/login").await?;
        Ok(Account {
            id: session.user.id,
            token: session.access_token,
        })
    }

    /// Accounts `{prefix}{i}` for i in `0..count`, set up `CONCURRENCY` at a time.
    pub async fn accounts(&self, prefix: &str, count: usize) -> Result<Vec<Account>> {
        futures::stream::iter(0..count)
            .map(|i| async move { self.account(i, &format!("{prefix}{i}")).await })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    /// Creates a group room owned by `owner`; returns its id.
    pub async fn create_room(&self, owner: &Account, name: &str) -> Result<i64> {
        let resp = self
            .client(owner.id as usize)
            .post(format!("{}/api/rooms", self.base))
            .bearer_auth(&owner.token)
            .json(&json!({"name": name}))
            .send()
            .await
            .context("create room")?;
        Ok(json_of::<RoomBody>(resp, "create room").await?.id)
    }

    /// Makes `who` a member of `room` (idempotent).
    pub async fn join(&self, who: &Account, room: i64) -> Result<()> {
        let resp = self
            .client(who.id as usize)
            .post(format!("{}/api/rooms/{room}/join", self.base))
            .bearer_auth(&who.token)
            .send()
            .await
            .context("join room")?;
        if !resp.status().is_success() {
            bail!(
                "join room {room}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Joins every `(account, room)` pair, `CONCURRENCY` at a time.
    pub async fn join_all(&self, pairs: &[(&Account, i64)]) -> Result<()> {
        futures::stream::iter(pairs)
            .map(|(who, room)| self.join(who, *room))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }
}

async fn json_of<T: serde::de::DeserializeOwned>(resp: reqwest::Response, what: &str) -> Result<T> {
    let status = resp.status();
    if !status.is_success() {
        bail!("{what}: {status} {}", resp.text().await.unwrap_or_default());
    }
    resp.json().await.with_context(|| format!("{what}: body"))
}
