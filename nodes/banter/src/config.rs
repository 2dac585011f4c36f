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
    /// What this process runs.
    pub node: NodeConfig,
    /// HTTP and WebSocket listener.
    pub http: HttpConfig,
    /// Where the node keeps its files (SQLite database, signing key). Default: `./data`.
    pub data_dir: PathBuf,
    /// System of record.
    pub store: StoreConfig,
    /// Write-ahead journal.
    pub journal: JournalConfig,
    /// Kafka journal → store writer.
    pub persister: PersisterConfig,
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
    /// When an SQLite commit counts as durable, hence when a message is acknowledged on the embedded
    /// node: `full` (default) syncs the write-ahead log to disk at every commit, so a RECEIPT survives
    /// a power cut; `normal` syncs only at checkpoints, so a RECEIPT survives the process being
    /// killed (`kill -9`) but not a power cut or an OS crash, and a commit costs no `fsync` (about ten
    /// times lower send → RECEIPT latency at 1,000 msgs/s here, BENCHMARKS.md). MySQL ignores it.
    pub sqlite_synchronous: SqliteSynchronous,
}

/// See [`StoreConfig::sqlite_synchronous`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// Every commit is on disk before it is acknowledged.
    #[default]
    Full,
    /// Commits are in the OS's hands; the log is synced at checkpoints.
    Normal,
}

/// Journal settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Which journal acknowledges messages: `local` (in-process, group commit into the store) or
    /// `kafka` (a Kafka topic; the persister then writes the store). Default: `local`.
    pub kind: JournalKind,
    /// Most messages the in-process journal writes in one store transaction. Default: 16384.
    ///
    /// Under light load a transaction holds what arrived during the previous commit, a few messages.
    /// Under saturation larger transactions are cheaper per message: each commit writes every index
    /// page it touched, and with many active rooms a page holds several messages of its room only
    /// when the transaction is large (1,000 rooms in chat: 512 saturated near 4,100 msgs/s,
    /// 16,384 near 8,300; BENCHMARKS.md).
    pub max_batch: usize,
    /// Most operations queued for the in-process journal; appends beyond it fail at once. Default: 65536.
    pub max_queue: usize,
    /// The Kafka journal (used when `kind = "kafka"`).
    pub kafka: KafkaConfig,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            kind: JournalKind::Local,
            max_batch: 16_384,
            max_queue: 65_536,
            kafka: KafkaConfig::default(),
        }
    }
}

/// Which journal a node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalKind {
    /// The in-process journal: group commit into the store (the embedded default).
    Local,
    /// A Kafka topic keyed by room id, written to the store by the persister.
    Kafka,
}

/// Kafka journal settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma-separated `host:port`. Default: `127.0.0.1:19092`.
    pub brokers: String,
    /// Topic of chat messages, keyed by room id. Default: `chat.messages`.
    pub topic: String,
    /// Topic that receives the records the persister can never store. Default: `chat.messages.dlq`.
    pub dead_letter_topic: String,
    /// Partitions of both topics when the node creates them. Default: 6.
    pub partitions: i32,
    /// Replication factor of both topics when the node creates them. Default: 1.
    pub replication_factor: i32,
    /// Creates the topics at start-up when they are missing. Default: true.
    pub create_topics: bool,
    /// Milliseconds the producer waits to fill a batch (`linger.ms`). Default: 5.
    pub linger_ms: u64,
    /// Milliseconds an append may take, retries included, before it fails (`message.timeout.ms`): the
    /// sender gets an ERROR rather than waiting while the broker stays down. Default: 10000.
    pub message_timeout_ms: u64,
    /// Most appends queued in the producer; beyond it appends fail at once ("journal overloaded").
    /// Default: 100000.
    pub max_queued_messages: u32,
    /// Milliseconds start-up waits for the broker (reaching it, creating topics) before it fails.
    /// Default: 10000.
    pub startup_timeout_ms: u64,
    /// Milliseconds a room activation may spend reading the journal's tail (`last_seq`, `read_after`)
    /// before it fails. Default: 15000.
    pub read_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:19092".into(),
            topic: "chat.messages".into(),
            dead_letter_topic: "chat.messages.dlq".into(),
            partitions: 6,
            replication_factor: 1,
            create_topics: true,
            linger_ms: 5,
            message_timeout_ms: 10_000,
            max_queued_messages: 100_000,
            startup_timeout_ms: 10_000,
            read_timeout_ms: 15_000,
        }
    }
}

