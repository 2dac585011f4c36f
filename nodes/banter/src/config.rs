//! Node configuration: one typed struct, loaded from an optional TOML file, then `BANTER_` environment
//! variables (`__` separates nesting: `BANTER_HTTP__LISTEN=0.0.0.0:8080`), then a few CLI flags.
//! Every default is the embedded single node: SQLite and the in-process journal under `./data`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Whole configuration of a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP and WebSocket listener.
    pub http: HttpConfig,
    /// Where the node keeps its files (SQLite database, signing key). Default: `./data`.
    pub data_dir: PathBuf,
    /// System of record.
    pub store: StoreConfig,
    /// Write-ahead journal.
    pub journal: JournalConfig,
    /// Input limits.
    pub limits: LimitsConfig,
    /// Room actors.
    pub rooms: RoomsConfig,
    /// Tokens.
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
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_origins: Vec::new(),
        }
    }
}

/// Store settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `mysql://USER:PASS@HOST:PORT/DB`. Default: empty, meaning
    /// `sqlite://<data_dir>/banter.db`.
    pub url: String,
}

/// Journal settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Most messages the in-process journal writes in one store transaction. Default: 512.
    pub max_batch: usize,
    /// Most operations queued for the in-process journal; appends beyond it fail at once. Default: 65536.
    pub max_queue: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            max_batch: 512,
            max_queue: 65_536,
        }
    }
}

/// Limits on what clients send.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest message body in bytes. Default: 4096.
    pub max_body_bytes: usize,
    /// Largest STOMP frame (headers and body) in bytes. Default: 16384.
    pub max_frame_bytes: usize,
    /// Largest HTTP request body in bytes. Default: 65536.
    pub max_http_body_bytes: usize,
    /// Messages a user may send per second, over all their connections. Default: 50.
    pub send_per_second: u32,
    /// Burst of messages allowed above the rate. Default: 100.
    pub send_burst: u32,
    /// Login and register attempts allowed per client IP per minute. Default: 30.
    pub auth_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 4096,
            max_frame_bytes: 16384,
            max_http_body_bytes: 65536,
            send_per_second: 50,
            send_burst: 100,
            auth_per_minute: 30,
        }
    }
}

/// Room and user actor settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Seconds an actor with no subscriber and no traffic lives before it passivates. Default: 300.
    pub idle_timeout_secs: u64,
    /// Recent messages each room keeps in memory for resume and reads. Default: 512.
    pub ring_size: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            idle_timeout_secs: 300,
            ring_size: 512,
        }
    }
}

/// Token settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of an access token in seconds. Default: 900.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token in seconds. Default: 2592000 (30 days).
    pub refresh_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
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
    /// Milliseconds a new connection has to send CONNECT. Default: 10000.
    pub connect_timeout_ms: u64,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            heartbeat_ms: 10_000,
            outbox_frames: 1024,
            connect_timeout_ms: 10_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::default(),
            data_dir: PathBuf::from("./data"),
            store: StoreConfig::default(),
            journal: JournalConfig::default(),
            limits: LimitsConfig::default(),
            rooms: RoomsConfig::default(),
            auth: AuthConfig::default(),
            ws: WsConfig::default(),
        }
    }
}

impl Config {
    /// Loads the defaults, then `file` (when given), then `BANTER_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            fig = fig.merge(Toml::file_exact(file));
        }
        fig.merge(Env::prefixed("BANTER_").split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// Returns the store URL, resolving the empty default to the SQLite file in the data dir.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("banter.db").display())
        } else {
            self.store.url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_node() {
        let c = Config::default();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store_url(), "sqlite://./data/banter.db");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("banter.toml");
        std::fs::write(&f, "[http]\nlisten = \"127.0.0.1:9\"\nbogus = 1\n").expect("write");
        let err = Config::load(Some(&f)).expect_err("unknown field must fail");
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
