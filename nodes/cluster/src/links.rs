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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_proto::v1::{Envelope, Heartbeat, envelope};
use ractor::{ActorCell, ActorRef};
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
    router: ActorRef<RouterMessage>,
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

    /// A ready session to `peer`: replaces any previous link to it (its counts start over).
    pub fn up(&self, peer: NodeId, session: ActorCell, router: ActorRef<RouterMessage>) {
        let label = peer.to_string();
        let id = session.get_id();
        let link = Link {
            session,
            router,
            last_heard: Instant::now(),
            sent: 0,
            received: 0,
            confirmed: 0,
            out: ::metrics::counter!(metrics::ENVELOPES_OUT, "peer" => label.clone()),
            inn: ::metrics::counter!(metrics::ENVELOPES_IN, "peer" => label.clone()),
            unconfirmed_gauge: ::metrics::gauge!(metrics::PEER_UNCONFIRMED, "peer" => label),
        };
        let old = self.table().insert(peer, link);
        if let Some(old) = old
            && old.session.get_id() != id
        {
            // What was sent on the old session may be lost with it: its dependents start over.
            old.session.stop(Some("replaced by a newer session".into()));
            self.went_down(peer);
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
        table.remove(&peer);
        drop(table);
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

    /// Sends `envelope` to `to`, stamped with this node's id.
    pub fn send(&self, to: NodeId, mut envelope: Envelope) -> Result<(), SendError> {
        envelope.from_node = self.me.0;
        let mut table = self.table();
        let link = table.get_mut(&to).ok_or(SendError::Down(to))?;
        if link.unconfirmed() >= self.limits.max_unconfirmed {
            let link = table.remove(&to);
            drop(table);
            if let Some(link) = link {
                link.session.stop(Some("peer fell behind".into()));
            }
            self.went_down(to);
            ::metrics::counter!(metrics::LINKS_DROPPED, "reason" => "congested").increment(1);
            ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => "congested").increment(1);
            warn!(peer = %to, "cluster link dropped: the peer confirmed too little");
            return Err(SendError::Congested(to));
        }
        link.sent += 1;
        link.out.increment(1);
        let router = link.router.clone();
        // Encoding and queuing happen outside the table's lock.
        drop(table);
        match router.cast(RouterMessage::Deliver(Wire::Decoded(envelope))) {
            Ok(()) => Ok(()),
            // The mirror of the peer's router is stopped: the session is ending.
            Err(_) => Err(SendError::Down(to)),
        }
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

    /// An envelope from a peer (the router's [`Handler`]).
    fn on_envelope(&self, envelope: Envelope) {
        let from = NodeId(envelope.from_node);
        {
            let mut table = self.table();
            let Some(link) = table.get_mut(&from) else {
                ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => "unknown_node")
                    .increment(1);
                return;
            };
            link.last_heard = Instant::now();
            link.received += 1;
            link.inn.increment(1);
            if let Some(envelope::Body::Heartbeat(hb)) = &envelope.body {
                link.confirmed = link.confirmed.max(hb.received);
            }
        }
        match envelope.body {
            Some(envelope::Body::Heartbeat(hb)) => self.on_heartbeat(from, hb),
            Some(envelope::Body::Hello(_)) => {}
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
