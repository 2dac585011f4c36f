//! REST client for a node, and the JSON objects of `docs/PROTOCOL.md`.
//!
//! [`Api::call`] returns any answer as a [`Resp`] (status + JSON body) so tests can assert error statuses
//! and `error.code`s; the typed helpers (`register`, `create_room`, …) expect the documented success
//! status and fail with the body otherwise.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::util::unique;

/// Password of every user made by [`Api::new_user`].
pub const TEST_PASSWORD: &str = "correct horse battery";

/// `user` object.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct User {
    /// Store-assigned id.
    pub id: i64,
    /// Lowercase username.
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Avatar reference.
    #[serde(default)]
    pub avatar_ref: Option<String>,
}

/// Session: what register, login and refresh return.
#[derive(Clone, Debug, Deserialize)]
pub struct Session {
    /// The user.
    pub user: User,
    /// Access JWT.
    pub access_token: String,
    /// Refresh JWT.
    pub refresh_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
}

/// `room` object.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Room {
    /// Store-assigned id.
    pub id: i64,
    /// `group`, `dm` or `feed`.
    pub kind: String,
    /// Name (empty for a DM).
    #[serde(default)]
    pub name: String,
    /// Creator's user id.
    pub created_by: i64,
    /// Creation time.
    pub created_at_ms: i64,
}

/// `room summary` object: a room plus the caller's view of it.
#[derive(Clone, Debug, Deserialize)]
pub struct RoomSummary {
    /// The room's fields.
    #[serde(flatten)]
    pub room: Room,
    /// `owner` or `member`.
    pub role: String,
    /// Highest stored seq.
    pub last_seq: u64,
    /// The caller's read marker.
    pub last_read_seq: u64,
    /// Messages above the read marker.
    pub unread: u64,
    /// For a DM, the other member.
    #[serde(default)]
    pub dm_peer: Option<i64>,
}

/// `member` object.
#[derive(Clone, Debug, Deserialize)]
pub struct Member {
    /// The member's user id.
    pub user_id: i64,
    /// Username.
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `owner` or `member`.
    pub role: String,
    /// Read marker.
    pub last_read_seq: u64,
    /// Whether the member has a connection open on some node.
    #[serde(default)]
    pub online: bool,
    /// When an offline member was last seen (ms since the Unix epoch), if the node saw it.
    #[serde(default)]
    pub last_seen_ms: Option<i64>,
}

/// `message` object.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Message {
    /// Room.
    pub room_id: i64,
    /// Position in the room.
    pub seq: u64,
    /// UUID.
    pub message_id: String,
    /// Sender.
    pub sender_id: i64,
    /// Text.
    pub body: String,
    /// Acceptance time.
    pub created_at_ms: i64,
    /// Files attached (JSON objects as `docs/PROTOCOL.md` lists their fields).
    #[serde(default)]
    pub attachments: Vec<Value>,
    /// The body's content type.
    pub content_type: String,
    /// When it was last edited.
    #[serde(default)]
    pub edited_at_ms: Option<i64>,
    /// When it was deleted (its body is then empty).
    #[serde(default)]
    pub deleted_at_ms: Option<i64>,
}

/// One page of history.
#[derive(Clone, Debug, Deserialize)]
pub struct HistoryPage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Seq to pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<u64>,
}

/// A registered user with its credentials.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// User id.
    pub id: i64,
    /// Lowercase username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh_token: String,
}

/// An HTTP answer.
#[derive(Clone, Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Body as JSON (`Value::Null` when empty, a string when not JSON).
    pub body: Value,
    /// Whether the body parsed as JSON.
    pub is_json: bool,
    /// `Content-Type` header.
    pub content_type: Option<String>,
}

