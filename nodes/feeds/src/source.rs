//! The EMSC feed as an ingest source ([`banter_actors::source::Feed`]): the websocket client keeps
//! the connection, the EMSC parser reads the frames. Another websocket feed of JSON events is one
//! more implementation like this one, with its own parser.

use banter_actors::source::{Feed, FeedData, FeedInput, Skipped, SourceAction, SourceEvent};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::client::{self, ClientConfig, FeedItem};
use crate::emsc::{self, Action};

/// The EMSC seismic portal's live feed (or a replay of it).
pub struct EmscFeed {
    config: ClientConfig,
}

impl EmscFeed {
    /// The feed at `config.url`.
    pub fn new(config: ClientConfig) -> EmscFeed {
        EmscFeed { config }
    }
}

impl Feed for EmscFeed {
    fn run(
        &self,
        out: mpsc::Sender<FeedInput>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<'static, ()> {
        let config = self.config.clone();
        Box::pin(async move {
            let (tx, mut rx) = mpsc::channel(16);
            let client = tokio::spawn(client::run(config, tx, stop));
            while let Some(item) = rx.recv().await {
                let input = match item {
                    FeedItem::Connected => FeedInput::Connected,
                    FeedItem::Frame(f) => FeedInput::Frame(f),
                    FeedItem::Disconnected(why) => FeedInput::Disconnected(why),
                };
                if out.send(input).await.is_err() {
                    break;
                }
            }
            client.abort();
        })
    }

    fn parse(&self, frame: &str) -> Result<SourceEvent, Skipped> {
        let event = emsc::parse(frame).map_err(|e| Skipped {
            reason: e.reason(),
            message: e.to_string(),
        })?;
        Ok(SourceEvent {
            action: match event.action {
                Action::Create => SourceAction::Create,
                Action::Update => SourceAction::Update,
                Action::Delete => SourceAction::Delete,
            },
            id: event.unid,
            data: event.quake.map(|q| FeedData {
                time_ms: q.time_ms,
                lat: q.lat,
                lon: q.lon,
                depth_km: q.depth,
                magnitude: q.mag,
                magnitude_type: q.magtype,
                region: q.region,
            }),
        })
    }
}
