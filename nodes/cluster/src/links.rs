//! Links to peers: who is up, heartbeats, and the bound on what one peer may owe us.
//!
//! A [`Links`] table holds one entry per peer with a ready session: its router, when it was last
//! heard from, and three counts for this session — envelopes sent to it, received from it, and the
//! number it confirmed receiving (each heartbeat carries the sender's received count). Sent minus
//! confirmed is what sits in the queues between the two routers (ractor_cluster's are all
//! unbounded); past [`LinkLimits::max_unconfirmed`] the link is dropped instead of queuing more,
//! and whatever depended on it (remote subscriptions) is rebuilt when the peer reconnects.
//!
//! Heartbeats are pings answered at once by a pong (`echo_ms` set), which gives the round trip. A
//! peer not heard from (any envelope counts) for [`LinkLimits::down_after`] is down: its session is
//! stopped and membership redials it.
//!
//! Envelopes to a peer leave in frames. [`Links::send`] queues an envelope on its link and wakes
//! the link's sender task; the task takes everything queued by then and casts it to the peer's
//! router as one envelope (a `Batch` when there are several, at most
//! [`LinkLimits::max_frame_bytes`] each). An idle link adds no delay: the first envelope wakes the
//! task at once. A busy one pays ractor_cluster's path (the remote actor, the node session, the
//! TCP session, the writer; on the other side the reader, the sessions and the router: eight
//! mailbox hops and an encoding) once per frame instead of once per envelope; a room's RECEIPT and
//! its fan-out to the sender's node, queued by one handler, share a frame. One queue per link keeps
//! the envelopes in the order sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_proto::v1::{Batch, Envelope, Heartbeat, envelope};
use prost::Message;
use ractor::{ActorCell, ActorRef};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::metrics;
use crate::router::{Handler, RouterMessage};
use crate::wire::Wire;

/// Bounds of a link.
#[derive(Clone, Copy, Debug)]
pub struct LinkLimits {
    /// A peer silent this long is down.
    pub down_after: Duration,
    /// Envelopes sent and not yet confirmed beyond which the link is dropped.
    pub max_unconfirmed: u64,
    /// Bytes of envelopes sent in one frame, at most (an envelope larger than this goes alone).
    /// Keep it below the peers' `max_frame_bytes`, which refuse larger frames.
    pub max_frame_bytes: usize,
}

/// Why an envelope was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// There is no link to that node (not a member, not connected yet, or down).
    #[error("node {0} is not connected")]
    Down(NodeId),
    /// The node confirmed too little of what it was sent: the link was dropped.
    #[error("node {0} fell behind; its link was dropped")]
    Congested(NodeId),
}

/// What receives the envelopes that are not about links: routing.
pub trait Inbound: Send + Sync + 'static {
    /// An envelope from `from`, a peer with a live link.
    fn deliver(&self, from: NodeId, envelope: Envelope);
    /// A link to `node` came up (a new one, or one replacing an older one).
    fn peer_up(&self, _node: NodeId) {}
    /// The link to `node` went down: what depended on it is lost.
    fn peer_down(&self, node: NodeId);
}

/// Refuses every envelope: a node whose routing layer is not attached yet.
pub struct NoInbound;

impl Inbound for NoInbound {
    fn deliver(&self, _from: NodeId, _envelope: Envelope) {
        ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => "unrouted").increment(1);
    }

    fn peer_down(&self, _node: NodeId) {}
}

struct Link {
    session: ActorCell,
    /// Tells this link from an earlier one to the same peer (for its sender task).
    generation: u64,
    /// Envelopes waiting for the link's sender task, with their encoded sizes.
    queued: Vec<(Envelope, usize)>,
    /// Wakes the sender task.
    wake: Arc<Notify>,
    last_heard: Instant,
    sent: u64,
    received: u64,
    confirmed: u64,
    out: ::metrics::Counter,
    inn: ::metrics::Counter,
    unconfirmed_gauge: ::metrics::Gauge,
}

impl Link {
    fn unconfirmed(&self) -> u64 {
        self.sent.saturating_sub(self.confirmed)
    }
}