/// Persister settings: the consumer-group member that writes the Kafka journal into the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersisterConfig {
    /// Consumer group of the persisters; every node in it shares the partitions. Room activations read
    /// its committed offsets to find the tail not yet stored. Default: `banter-persister`.
    pub group_id: String,
    /// Rows that make a batch ready to write. Default: 500.
    pub batch_rows: usize,
    /// Milliseconds after its first record that a batch is written however small. Default: 100.
    pub batch_ms: u64,
    /// Longest pause between two attempts to write a batch while the store is unavailable, in ms.
    /// Default: 5000.
    pub max_backoff_ms: u64,
    /// Milliseconds between two refreshes of the consumer lag metric. Default: 1000.
    pub lag_interval_ms: u64,
}

impl Default for PersisterConfig {
    fn default() -> Self {
        PersisterConfig {
            group_id: "banter-persister".into(),
            batch_rows: 500,
            batch_ms: 100,
            max_backoff_ms: 5_000,
            lag_interval_ms: 1_000,
        }
    }
}

/// What a node process runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Roles of this process. `gateway`: the REST API, WebSocket sessions, room and user actors and
    /// the journal they append to. `persister`: the persister, which runs only when `journal.kind` is
    /// `kafka`. A process without `gateway` serves only `/healthz` and `/metrics` on `http.listen`
    /// (e.g. `roles = ["persister"]`, or `BANTER_NODE__ROLES=[persister]`, runs a persister alone).
    /// Default: `["gateway", "persister"]`.
    pub roles: Vec<Role>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            roles: vec![Role::Gateway, Role::Persister],
        }
    }
}

/// A role of a node process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// REST API, WebSocket sessions, room and user actors, journal producer.
    Gateway,
    /// Kafka journal → store writer (consumer-group member).
    Persister,
}

impl NodeConfig {
    /// Tells whether this process has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
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

/// Room and user actor settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    /// Seconds an actor with no subscriber and no traffic lives before it passivates. Default: 300.
    pub idle_timeout_secs: u64,
    /// Recent messages each room keeps in memory for resume and reads; a restarted room honours the
    /// nonces of as many (`docs/PROTOCOL.md`). Default: 512.
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
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node: NodeConfig::default(),
            http: HttpConfig::default(),
            data_dir: PathBuf::from("./data"),
            store: StoreConfig::default(),
            journal: JournalConfig::default(),
            persister: PersisterConfig::default(),
            limits: LimitsConfig::default(),
            rooms: RoomsConfig::default(),
            auth: AuthConfig::default(),
            ws: WsConfig::default(),
        }
    }
}

/// Top-level keys of [`Config`]. Other `BANTER_*` variables are not configuration (`BANTER_CONFIG`,
/// `BANTER_LOG`, the test tooling's `BANTER_TEST_*`, `BANTER_REQUIRE_*`): they are left alone rather
/// than refused as unknown fields. Within a section, unknown keys are still refused.
const SECTIONS: &[&str] = &[
    "node",
    "http",
    "data_dir",
    "store",
    "journal",
    "persister",
    "limits",
    "rooms",
    "auth",
    "ws",
];

/// Tells whether an environment key (prefix stripped, `__` turned into `.`) names configuration.
fn is_config_key(key: &str) -> bool {
    let section = key.split('.').next().unwrap_or(key);
    SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
}

