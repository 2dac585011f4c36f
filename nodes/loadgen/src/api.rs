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
        let register = format!("{}/api/auth/register", self.base);
        let resp = send_retrying("register", || self.client(i).post(&register).json(&body)).await?;
        let resp = if resp.status() == StatusCode::CONFLICT {
            let login = format!("{}/api/auth/login", self.base);
            send_retrying("login", || self.client(i).post(&login).json(&body)).await?
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
        let url = format!("{}/api/rooms", self.base);
        let body = json!({"name": name});
        let resp = send_retrying("create room", || {
            self.client(owner.id as usize)
                .post(&url)
                .bearer_auth(&owner.token)
                .json(&body)
        })
        .await?;
        Ok(json_of::<RoomBody>(resp, "create room").await?.id)
    }

    /// Makes `who` a member of `room` (idempotent).
    pub async fn join(&self, who: &Account, room: i64) -> Result<()> {
        let url = format!("{}/api/rooms/{room}/join", self.base);
        let resp = send_retrying("join room", || {
            self.client(who.id as usize)
                .post(&url)
                .bearer_auth(&who.token)
        })
        .await?;
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

/// Most attempts of a request the server answers with 429 or 503.
const ATTEMPTS: u32 = 30;

/// Sends the request `make` builds, again after the server's `Retry-After` (1 s without one) while it
/// answers 429 (a budget) or 503 (busy, e.g. hashing passwords), as a well-behaved client does.
async fn send_retrying(
    what: &str,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    let mut attempt = 1;
    loop {
        let resp = make().send().await.with_context(|| what.to_owned())?;
        let status = resp.status();
        let busy =
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE;
        if !busy || attempt >= ATTEMPTS {
            return Ok(resp);
        }
        let wait = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1)
            .clamp(1, 10);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        attempt += 1;
    }
}

async fn json_of<T: serde::de::DeserializeOwned>(resp: reqwest::Response, what: &str) -> Result<T> {
    let status = resp.status();
    if !status.is_success() {
        bail!("{what}: {status} {}", resp.text().await.unwrap_or_default());
    }
    resp.json().await.with_context(|| format!("{what}: body"))
}
