//! The `[feeds]` section: the ingest sources a node runs (each on one node of the cluster).
//!
//! ```toml
//! [[feeds.sources]]
//! name = "emsc"                     # unique; the {source} of /api/feeds/{source}/events
//! kind = "emsc"                     # the feed's format (EMSC's websocket is the one there is)
//! url = "wss://www.seismicportal.eu/standing_order/websocket"
//! room = "Earthquakes"              # its feed room, created on first start
//! ```
//!
//! In the environment: `BANTER_FEEDS__SOURCES='[{name="emsc",kind="emsc",url="ws://…",room="Quakes"}]'`.

use std::sync::Arc;
use std::time::Duration;

use banter_actors::source::SourceSpec;
use serde::{Deserialize, Serialize};

use crate::client::ClientConfig;
use crate::source::EmscFeed;

/// The `[feeds]` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    /// The sources (none by default).
    pub sources: Vec<SourceConfig>,
}

/// The format of a source's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The EMSC seismic portal's websocket (`{action, data: GeoJSON Feature}`).
    Emsc,
}

/// One source.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name: 1 to 27 of `a-z 0-9 _` (its user is `feed.<name>`, at most 32 characters).
    pub name: String,
    /// Its format.
    pub kind: SourceKind,
    /// `ws://` or `wss://` URL of its feed.
    pub url: String,
    /// The name of its feed room.
    pub room: String,
    /// Seconds between two pings (default 15).
    #[serde(default)]
    pub ping_secs: Option<u64>,
    /// Longest wait before reconnecting, in seconds (default 60).
    #[serde(default)]
    pub max_backoff_secs: Option<u64>,
}

/// Why the section cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("feeds.sources: {0}")]
pub struct ConfigError(String);

impl FeedsConfig {
    /// The sources, checked, as the actors take them.
    pub fn specs(&self) -> Result<Vec<SourceSpec>, ConfigError> {
        let mut seen = std::collections::HashSet::new();
        self.sources
            .iter()
            .map(|s| {
                let name_ok = (1..=27).contains(&s.name.len())
                    && s.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !name_ok {
                    return Err(ConfigError(format!(
                        "name {:?}: 1 to 27 of a-z, 0-9 and _",
                        s.name
                    )));
                }
                if !seen.insert(s.name.clone()) {
                    return Err(ConfigError(format!("name {:?} twice", s.name)));
                }
                if !(s.url.starts_with("ws://") || s.url.starts_with("wss://")) {
                    return Err(ConfigError(format!(
                        "{}: url must be ws:// or wss://",
                        s.name
                    )));
                }
                let room = s.room.trim();
                if room.is_empty() || room.chars().count() > 64 {
                    return Err(ConfigError(format!(
                        "{}: room must be 1 to 64 characters",
                        s.name
                    )));
                }
                let mut client = ClientConfig::new(&s.name, &s.url);
                if let Some(p) = s.ping_secs {
                    client.ping_every = Duration::from_secs(p.max(1));
                    client.silence = client.ping_every * 3;
                }
                if let Some(b) = s.max_backoff_secs {
                    client.backoff_max = Duration::from_secs(b.max(1));
                }
                let feed = match s.kind {
                    SourceKind::Emsc => Arc::new(EmscFeed::new(client)),
                };
                Ok(SourceSpec {
                    name: s.name.clone(),
                    room: room.to_owned(),
                    feed,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, url: &str) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            kind: SourceKind::Emsc,
            url: url.into(),
            room: "Quakes".into(),
            ping_secs: None,
            max_backoff_secs: None,
        }
    }

    #[test]
    fn sources_are_checked() {
        let ok = FeedsConfig {
            sources: vec![
                source("emsc", "wss://x/ws"),
                source("replay_2", "ws://127.0.0.1:9/"),
            ],
        };
        let specs = ok.specs().expect("valid");
        assert_eq!(specs.len(), 2);
        assert_eq!(
            (specs[0].name.as_str(), specs[0].room.as_str()),
            ("emsc", "Quakes")
        );
        for bad in [
            vec![source("EMSC", "wss://x")],
            vec![source("", "wss://x")],
            vec![source(&"a".repeat(28), "wss://x")],
            vec![source("a", "http://x")],
            vec![source("a", "ws://x"), source("a", "ws://y")],
        ] {
            assert!(FeedsConfig { sources: bad }.specs().is_err());
        }
    }
}