/// The links of one node, shared by its router (inbound) and its senders (outbound).
pub struct Links {
    me: NodeId,
    limits: LinkLimits,
    clock: Instant,
    links: Mutex<HashMap<NodeId, Link>>,
    generations: std::sync::atomic::AtomicU64,
    inbound: std::sync::OnceLock<std::sync::Arc<dyn Inbound>>,
}

impl Links {
    /// The links of node `me`.
    pub fn new(me: NodeId, limits: LinkLimits) -> Self {
        Links {
            me,
            limits,
            clock: Instant::now(),
            links: Mutex::new(HashMap::new()),
            generations: std::sync::atomic::AtomicU64::new(0),
            inbound: std::sync::OnceLock::new(),
        }
    }

    /// Attaches what takes routed envelopes; until then they are refused (`unrouted`). Once only.
    pub fn attach(&self, inbound: std::sync::Arc<dyn Inbound>) {
        let _ = self.inbound.set(inbound);
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Link>> {
        // Every update is a plain assignment: a panic elsewhere leaves the table consistent.
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// A ready session to `peer`: replaces any previous link to it (its counts start over), and
    /// starts the link's sender task.
    pub fn up(self: &Arc<Self>, peer: NodeId, session: ActorCell, router: ActorRef<RouterMessage>) {
        let label = peer.to_string();
        let id = session.get_id();
        let wake = Arc::new(Notify::new());
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let link = Link {
            session,
            generation,
            queued: Vec::new(),
            wake: wake.clone(),
            last_heard: Instant::now(),
            sent: 0,
            received: 0,
            confirmed: 0,
            out: ::metrics::counter!(metrics::ENVELOPES_OUT, "peer" => label.clone()),
            inn: ::metrics::counter!(metrics::ENVELOPES_IN, "peer" => label.clone()),
            unconfirmed_gauge: ::metrics::gauge!(metrics::PEER_UNCONFIRMED, "peer" => label.clone()),
        };
        let old = self.table().insert(peer, link);
        tokio::spawn(
            Sender {
                links: Arc::downgrade(self),
                peer,
                generation,
                router,
                wake,
                frames: ::metrics::counter!(metrics::FRAMES_OUT, "peer" => label),
            }
            .run(),
        );
        if let Some(old) = old {
            // Its sender task finds the link gone and ends.
            old.wake.notify_one();
            if old.session.get_id() != id {
                // What was sent on the old session may be lost with it: its dependents start over.
                old.session.stop(Some("replaced by a newer session".into()));
                self.went_down(peer);
            }
        }
        info!(%peer, "cluster link up");
        if let Some(inbound) = self.inbound.get() {
            inbound.peer_up(peer);
        }
    }

    /// The session `session` ended; removes the link it carried, if it still does. Returns the peer.
    pub fn disconnected(&self, session: &ActorCell) -> Option<NodeId> {
        let mut table = self.table();
        let peer = table
            .iter()
            .find_map(|(id, l)| (l.session.get_id() == session.get_id()).then_some(*id))?;
        let link = table.remove(&peer);
        drop(table);
        if let Some(link) = link {
            link.wake.notify_one();
        }
        ::metrics::counter!(metrics::LINKS_DROPPED, "reason" => "disconnected").increment(1);
        info!(%peer, "cluster link down: disconnected");
        self.went_down(peer);
        Some(peer)
    }

    /// The peers with a link, by id.
    pub fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<_> = self.table().keys().copied().collect();
        peers.sort_unstable();
        peers
    }

    /// Whether `peer` has a link.
    pub fn is_up(&self, peer: NodeId) -> bool {
        self.table().contains_key(&peer)
    }

    /// Sends `envelope` to `to`, stamped with this node's id: queues it on the link, whose sender
    /// task casts it (with whatever else is queued by then) to the peer's router.
    pub fn send(&self, to: NodeId, mut envelope: Envelope) -> Result<(), SendError> {
        envelope.from_node = self.me.0;
        // Sized outside the table's lock.
        let size = envelope.encoded_len();
        let mut table = self.table();
        let link = table.get_mut(&to).ok_or(SendError::Down(to))?;
        if link.unconfirmed() >= self.limits.max_unconfirmed {
            let link = table.remove(&to);
            drop(table);
            if let Some(link) = link {
                link.session.stop(Some("peer fell behind".into()));
                link.wake.notify_one();
            }
            self.went_down(to);
            ::metrics::counter!(metrics::LINKS_DROPPED, "reason" => "congested").increment(1);
            ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => "congested").increment(1);
            warn!(peer = %to, "cluster link dropped: the peer confirmed too little");
            return Err(SendError::Congested(to));
        }
        link.sent += 1;
        link.out.increment(1);
        if link.queued.is_empty() {
            // The first envelope since the task last took the queue wakes it; the rest join it.
            link.wake.notify_one();
        }
        link.queued.push((envelope, size));
        Ok(())
    }

