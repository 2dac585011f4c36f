//! The `[cluster]` section of the node configuration.
//!
//! Off by default: the embedded single node has no cluster. On, a node needs the shared stack (the
//! MySQL store and the Kafka journal; the binary refuses anything else) and a cookie that every node
//! of the cluster shares.
//!
//! Peers find each other through the store: every node registers its `advertise` address in the
//! `cluster_nodes` table, and each node dials the live nodes registered before it. No seed list is
//! needed, and none can disagree with the table that placement reads anyway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use banter_actors::shard::{DEFAULT_SHARDS, MAX_SHARDS};
use serde::{Deserialize, Serialize};

/// Cluster settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Runs this node as a member of a cluster. Default: false (a single node).
    pub enabled: bool,
    /// Where to accept peers. Default: `127.0.0.1:7400`.
    pub listen: SocketAddr,
    /// The address peers dial, `host:port` (registered in the store). Default: `listen`, which must
    /// then not be a wildcard address.
    pub advertise: Option<String>,
    /// The secret every node of the cluster shares. Prefer `cookie_file`.
    pub cookie: Option<String>,
    /// A file holding the cookie (surrounding whitespace is ignored): a mounted secret.
    pub cookie_file: Option<PathBuf>,
    /// Virtual shards that rooms and users are hashed into; every node of a cluster must use the
    /// same number (the store refuses another). Default: 256.
    pub shards: u32,
    /// Milliseconds a shard lease lasts from its renewal (renewed every third of it). A dead node's
    /// shards are taken about this long plus the journal's delivery timeout after its last
    /// renewal; a node whose renewals fail for this long less the margin stops serving. Default:
    /// 6000.
    pub lease_ttl_ms: u64,
    /// Milliseconds of the lease a node gives up serving before the lease ends, against the drift
    /// between its clock and the database's. Default: 1500.
    pub lease_margin_ms: u64,
    /// Milliseconds between heartbeats to each peer (and the store's view of members is refreshed
    /// this often). Default: 1000.
    pub heartbeat_ms: u64,
    /// Heartbeat intervals without a word from a peer before it is down. Default: 3.
    pub down_after_missed: u32,
    /// Envelopes sent to one peer that it has not yet confirmed; beyond it the link is dropped (its
    /// sessions resubscribe) rather than queuing without end. Default: 65536.
    pub max_unconfirmed: u64,
    /// Largest envelope a peer may send, in bytes. Default: 1 MiB.
    pub max_frame_bytes: u64,
    /// Milliseconds between redials of an unreachable peer: the first wait, doubled up to
    /// `redial_max_ms`, with jitter. Default: 200.
    pub redial_min_ms: u64,
    /// Longest wait between redials, in milliseconds. Default: 5000.
    pub redial_max_ms: u64,
    /// TLS on the cluster port, mutual (`[cluster.tls]`: `cert_file`, `key_file`, `ca_file`,
    /// optional `server_name`; see `banter_cluster::tls`). Default: none (plain TCP, for a private
    /// network; the cookie authenticates but does not encrypt).
    pub tls: Option<crate::tls::TlsSettings>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            advertise: None,
            cookie: None,
            cookie_file: None,
            shards: DEFAULT_SHARDS,
            lease_ttl_ms: 6_000,
            lease_margin_ms: 1_500,
            heartbeat_ms: 1_000,
            down_after_missed: 3,
            max_unconfirmed: 65_536,
            max_frame_bytes: 1 << 20,
            redial_min_ms: 200,
            redial_max_ms: 5_000,
            tls: None,
        }
    }
}

