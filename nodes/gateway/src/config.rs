//! The gateway's sections of the node configuration: `[http]`, `[limits]`, `[auth]`, `[ws]`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The sections the gateway reads, as one value its handlers share.
#[derive(Clone, Debug, Default)]
pub struct GatewayConfig {
    /// HTTP listener.
    pub http: HttpConfig,
    /// Input limits.
    pub limits: LimitsConfig,
    /// Tokens and passwords.
    pub auth: AuthConfig,
    /// WebSocket sessions.
    pub ws: WsConfig,
}

/// HTTP listener settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Origins allowed to open a WebSocket from a browser, e.g. `https://chat.example.com`. Requests
    /// without an Origin header (non-browser clients) are always allowed; an empty list allows only the
    /// origin whose host equals the request's Host header. Default: empty.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies (IP addresses or CIDR blocks, e.g. `["10.0.0.0/8", "::1"]`) whose
    /// `X-Forwarded-For` gives the client address that login limits count: the right-most hop that is
    /// not itself a trusted proxy. A request from any other peer is counted by its own address and its
    /// header ignored. Default: empty (the socket peer address always).
    pub trusted_proxies: Vec<String>,
    /// Connections (HTTP and WebSocket) open at once on the node; one more gets 503
    /// `too_many_connections` and is closed. 0: the open-file limit less 512. Default: 0.
    pub max_connections: usize,
    /// Connections open at once from one client address (trusted proxies are exempt); one more gets
    /// 429 `too_many_connections_from_address`. Default: 256.
    pub max_connections_per_ip: usize,
    /// Milliseconds a client has to send a request's headers (and an idle keep-alive connection to
    /// start its next request) before the connection is closed. Default: 10000.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request may take to arrive and be answered before the client gets 408
    /// `request_timeout`. Default: 30000.
    pub request_timeout_ms: u64,
    /// Bearer token that allows reading `/metrics` from any address. Without one, `/metrics` answers
    /// only direct requests from the loopback address (no `X-Forwarded-For`); others get 403
    /// `forbidden`. Default: empty.
    pub metrics_token: String,
    /// Folder of the web app's build (`web-angular`'s `dist/banter/browser`), served at `/`. Empty,
    /// or a folder without `index.html`: `/` answers a page saying how to build it. Default: empty
    /// (`make run` sets it when the build is there).
    pub web_dir: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            max_connections: 0,
            max_connections_per_ip: 256,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            metrics_token: String::new(),
            web_dir: String::new(),
        }
    }
}
/// Limits on what clients send.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest message body in bytes, at most 65535 (what MySQL's `TEXT` holds). Default: 4096.
    pub max_body_bytes: usize,
    /// Largest STOMP frame (headers and body) in bytes. Default: 16384.
    pub max_frame_bytes: usize,
    /// Largest HTTP request body in bytes. Default: 65536.
    pub max_http_body_bytes: usize,
    /// Messages a user may send per second, over all their connections. Default: 50.
    pub send_per_second: u32,
    /// Burst of messages allowed above the rate. Default: 100.
    pub send_burst: u32,
    /// Group rooms one user may create per hour (a burst of as many, then one every `3600 /
    /// rooms_per_hour` seconds); beyond it `POST /api/rooms` answers 429 `rate_limited` with
    /// `Retry-After`. Default: 60.
    pub rooms_per_hour: u32,
    /// New DMs one user may open per hour; reopening an existing DM is free. Beyond it `POST /api/dms`
    /// answers 429 `rate_limited` with `Retry-After`. Default: 120.
    pub dms_per_hour: u32,
    /// Joins one user may attempt per minute (joining a room one is already in is free); beyond it
    /// `POST /api/rooms/{id}/join` answers 429 `rate_limited` with `Retry-After`. Default: 60.
    pub joins_per_minute: u32,
    /// Rooms (DMs included) one user may be a member of; creating, joining or opening a DM beyond it
    /// answers 403 `too_many_rooms`. A DM someone else opens with the user is not refused. Default: 1000.
    pub max_rooms_per_user: u64,
    /// Login and register attempts allowed per client IP per minute (the IP behind a trusted proxy,
    /// see `http.trusted_proxies`); more get 429 `rate_limited`. Default: 30.
    pub auth_per_minute: u32,
    /// Login attempts allowed per account (username, whether it exists or not) per minute, from all
    /// addresses together, so that guesses spread over many addresses are limited too; more get 429
    /// `account_rate_limited`. Default: 10.
    pub login_per_account_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 4096,
            max_frame_bytes: 16384,
            max_http_body_bytes: 65536,
            send_per_second: 50,
            send_burst: 100,
            rooms_per_hour: 60,
            dms_per_hour: 120,
            joins_per_minute: 60,
            max_rooms_per_user: 1000,
            auth_per_minute: 30,
            login_per_account_per_minute: 10,
        }
    }
}
/// Token settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of an access token in seconds. Default: 900.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token in seconds. A retired signing key keeps verifying until the
    /// longer of the two lifetimes has passed (then 3 × `key_refresh_secs`), so that no token it
    /// signed is cut short. Default: 2592000 (30 days).
    pub refresh_ttl_secs: u64,
    /// Seconds a token signing key signs before the next one takes over. The key set lives in the
    /// store, shared by every node of a cluster; whichever node notices first that the next key is
    /// due adds it, 3 × `key_refresh_secs` before it signs, so every node verifies its tokens
    /// before the first is issued. At least 4 × `key_refresh_secs`. Every node of a cluster should
    /// have the same `[auth]` settings. Default: 2592000 (30 days).
    pub key_rotation_secs: u64,
    /// Seconds between two reloads of the signing keys from the store (each node keeps them in
    /// memory and rotates and prunes them then). A token whose key the node does not know also
    /// makes it reload, at most once every 5 s. Default: 60.
    pub key_refresh_secs: u64,
    /// Memory of one argon2id password hash in KiB (at least 8). Default: 19456, the OWASP figure.
    /// Applies to new hashes; stored ones keep verifying with their own parameters. Lower it only for
    /// load tests or very small machines.
    pub password_memory_kib: u32,
    /// Passes of one argon2id password hash (at least 1). Default: 2.
    pub password_iterations: u32,
    /// Password hashes (register, login) that run at once, each on a blocking thread with
    /// `password_memory_kib` of memory; 0 means the number of CPUs (2 when unknown). Default: 0.
    pub max_concurrent_hashes: usize,
    /// Milliseconds a register or login waits for a free hashing slot before it gets 503 `busy` with
    /// `Retry-After`. Default: 2000.
    pub hash_wait_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            key_rotation_secs: 30 * 24 * 3600,
            key_refresh_secs: 60,
            password_memory_kib: 19456,
            password_iterations: 2,
            max_concurrent_hashes: 0,
            hash_wait_ms: 2000,
        }
    }
}
/// WebSocket session settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Shortest heart-beat interval the server offers and accepts, in ms. Default: 10000.
    pub heartbeat_ms: u64,
    /// Frames queued for one connection before it counts as too slow and is closed. Default: 1024.
    pub outbox_frames: usize,
    /// Bytes of frames queued for one connection before it counts as too slow and is closed (it
    /// resumes with `since`): with `outbox_frames`, what one lagging client can make the node hold.
    /// Default: 1048576 (1 MiB).
    pub outbox_bytes: usize,
    /// Milliseconds a new connection has to send CONNECT. Default: 10000.
    pub connect_timeout_ms: u64,
    /// Milliseconds one write to a connection may take; a client that stops reading (a full TCP
    /// window) is dropped past it and its resources freed. Default: 10000.
    pub write_timeout_ms: u64,
    /// Resume backfills (a SUBSCRIBE with `since` older than the room's ring, streamed page by page
    /// from the store) running at once on the node; a resume that waits more than 10 s for one is
    /// refused with an ERROR. Default: 32.
    pub max_concurrent_backfills: usize,
    /// WebSocket sessions one user may have open at once on the node; CONNECT past it gets an ERROR.
    /// Default: 32.
    pub max_sessions_per_user: usize,
    /// Bytes one read from a connection takes at most, and the read buffer every connection keeps
    /// (a frame larger than it is read in several reads into a buffer grown to its size). Chat frames
    /// are small, and each idle connection holds this much: BENCHMARKS.md scenario 3. Default: 1024.
    pub read_buffer_bytes: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            heartbeat_ms: 10_000,
            outbox_frames: 1024,
            outbox_bytes: 1 << 20,
            connect_timeout_ms: 10_000,
            write_timeout_ms: 10_000,
            max_concurrent_backfills: 32,
            max_sessions_per_user: 32,
            read_buffer_bytes: 1024,
        }
    }
}