    /// What the sender task of `peer`'s link `generation` sends next: `None` once that link is
    /// gone (down, or replaced).
    fn take_queued(&self, peer: NodeId, generation: u64) -> Option<Vec<(Envelope, usize)>> {
        let mut table = self.table();
        let link = table.get_mut(&peer)?;
        (link.generation == generation).then(|| std::mem::take(&mut link.queued))
    }

    /// Stops the links of peers silent for too long, then pings the others. Returns the peers
    /// found down.
    pub fn tick(&self) -> Vec<NodeId> {
        let now = Instant::now();
        let silent: Vec<NodeId> = self
            .table()
            .iter()
            .filter(|(_, l)| now.duration_since(l.last_heard) > self.limits.down_after)
            .map(|(id, _)| *id)
            .collect();
        for peer in &silent {
            if let Some(link) = self.table().remove(peer) {
                link.session.stop(Some("missed heartbeats".into()));
                link.wake.notify_one();
                ::metrics::counter!(metrics::LINKS_DROPPED, "reason" => "silent").increment(1);
                warn!(%peer, "cluster link down: missed heartbeats");
                self.went_down(*peer);
            }
        }
        let sent_ms = self.now_ms();
        for peer in self.peers() {
            let received = self.table().get(&peer).map(|l| l.received).unwrap_or(0);
            let ping = heartbeat(Heartbeat {
                sent_ms,
                echo_ms: 0,
                received,
            });
            if let Err(e) = self.send(peer, ping) {
                debug!(%peer, error = %e, "heartbeat not sent");
            }
        }
        for link in self.table().values() {
            link.unconfirmed_gauge.set(link.unconfirmed() as f64);
        }
        silent
    }

    /// An envelope from a peer (the router's [`Handler`]): alone, or a batch of them.
    fn on_envelope(&self, envelope: Envelope) {
        let from = NodeId(envelope.from_node);
        match envelope.body {
            Some(envelope::Body::Batch(batch)) => {
                if self.heard(from, &batch.envelopes) {
                    for inner in batch.envelopes {
                        self.dispatch(from, inner);
                    }
                }
            }
            body => {
                let envelope = Envelope { body, ..envelope };
                if self.heard(from, std::slice::from_ref(&envelope)) {
                    self.dispatch(from, envelope);
                }
            }
        }
    }

    /// Counts `envelopes` as received from `from` (a sign of life; heartbeats among them confirm
    /// what it received). `false` when `from` has no link: they are refused.
    fn heard(&self, from: NodeId, envelopes: &[Envelope]) -> bool {
        let mut table = self.table();
        let Some(link) = table.get_mut(&from) else {
            ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => "unknown_node")
                .increment(envelopes.len() as u64);
            return false;
        };
        link.last_heard = Instant::now();
        link.received += envelopes.len() as u64;
        link.inn.increment(envelopes.len() as u64);
        for envelope in envelopes {
            if let Some(envelope::Body::Heartbeat(hb)) = &envelope.body {
                link.confirmed = link.confirmed.max(hb.received);
            }
        }
        true
    }

    /// One envelope from `from`, whose link counted it.
    fn dispatch(&self, from: NodeId, envelope: Envelope) {
        match envelope.body {
            Some(envelope::Body::Heartbeat(hb)) => self.on_heartbeat(from, hb),
            Some(envelope::Body::Hello(_)) => {}
            Some(envelope::Body::Batch(_)) => {
                // Senders never nest batches.
                ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => "malformed")
                    .increment(1);
            }
            _ => match self.inbound.get() {
                Some(inbound) => inbound.deliver(from, envelope),
                None => NoInbound.deliver(from, envelope),
            },
        }
    }

    fn on_heartbeat(&self, from: NodeId, hb: Heartbeat) {
        if hb.echo_ms != 0 {
            let rtt = Duration::from_millis(self.now_ms().saturating_sub(hb.echo_ms));
            ::metrics::histogram!(metrics::PEER_RTT, "peer" => from.to_string())
                .record(rtt.as_secs_f64());
            return;
        }
        let received = self.table().get(&from).map(|l| l.received).unwrap_or(0);
        let pong = heartbeat(Heartbeat {
            sent_ms: 0,
            echo_ms: hb.sent_ms,
            received,
        });
        let _ = self.send(from, pong);
    }

    fn went_down(&self, peer: NodeId) {
        if let Some(inbound) = self.inbound.get() {
            inbound.peer_down(peer);
        }
    }

    /// The counts of the link to `peer`: sent, received, confirmed.
    pub fn counts(&self, peer: NodeId) -> Option<(u64, u64, u64)> {
        self.table()
            .get(&peer)
            .map(|l| (l.sent, l.received, l.confirmed))
    }
}