/// A `[cluster]` section that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting is out of range or missing.
    #[error("[cluster] {0}")]
    Invalid(String),
    /// The cookie file could not be read.
    #[error("[cluster] cannot read cookie_file {path}: {error}")]
    CookieFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl ClusterConfig {
    /// The address registered for peers to dial.
    pub fn advertise(&self) -> Result<String, ConfigError> {
        match &self.advertise {
            Some(a) if !a.trim().is_empty() => Ok(a.trim().to_owned()),
            _ if self.listen.ip().is_unspecified() => Err(ConfigError::Invalid(format!(
                "listen = {} is a wildcard address: set advertise to the address peers dial",
                self.listen
            ))),
            _ => Ok(self.listen.to_string()),
        }
    }

    /// The node's TLS, loaded from the files `[cluster.tls]` names (`None` without it).
    pub fn tls(&self) -> Result<Option<crate::tls::Tls>, ConfigError> {
        self.tls
            .as_ref()
            .map(crate::tls::Tls::load)
            .transpose()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The cookie, from `cookie_file` or `cookie`.
    pub fn cookie(&self) -> Result<String, ConfigError> {
        let cookie = match (&self.cookie_file, &self.cookie) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|error| ConfigError::CookieFile {
                    path: path.clone(),
                    error,
                })?
                .trim()
                .to_owned(),
            (None, Some(cookie)) => cookie.trim().to_owned(),
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "a cluster needs a cookie: set cookie_file (or cookie)".into(),
                ));
            }
        };
        if cookie.len() < 16 {
            return Err(ConfigError::Invalid(
                "the cookie must be at least 16 characters".into(),
            ));
        }
        Ok(cookie)
    }

    /// Checks the settings that do not depend on other sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return invalid(&format!("shards must be in 1..={MAX_SHARDS}"));
        }
        if self.heartbeat_ms == 0 || self.down_after_missed == 0 {
            return invalid("heartbeat_ms and down_after_missed must be positive");
        }
        if self.lease_ttl_ms < 3 * self.heartbeat_ms {
            return invalid(
                "lease_ttl_ms must be at least three heartbeats (renewals go every third)",
            );
        }
        if self.lease_margin_ms >= self.lease_ttl_ms / 2 {
            return invalid("lease_margin_ms must be under half of lease_ttl_ms");
        }
        if self.redial_min_ms == 0 || self.redial_max_ms < self.redial_min_ms {
            return invalid("redial_min_ms must be positive and at most redial_max_ms");
        }
        if self.max_unconfirmed == 0 {
            return invalid("max_unconfirmed must be positive");
        }
        self.advertise()?;
        self.cookie()?;
        Ok(())
    }

    /// How long a lease lasts.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// The interval between heartbeats.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// How long a silent peer stays up.
    pub fn down_after(&self) -> Duration {
        self.heartbeat() * self.down_after_missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> ClusterConfig {
        ClusterConfig {
            enabled: true,
            cookie: Some("0123456789abcdef".into()),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn the_defaults_with_a_cookie_are_valid() {
        on().validate().expect("valid");
        assert_eq!(on().advertise().expect("advertise"), "127.0.0.1:7400");
    }

    #[test]
    fn a_missing_or_short_cookie_is_refused() {
        let mut c = on();
        c.cookie = None;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("needs a cookie")
        );
        c.cookie = Some("short".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("16 characters")
        );
    }

    #[test]
    fn the_cookie_file_wins_and_is_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cookie");
        std::fs::write(&path, "  from-the-file-0123456789\n").expect("write");
        let mut c = on();
        c.cookie_file = Some(path);
        assert_eq!(c.cookie().expect("cookie"), "from-the-file-0123456789");
        c.cookie_file = Some(dir.path().join("missing"));
        assert!(
            c.cookie()
                .unwrap_err()
                .to_string()
                .contains("cannot read cookie_file")
        );
    }

    #[test]
    fn a_wildcard_listen_needs_an_advertised_address() {
        let mut c = on();
        c.listen = "0.0.0.0:7400".parse().expect("addr");
        assert!(c.validate().unwrap_err().to_string().contains("advertise"));
        c.advertise = Some("node-a.internal:7400".into());
        c.validate().expect("valid with advertise");
    }

    #[test]
    fn timings_that_cannot_hold_a_lease_are_refused() {
        let mut c = on();
        c.lease_ttl_ms = 2 * c.heartbeat_ms;
        assert!(c.validate().is_err());
        let mut c = on();
        c.lease_margin_ms = c.lease_ttl_ms;
        assert!(c.validate().is_err());
        let mut c = on();
        c.shards = 0;
        assert!(c.validate().is_err());
    }
}