/// An answer that was not the expected one.
#[derive(Debug)]
pub struct ApiError(pub String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiError {}

impl Resp {
    /// Returns the body when the status is `status`, else an error showing both.
    pub fn expect(self, status: u16) -> Result<Value> {
        if self.status != status {
            return Err(ApiError(format!(
                "expected HTTP {status}, got {}: {}",
                self.status, self.body
            ))
            .into());
        }
        Ok(self.body)
    }

    /// Parses the body as `T` when the status is `status`.
    pub fn parse<T: DeserializeOwned>(self, status: u16) -> Result<T> {
        let body = self.expect(status)?;
        serde_json::from_value(body.clone())
            .with_context(|| format!("unexpected body shape: {body}"))
    }

    /// Returns `error.code` of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    /// Asserts the documented error shape: this status, a JSON body
    /// `{"error": {"code": code, "message": <non-empty string>}}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.error_code()),
            (status, Some(code)),
            "expected HTTP {status} with error.code {code:?}; got {} {:?} body {}",
            self.status,
            self.content_type,
            self.body
        );
        assert!(
            self.is_json,
            "error body must be JSON, got {:?}: {}",
            self.content_type, self.body
        );
        let message = self.body.pointer("/error/message").and_then(Value::as_str);
        assert!(
            message.is_some_and(|m| !m.is_empty()),
            "error.message must be a non-empty string: {}",
            self.body
        );
    }
}