/// The sender task of one link: casts what is queued on it to the peer's router, a frame at a
/// time, until the link is gone.
struct Sender {
    links: Weak<Links>,
    peer: NodeId,
    generation: u64,
    router: ActorRef<RouterMessage>,
    wake: Arc<Notify>,
    frames: ::metrics::Counter,
}

impl Sender {
    async fn run(self) {
        loop {
            self.wake.notified().await;
            let Some(links) = self.links.upgrade() else {
                return;
            };
            let Some(queued) = links.take_queued(self.peer, self.generation) else {
                return;
            };
            let (me, max) = (links.me.0, links.limits.max_frame_bytes);
            drop(links);
            for frame in frames(me, queued, max) {
                self.frames.increment(1);
                if self
                    .router
                    .cast(RouterMessage::Deliver(Wire::Decoded(frame)))
                    .is_err()
                {
                    // The mirror of the peer's router is stopped: the session is ending, and
                    // membership takes the link down.
                    debug!(peer = %self.peer, "cluster link: frame not sent, the session is ending");
                    return;
                }
            }
        }
    }
}

/// Packs `queued` (envelopes with their encoded sizes) into frames of at most `max` bytes: a lone
/// envelope as itself, several as a batch from `from_node`.
fn frames(from_node: u32, queued: Vec<(Envelope, usize)>, max: usize) -> Vec<Envelope> {
    let mut frames = Vec::new();
    let mut batch: Vec<Envelope> = Vec::new();
    let mut bytes = 0;
    let close = |batch: &mut Vec<Envelope>, frames: &mut Vec<Envelope>| match batch.len() {
        0 => {}
        1 => frames.extend(batch.pop()),
        _ => frames.push(Envelope {
            from_node,
            body: Some(envelope::Body::Batch(Batch {
                envelopes: std::mem::take(batch),
            })),
        }),
    };
    for (envelope, size) in queued {
        // A field's key and length prefix: at most 1 + 5 bytes.
        let size = size + 6;
        if bytes + size > max && !batch.is_empty() {
            close(&mut batch, &mut frames);
            bytes = 0;
        }
        bytes += size;
        batch.push(envelope);
    }
    close(&mut batch, &mut frames);
    frames
}

/// The envelopes one frame carries, in order (tests record what a peer's router receives).
#[cfg(test)]
pub(crate) fn unbatch(frame: Envelope) -> Vec<Envelope> {
    match frame.body {
        Some(envelope::Body::Batch(batch)) => batch.envelopes,
        _ => vec![frame],
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        // Each link's sender task finds the table gone and ends.
        for link in self.table().values() {
            link.wake.notify_one();
        }
    }
}

fn heartbeat(hb: Heartbeat) -> Envelope {
    Envelope {
        from_node: 0,
        body: Some(envelope::Body::Heartbeat(hb)),
    }
}

/// The router's handler: envelopes into the link table.
pub struct LinkHandler(pub std::sync::Arc<Links>);

impl Handler for LinkHandler {
    fn deliver(&self, envelope: Envelope) {
        self.0.on_envelope(envelope);
    }

    fn ask(&self, envelope: Envelope) -> Envelope {
        self.0.on_envelope(envelope);
        Envelope::default()
    }
}

#[cfg(test)]
mod tests;