impl Config {
    /// Loads the defaults, then `file` (when given), then `BANTER_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            fig = fig.merge(Toml::file_exact(file));
        }
        fig.merge(
            Env::prefixed("BANTER_")
                .split("__")
                .filter(|key| is_config_key(key.as_str())),
        )
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
        assert_eq!(c.journal.kind, JournalKind::Local);
        assert!(c.node.has(Role::Gateway) && c.node.has(Role::Persister));
    }

    #[test]
    fn kafka_journal_and_persister_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("banter.toml");
        std::fs::write(
            &f,
            "[node]\nroles = [\"persister\"]\n\
             [journal]\nkind = \"kafka\"\n\
             [journal.kafka]\nbrokers = \"127.0.0.1:29092\"\npartitions = 3\n\
             [persister]\nbatch_rows = 50\nbatch_ms = 20\n",
        )
        .expect("write");
        let c = Config::load(Some(&f)).expect("loads");
        assert_eq!(c.journal.kind, JournalKind::Kafka);
        assert_eq!(c.journal.kafka.brokers, "127.0.0.1:29092");
        assert_eq!(c.journal.kafka.partitions, 3);
        assert_eq!(c.journal.kafka.topic, "chat.messages");
        assert_eq!(c.journal.kafka.message_timeout_ms, 10_000);
        assert_eq!((c.persister.batch_rows, c.persister.batch_ms), (50, 20));
        assert_eq!(c.persister.group_id, "banter-persister");
        assert!(!c.node.has(Role::Gateway) && c.node.has(Role::Persister));
        // The defaults print and load back (what `banter --print-config` shows).
        let printed = toml::to_string_pretty(&Config::default()).expect("print");
        std::fs::write(&f, printed).expect("write");
        assert_eq!(
            Config::load(Some(&f)).expect("reloads").journal.kafka.topic,
            "chat.messages"
        );
    }

    #[test]
    fn only_config_sections_are_read_from_the_environment() {
        let toml::Value::Table(defaults) = toml::Value::try_from(Config::default()).expect("toml")
        else {
            panic!("the config is a table");
        };
        let mut keys: Vec<_> = defaults.keys().map(String::as_str).collect();
        let mut sections = SECTIONS.to_vec();
        keys.sort_unstable();
        sections.sort_unstable();
        assert_eq!(keys, sections);
        assert!(is_config_key("http.listen") && is_config_key("data_dir"));
        assert!(is_config_key("journal.kafka.brokers"));
        for tooling in [
            "config",
            "log",
            "test_mysql_url",
            "require_kafka",
            "tansu_bin",
        ] {
            assert!(!is_config_key(tooling), "{tooling}");
        }
    }

    #[test]
    fn unknown_journal_kinds_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("banter.toml");
        std::fs::write(&f, "[journal]\nkind = \"redis\"\n").expect("write");
        assert!(Config::load(Some(&f)).is_err());
        std::fs::write(&f, "[journal.kafka]\nbrokerz = \"x\"\n").expect("write");
        let err = Config::load(Some(&f)).expect_err("unknown field must fail");
        assert!(err.to_string().contains("brokerz"), "{err}");
    }

    #[test]
    fn account_settings_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("banter.toml");
        let c = Config::default();
        assert!(c.http.trusted_proxies.is_empty());
        assert_eq!(c.limits.login_per_account_per_minute, 10);
        assert_eq!(
            (c.auth.max_concurrent_hashes, c.auth.hash_wait_ms),
            (0, 2000)
        );
        std::fs::write(
            &f,
            "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\
             [limits]\nlogin_per_account_per_minute = 3\n\
             [auth]\nmax_concurrent_hashes = 4\nhash_wait_ms = 500\n",
        )
        .expect("write");
        let c = Config::load(Some(&f)).expect("loads");
        assert_eq!(c.http.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert_eq!(c.limits.login_per_account_per_minute, 3);
        assert_eq!(
            (c.auth.max_concurrent_hashes, c.auth.hash_wait_ms),
            (4, 500)
        );
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
