//! Ingest sources (issue #21): one actor per configured source in the whole cluster, which keeps a
//! live external feed connected and turns its events into messages of the feed rooms that follow it.
//!
//! A source is placed like a room: its id hashes to a shard, and only the node that leases the
//! shard runs it ([`supervisor`] starts and stops it as leases move, and restarts it after a crash).
//! Its feed ([`Feed`]: a connection and a format; a new kind of source is one implementation of it)
//! hands frames to the actor through a bounded channel, one at a time, so a feed faster than the
//! rooms is slowed down, not buffered. For each frame the actor:
//!
//! 1. journals the raw frame ([`RawLog`]: its own Kafka topic on the full stack, the store on the
//!    embedded one) before anything else, retrying a few times;
//! 2. parses it; a malformed or oversized frame is counted (`banter_feed_events_skipped_total`),
//!    logged with its reason and skipped;
//! 3. compares the event with its last state in the store: for each room that follows the source, a
//!    new event its filters show becomes a message (content type `application/geo+json`, a GeoJSON
//!    Feature), a changed event an edit of that message, a withdrawn one a delete — sent as the
//!    source's user through the routes, like a client's SEND, each with a nonce derived from the
//!    event, and waited for until its RECEIPT;
//! 4. records the event's new state only then.
//!
//! So a crash anywhere repeats at most step 3 when the frame comes again (a feed replays after a
//! reconnect), and the rooms answer the repeated SENDs with their first RECEIPTs (the nonces); an
//! event that is unchanged, or a replay of one already handled, sends nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::delivery::{Outbound, SessionHandle, SessionId, SessionInbox};
use crate::model::{MessageKind, RoomId, Seq};
use crate::ports::{FeedEvent, Follow, Ports, Source};
use crate::room::{Draft, RoomMessage};
use crate::route::Routes;
use crate::trace::TraceParent;

pub mod supervisor;

/// The content type of a feed message's body: a GeoJSON Feature.
pub const FEED_CONTENT_TYPE: &str = "application/geo+json";

/// Counter: frames of a feed skipped (labels `feed`, `reason`).
pub const EVENTS_SKIPPED: &str = "banter_feed_events_skipped_total";
/// Counter: events of a feed handled (labels `feed`, `outcome`: `posted`, `edited`, `deleted`,
/// `unchanged`, `filtered`).
pub const EVENTS_HANDLED: &str = "banter_feed_events_total";

/// Longest wait for a room's RECEIPT.
const RECEIPT_WAIT: Duration = Duration::from_secs(10);
/// SENDs of one room item tried at most (each with the same nonce).
const SEND_ATTEMPTS: u32 = 6;
/// Raw frames kept per source by a store-backed raw log.
pub const RAW_KEEP: u32 = 10_000;

/// What happened to an event at its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAction {
    /// A new event.
    Create,
    /// New values of a known event.
    Update,
    /// The event was withdrawn.
    Delete,
}

/// What a map needs of an event.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedData {
    /// When it happened (ms since the Unix epoch).
    pub time_ms: i64,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Depth in km, positive down.
    pub depth_km: Option<f64>,
    /// Magnitude.
    pub magnitude: Option<f64>,
    /// Magnitude type.
    pub magnitude_type: Option<String>,
    /// Region name.
    pub region: Option<String>,
}

/// One event as a feed's format reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceEvent {
    /// What happened to it.
    pub action: SourceAction,
    /// The source's id of it (at most 64 bytes).
    pub id: String,
    /// Its values; `None` for a delete.
    pub data: Option<FeedData>,
}

/// Why a frame was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// A stable label, for the metric.
    pub reason: &'static str,
    /// What was wrong, for the log.
    pub message: String,
}

/// What a feed's connection hands over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedInput {
    /// A connection is up.
    Connected,
    /// A text frame, as received.
    Frame(String),
    /// The connection is gone (why); the feed reconnects by itself.
    Disconnected(String),
}

/// A live feed: how to stay connected to it and how to read its frames.
pub trait Feed: Send + Sync + 'static {
    /// Keeps a connection, handing what it gets to `out` (in order) until `stop` turns true or
    /// `out` is closed.
    fn run(
        &self,
        out: mpsc::Sender<FeedInput>,
        stop: watch::Receiver<bool>,
    ) -> BoxFuture<'static, ()>;

    /// Reads one frame.
    fn parse(&self, frame: &str) -> Result<SourceEvent, Skipped>;
}

/// Where a source's raw frames are journaled before they are mapped.
pub trait RawLog: Send + Sync + 'static {
    /// Appends `frame`, durably once the future resolves `Ok`.
    fn append<'a>(
        &'a self,
        source: &'a Source,
        frame: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The raw log of the embedded stack: the store's table, keeping each source's newest