/// REST client of one node. Cheap to clone; make one per test (a client must not outlive the tokio
/// runtime it was first used on).
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// Makes a client for `base_url` (`http://127.0.0.1:PORT`).
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Api {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Returns the base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Returns the underlying HTTP client, for hand-made requests.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Returns the URL of `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// Returns the URL of `path` with query parameters, percent-encoded.
    pub fn url_with(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut u = Url::parse(&self.url(path)).expect("valid url");
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        u
    }

    /// Sends a request; `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req)
            .await
            .with_context(|| format!("{method} {path}"))
    }

    /// Sends a prepared request and reads the answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Resp> {
        let r = req.send().await?;
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = r.bytes().await?;
        let (body, is_json) = if bytes.is_empty() {
            (Value::Null, false)
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => (v, true),
                Err(_) => (
                    Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                    false,
                ),
            }
        };
        Ok(Resp {
            status,
            body,
            is_json,
            content_type,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Resp> {
        self.call(Method::GET, path, token, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Resp> {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// `POST /api/auth/register`; expects 201.
    pub async fn register(&self, username: &str, password: &str) -> Result<Session> {
        self.post(
            "/api/auth/register",
            None,
            &json!({"username": username, "password": password}),
        )
        .await?
        .parse(201)
        .with_context(|| format!("register {username}"))
    }

    /// `POST /api/auth/login`; expects 200.
    pub async fn login(&self, username: &str, password: &str) -> Result<Session> {
        self.post(
            "/api/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await?
        .parse(200)
        .with_context(|| format!("login {username}"))
    }

    /// `POST /api/auth/refresh`; expects 200.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session> {
        self.post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await?
        .parse(200)
    }

    /// Registers a user with a unique name starting with `prefix`.
    pub async fn new_user(&self, prefix: &str) -> Result<TestUser> {
        let username = unique(prefix);
        let s = self.register(&username, TEST_PASSWORD).await?;
        if s.user.username != username {
            bail!(
                "registered {username} but the session names {}",
                s.user.username
            );
        }
        Ok(TestUser {
            id: s.user.id,
            username,
            password: TEST_PASSWORD.to_owned(),
            token: s.access_token,
            refresh_token: s.refresh_token,
        })
    }

    /// `GET /api/users/me`; expects 200.
    pub async fn me(&self, token: &str) -> Result<User> {
        self.get("/api/users/me", Some(token)).await?.parse(200)
    }

    /// `GET /api/users?prefix=..&limit=..`; expects 200.
    pub async fn search_users(
        &self,
        token: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<User>> {
        let mut q = vec![("prefix", prefix.to_owned())];
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        let url = self.url_with("/api/users", &q);
        let v: Value = self
            .send(self.http.get(url).bearer_auth(token))
            .await?
            .expect(200)?;
        Ok(serde_json::from_value(v["users"].clone())?)
    }

    /// `POST /api/rooms`; expects 201.
    pub async fn create_room(&self, token: &str, name: &str) -> Result<Room> {
        self.post("/api/rooms", Some(token), &json!({"name": name}))
            .await?
            .parse(201)
            .with_context(|| format!("create room {name:?}"))
    }

    /// `GET /api/rooms/{id}`; expects 200.
    pub async fn room(&self, token: &str, room: i64) -> Result<Room> {
        self.get(&format!("/api/rooms/{room}"), Some(token))
            .await?
            .parse(200)
    }

    /// `POST /api/rooms/{id}/join`; expects 200.
    pub async fn join(&self, token: &str, room: i64) -> Result<Value> {
        self.post(&format!("/api/rooms/{room}/join"), Some(token), &json!({}))
            .await?
            .expect(200)
            .with_context(|| format!("join room {room}"))
    }

    /// `POST /api/rooms/{id}/leave`; expects 204.
    pub async fn leave(&self, token: &str, room: i64) -> Result<()> {
        self.post(&format!("/api/rooms/{room}/leave"), Some(token), &json!({}))
            .await?
            .expect(204)
            .with_context(|| format!("leave room {room}"))?;
        Ok(())
    }

    /// `POST /api/dms`; returns the status (201 or 200) and the room.
    pub async fn dm(&self, token: &str, user_id: i64) -> Result<(u16, Room)> {
        let r = self
            .post("/api/dms", Some(token), &json!({"user_id": user_id}))
            .await?;
        let status = r.status;
        if status != 200 && status != 201 {
            bail!(
                "POST /api/dms: expected 200 or 201, got {status}: {}",
                r.body
            );
        }
        Ok((status, r.parse(status)?))
    }

    /// `GET /api/rooms`; expects 200.
    pub async fn rooms(&self, token: &str) -> Result<Vec<RoomSummary>> {
        let v = self.get("/api/rooms", Some(token)).await?.expect(200)?;
        serde_json::from_value(v["rooms"].clone()).with_context(|| format!("rooms body {v}"))
    }

    /// Returns the caller's summary of one room from `GET /api/rooms`.
    pub async fn room_summary(&self, token: &str, room: i64) -> Result<Option<RoomSummary>> {
        Ok(self
            .rooms(token)
            .await?
            .into_iter()
            .find(|r| r.room.id == room))
    }

    /// `GET /api/rooms/{id}/members`; expects 200.
    pub async fn members(&self, token: &str, room: i64) -> Result<Vec<Member>> {
        let v = self
            .get(&format!("/api/rooms/{room}/members"), Some(token))
            .await?
            .expect(200)?;
        serde_json::from_value(v["members"].clone()).with_context(|| format!("members body {v}"))
    }

    /// `GET /api/rooms/{id}/messages` as a raw answer.
    pub async fn history_raw(
        &self,
        token: &str,
        room: i64,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Resp> {
        let mut q = Vec::new();
        if let Some(b) = before {
            q.push(("before", b.to_string()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        let url = self.url_with(&format!("/api/rooms/{room}/messages"), &q);
        self.send(self.http.get(url).bearer_auth(token)).await
    }

    /// `GET /api/rooms/{id}/messages`; expects 200.
    pub async fn history(
        &self,
        token: &str,
        room: i64,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage> {
        self.history_raw(token, room, before, limit)
            .await?
            .parse(200)
    }

    /// Pages back through the whole history of a room (`limit` per page); returns newest first.
    pub async fn full_history(&self, token: &str, room: i64, limit: u32) -> Result<Vec<Message>> {
        let mut all = Vec::new();
        let mut before = None;
        for _ in 0..100_000 {
            let page = self.history(token, room, before, Some(limit)).await?;
            all.extend(page.messages);
            match page.next_before {
                Some(b) => {
                    if before.is_some_and(|prev| b >= prev) {
                        bail!("next_before did not move back: {b} after {before:?}");
                    }
                    before = Some(b);
                }
                None => return Ok(all),
            }
        }
        bail!("history of room {room} never ended")
    }
}
