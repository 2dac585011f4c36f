//! Node configuration: one typed struct, loaded from an optional TOML file, then `BANTER_` environment
//! variables (`__` separates nesting: `BANTER_HTTP__LISTEN=0.0.0.0:8080`), then a few CLI flags.
//! Every default is the embedded single node: SQLite and the in-process journal under `./data`.

use std::path::{Path, PathBuf};

pub use banter_cluster::config::ClusterConfig;
pub use banter_gateway::config::{AuthConfig, GatewayConfig, HttpConfig, LimitsConfig, WsConfig};
pub use banter_kafka::config::{KafkaConfig, PersisterConfig};
pub use banter_store::config::{SqliteSynchronous, StoreConfig};
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
    /// Where the node keeps its files: the SQLite database, and the signing key file of nodes from
    /// before signing keys lived in the store (imported into an empty store). Default: `./data`.
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
    /// Membership of a cluster (off: a single node).
    pub cluster: ClusterConfig,
    /// OTLP export of traces (off without an endpoint).
    pub telemetry: banter_telemetry::otel::TelemetryConfig,
    /// Uploads: the blob store and what an upload may be. The local folder serves a single node
    /// only: a cluster node configured with it runs with uploads off (503 `uploads_off`).
    pub media: banter_media::MediaConfig,
    /// Ingest sources: live external feeds whose events become messages of feed rooms (none by
    /// default).
    pub feeds: banter_feeds::config::FeedsConfig,
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
/// What a node process runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Roles of this process. `gateway`: the REST API, WebSocket sessions, room actors, users and
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
    /// REST API, WebSocket sessions, room actors and users, journal producer.
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
/// Room actor settings.
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
            cluster: ClusterConfig::default(),
            telemetry: Default::default(),
            media: Default::default(),
            feeds: Default::default(),
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
    "cluster",
    "telemetry",
    "media",
    "feeds",
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

    /// Returns the sections the gateway reads.
    pub fn gateway(&self) -> GatewayConfig {
        GatewayConfig {
            http: self.http.clone(),
            limits: self.limits.clone(),
            auth: self.auth.clone(),
            ws: self.ws.clone(),
        }
    }

    /// Checks what one section cannot check alone: a cluster needs the shared stack (the MySQL
    /// store and the Kafka journal), since its nodes share rooms, placement and the journal.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.cluster.enabled {
            return Ok(());
        }
        let url = self.store_url();
        if !url.starts_with("mysql://") {
            anyhow::bail!(
                "cluster.enabled needs the shared MySQL store (store.url = \"mysql://…\"); \
                 this node is configured for {}: run it as a single node (cluster.enabled = \
                 false) or point every node at one MySQL database",
                url.split("://").next().unwrap_or("an unknown store")
            );
        }
        if self.journal.kind != JournalKind::Kafka {
            anyhow::bail!(
                "cluster.enabled needs the Kafka journal (journal.kind = \"kafka\"): the \
                 in-process journal is one node's; every node of a cluster appends to one topic"
            );
        }
        self.cluster.validate()?;
        Ok(())
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
        assert_eq!(c.journal.kafka.message_timeout_ms, 5_000);
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
    fn cluster_tls_parses_and_names_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("banter.toml");
        std::fs::write(
            &f,
            "[cluster]\nenabled = true\ncookie = \"0123456789abcdef\"\n\
             [cluster.tls]\ncert_file = \"/nowhere/node.crt\"\nkey_file = \"/nowhere/node.key\"\n\
             ca_file = \"/nowhere/ca.crt\"\n",
        )
        .expect("write");
        let c = Config::load(Some(&f)).expect("loads");
        let tls = c.cluster.tls.as_ref().expect("[cluster.tls]");
        assert_eq!(tls.key_file.to_str(), Some("/nowhere/node.key"));
        assert!(tls.server_name.is_none());
        let err = c.cluster.tls().expect_err("no such files");
        assert!(err.to_string().contains("/nowhere/node.crt"), "{err}");
        std::fs::write(&f, "[cluster.tls]\ncert_file = \"x\"\n").expect("write");
        assert!(
            Config::load(Some(&f)).is_err(),
            "key_file and ca_file are required"
        );
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
    fn a_cluster_refuses_the_embedded_adapters() {
        let mut c = Config::default();
        c.validate().expect("a single node is valid");
        c.cluster.enabled = true;
        c.cluster.cookie = Some("0123456789abcdef".into());
        let err = c.validate().expect_err("sqlite").to_string();
        assert!(
            err.contains("needs the shared MySQL store") && err.contains("sqlite"),
            "{err}"
        );
        c.store.url = "mysql://banter:banter@127.0.0.1:3306/banter".into();
        let err = c.validate().expect_err("local journal").to_string();
        assert!(err.contains("needs the Kafka journal"), "{err}");
        c.journal.kind = JournalKind::Kafka;
        c.validate().expect("the shared stack is valid");
        c.cluster.cookie = None;
        assert!(
            c.validate()
                .expect_err("no cookie")
                .to_string()
                .contains("cookie")
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