/// [`RAW_KEEP`] frames.
pub struct StoreRawLog(pub Ports);

impl RawLog for StoreRawLog {
    fn append<'a>(
        &'a self,
        source: &'a Source,
        frame: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let now = self.0.clock.now_ms();
            self.0
                .store
                .append_raw(source.id, frame, now, RAW_KEEP)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A configured source.
#[derive(Clone)]
pub struct SourceSpec {
    /// Its name (unique; a metric label, the `{source}` of the GeoJSON endpoint).
    pub name: String,
    /// The name of its own feed room (created on first start).
    pub room: String,
    /// Its feed.
    pub feed: Arc<dyn Feed>,
}

/// What a source actor needs.
#[derive(Clone)]
pub struct SourceDeps {
    /// Store, clock, ownership.
    pub ports: Ports,
    /// How its SENDs reach rooms.
    pub routes: Arc<dyn Routes>,
    /// Where its raw frames go.
    pub raw: Arc<dyn RawLog>,
    /// This node's session ids (shared with the gateway's sessions).
    pub sessions: Arc<dyn Fn() -> SessionId + Send + Sync>,
}

/// Messages of an [`IngestSource`].
pub enum SourceMessage {
    /// One input of the feed, answered once handled (the pump waits for it: back-pressure).
    Input(FeedInput, RpcReplyPort<()>),
    /// Stops unless this node still serves the source.
    CheckOwner,
}

impl ractor::Message for SourceMessage {}

/// The actor of one source (see the module doc).
pub struct IngestSource;

/// Arguments of an [`IngestSource`].
pub struct SourceArgs {
    /// The source as the store keeps it.
    pub source: Source,
    /// Its config.
    pub spec: SourceSpec,
    /// Its dependencies.
    pub deps: SourceDeps,
}

/// State of an [`IngestSource`].
pub struct SourceState {
    source: Source,
    spec: SourceSpec,
    deps: SourceDeps,
    session: SessionHandle,
    inbox: SessionInbox,
    /// Stops the feed's tasks when the actor goes.
    stop: watch::Sender<bool>,
    receipts: u64,
}

impl Actor for IngestSource {
    type Msg = SourceMessage;
    type State = SourceState;
    type Arguments = SourceArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SourceMessage>,
        args: SourceArgs,
    ) -> Result<SourceState, ActorProcessingErr> {
        let SourceArgs { source, spec, deps } = args;
        let now = deps.ports.clock.now_ms();
        if deps
            .ports
            .store
            .source_room(source.id, &spec.room)
            .await?
            .is_none()
        {
            let room = deps
                .ports
                .store
                .create_feed_room(source.id, &spec.room, None, None, None, now)
                .await?;
            info!(source = %spec.name, room_id = %room.id, "feed room created");
        }
        let (session, inbox) = SessionHandle::new((deps.sessions)(), source.user_id, 64);
        deps.routes.session_started(&session);
        let (stop, stopped) = watch::channel(false);
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(spec.feed.run(tx, stopped.clone()));
        tokio::spawn(pump(rx, myself.clone(), stopped));
        myself.send_interval(Duration::from_secs(1), || SourceMessage::CheckOwner);
        info!(source = %spec.name, source_id = %source.id, "ingest source started");
        Ok(SourceState {
            source,
            spec,
            deps,
            session,
            inbox,
            stop,
            receipts: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SourceMessage>,
        message: SourceMessage,
        state: &mut SourceState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SourceMessage::Input(input, reply) => {
                state.on_input(input).await;
                let _ = reply.send(());
            }
            SourceMessage::CheckOwner => {
                if state
                    .deps
                    .ports
                    .ownership
                    .serving_source(state.source.id)
                    .is_none()
                {
                    info!(source = %state.spec.name, "this node no longer serves the source");
                    myself.stop(Some("moved".into()));
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SourceMessage>,
        state: &mut SourceState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.stop.send(true);
        state.deps.routes.session_ended(state.session.id);
        debug!(source = %state.spec.name, "ingest source stopped");
        Ok(())
    }
}

/// Hands the feed's inputs to the actor one at a time, each once the previous one is handled.
async fn pump(
    mut rx: mpsc::Receiver<FeedInput>,
    actor: ActorRef<SourceMessage>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let input = tokio::select! {
            input = rx.recv() => input,
            _ = stopped.changed() => None,
        };
        let Some(input) = input else { return };
        if ractor::call!(actor, SourceMessage::Input, input).is_err() {
            return;
        }
    }
}

/// One room item a source sends.
struct Item {
    room: RoomId,
    kind: MessageKind,
    body: String,
    nonce: String,
}

impl SourceState {
    async fn on_input(&mut self, input: FeedInput) {
        match input {
            FeedInput::Connected => info!(source = %self.spec.name, "feed connected"),
            FeedInput::Disconnected(why) => {
                info!(source = %self.spec.name, %why, "feed disconnected");
            }
            FeedInput::Frame(frame) => self.on_frame(&frame).await,
        }
    }

    async fn on_frame(&mut self, frame: &str) {
        if let Err(e) = self.journal_raw(frame).await {
            warn!(source = %self.spec.name, error = %e, "raw frame not journaled; skipped");
            self.skipped("not_journaled");
            return;
        }
        let event = match self.spec.feed.parse(frame) {
            Ok(event) => event,
            Err(skip) => {
                warn!(source = %self.spec.name, reason = skip.reason, error = %skip.message, "feed frame skipped");
                self.skipped(skip.reason);
                return;
            }
        };
        if let Err(e) = self.apply(event).await {
            warn!(source = %self.spec.name, error = %e, "feed event not applied; it is applied when the feed sends it again");
            self.skipped("not_applied");
        }
    }

    fn skipped(&self, reason: &'static str) {
        ::metrics::counter!(EVENTS_SKIPPED, "feed" => self.spec.name.clone(), "reason" => reason)
            .increment(1);
    }

    fn handled(&self, outcome: &'static str) {
        ::metrics::counter!(EVENTS_HANDLED, "feed" => self.spec.name.clone(), "outcome" => outcome)
            .increment(1);
    }

    async fn journal_raw(&self, frame: &str) -> Result<(), String> {
        let mut pause = Duration::from_millis(100);
        let mut last = String::new();
        for _ in 0..4 {
            match self.deps.raw.append(&self.source, frame).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        Err(last)
    }

    /// Brings every following room and the event's stored state in line with `event`.
    async fn apply(&mut self, event: SourceEvent) -> Result<(), String> {
        let store = self.deps.ports.store.clone();
        let err = |e: crate::ports::StoreError| e.to_string();
        let previous = store
            .feed_event(self.source.id, &event.id)
            .await
            .map_err(err)?;
        if previous.as_ref().is_some_and(|p| p.deleted_at_ms.is_some()) {
            self.handled("unchanged");
            return Ok(());
        }
        let now = self.deps.ports.clock.now_ms();
        let next = match (&event.data, event.action) {
            (_, SourceAction::Delete) => match &previous {
                Some(p) => FeedEvent {
                    deleted_at_ms: Some(now),
                    updated_at_ms: now,
                    ..p.clone()
                },
                // A withdrawal of an event never seen: nothing shows it.
                None => {
                    self.handled("unchanged");
                    return Ok(());
                }
            },
            (Some(d), _) => FeedEvent {
                source: self.source.id,
                id: event.id.clone(),
                time_ms: d.time_ms,
                lat: d.lat,
                lon: d.lon,
                depth_km: d.depth_km,
                magnitude: d.magnitude,
                magnitude_type: d.magnitude_type.clone(),
                region: d.region.clone(),
                deleted_at_ms: None,
                updated_at_ms: now,
            },
            (None, _) => return Err("a create or an update without values".into()),
        };
        let changed = previous
            .as_ref()
            .is_none_or(|p| !same_values(p, &next) || next.deleted_at_ms.is_some());
        // A create seen again with no state recorded (a crash after its message was posted, before
        // the state was) is what the message already shows: it edits nothing. An update does.
        let edits = changed && !(previous.is_none() && event.action == SourceAction::Create);
        let body = feature(&self.spec.name, &next).to_string();
        let follows = store.follows(self.source.id).await.map_err(err)?;
        let mut outcome = "unchanged";
        for follow in follows {
            let posted = store.feed_post(follow.room, &event.id).await.map_err(err)?;
            let Some(item) = plan(&follow, posted, &next, edits, &body) else {
                if posted.is_none() && next.deleted_at_ms.is_none() {
                    outcome = "filtered";
                }
                continue;
            };
            let kind = item.kind;
            match self.send(&item).await? {
                Some(seq) if kind == MessageKind::Post => {
                    store
                        .put_feed_post(follow.room, &event.id, seq)
                        .await
                        .map_err(err)?;
                    outcome = "posted";
                }
                Some(_) if matches!(kind, MessageKind::Delete(_)) => outcome = "deleted",
                Some(_) => outcome = "edited",
                None => {}
            }
        }
        if changed {
            store.put_feed_event(&next).await.map_err(err)?;
        }
        self.handled(outcome);
        Ok(())
    }

    /// Sends one item as the source's user until its room answers; `Ok(None)` when the room refused
    /// it for good (its target was deleted meanwhile).
    async fn send(&mut self, item: &Item) -> Result<Option<Seq>, String> {
        let mut pause = Duration::from_millis(200);
        let mut last = String::new();
        for _ in 0..SEND_ATTEMPTS {
            self.receipts += 1;
            let receipt = format!("s{}", self.receipts);
            let draft = Draft {
                body: item.body.clone(),
                attachments: Vec::new(),
                kind: item.kind,
                content_type: Some(FEED_CONTENT_TYPE.to_owned()),
            };
            self.deps
                .routes
                .to_room(
                    item.room,
                    RoomMessage::Publish {
                        session: self.session.clone().into(),
                        receipt: Some(receipt.clone()),
                        trace: TraceParent::new_root(),
                        nonce: Some(item.nonce.clone()),
                        draft,
                    },
                )
                .await;
            match self.answer(&receipt).await {
                Ok(seq) => return Ok(Some(seq)),
                Err(e) if e.starts_with("message_deleted") || e.starts_with("unknown_message") => {
                    return Ok(None);
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        Err(format!("room {} did not take it: {last}", item.room))
    }

    /// Waits for the answer to `receipt`.
    async fn answer(&mut self, receipt: &str) -> Result<Seq, String> {
        let wait = async {
            loop {
                match self.inbox.recv().await {
                    Some(Outbound::Receipt {
                        receipt_id, seq, ..
                    }) if receipt_id == receipt => return Ok(seq),
                    Some(Outbound::Failed {
                        receipt_id,
                        message,
                    }) if receipt_id.as_deref() == Some(receipt) => return Err(message),
                    Some(_) => {}
                    None => return Err("the session's inbox closed".to_owned()),
                }
            }
        };
        tokio::time::timeout(RECEIPT_WAIT, wait)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {RECEIPT_WAIT:?}")))
    }
}

/// What a room that `follow`s the source gets of `next` (its message `posted`, if any); `edits`:
/// whether a posted message is to show new values.
fn plan(
    follow: &Follow,
    posted: Option<Seq>,
    next: &FeedEvent,
    edits: bool,
    body: &str,
) -> Option<Item> {
    let room = follow.room;
    match posted {
        None if next.deleted_at_ms.is_none() && follow.shows(next) => Some(Item {
            room,
            kind: MessageKind::Post,
            body: body.to_owned(),
            nonce: nonce(&next.id, ""),
        }),
        Some(seq) if next.deleted_at_ms.is_some() => Some(Item {
            room,
            kind: MessageKind::Delete(seq),
            body: String::new(),
            nonce: nonce(&next.id, "#delete"),
        }),
        Some(seq) if edits => Some(Item {
            room,
            kind: MessageKind::Edit(seq),
            body: body.to_owned(),
            nonce: nonce(
                &next.id,
                &format!("#{:016x}", crate::shard::stable_hash(body.as_bytes())),
            ),
        }),
        _ => None,
    }
}

/// The nonce of a SEND about event `id`: the id and `suffix`, within the 64 bytes a nonce may
/// have (a long id is replaced by its hash).
fn nonce(id: &str, suffix: &str) -> String {
    if id.len() + suffix.len() <= crate::rules::NONCE_MAX_BYTES {
        format!("{id}{suffix}")
    } else {
        format!("{:016x}{suffix}", crate::shard::stable_hash(id.as_bytes()))
    }
}

/// Whether two states of an event carry the same values.
fn same_values(a: &FeedEvent, b: &FeedEvent) -> bool {
    (a.time_ms, a.lat, a.lon, a.depth_km, a.magnitude)
        == (b.time_ms, b.lat, b.lon, b.depth_km, b.magnitude)
        && a.magnitude_type == b.magnitude_type
        && a.region == b.region
}

/// The GeoJSON Feature of an event: a feed message's body, and an item of the GeoJSON endpoint.
pub fn feature(source: &str, e: &FeedEvent) -> serde_json::Value {
    let mut coordinates = vec![json!(e.lon), json!(e.lat)];
    if let Some(depth) = e.depth_km {
        // GeoJSON's third coordinate is an elevation: up is positive.
        coordinates.push(json!(-depth));
    }
    json!({
        "type": "Feature",
        "id": e.id,
        "geometry": {"type": "Point", "coordinates": coordinates},
        "properties": {
            "source": source,
            "time_ms": e.time_ms,
            "depth_km": e.depth_km,
            "magnitude": e.magnitude,
            "magnitude_type": e.magnitude_type,
            "region": e.region,
        },
    })
}

#[cfg(test)]
mod tests;
