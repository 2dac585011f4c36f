//! Presence across nodes: this node's users go to every peer, the peers' users come into the node's
//! [`Presence`] table (see `banter_actors::presence`).
//!
//! - every [`PRESENCE_EVERY`], the changes of this node's users since the last round go to each peer
//!   with a live link, as one `PresenceDelta` envelope (nothing when nothing changed);
//! - when a link comes up, the peer gets a snapshot of this node's users (`reset` on its first
//!   part), in parts of at most [`PART`] users;
//! - a peer's deltas and snapshots go into the table; when its link goes down, its users are
//!   dropped from the table at once (those with no session elsewhere are offline).
//!
//! A round's delta and a snapshot may cross (a delta taken before the snapshot, sent after it): both
//! carry state, so the next round's delta, which carries every user that changed since, sets it right.

use std::sync::Weak;
use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::model::UserId;
use banter_actors::presence::{Delta, Presence};
use banter_proto::v1::{self, Envelope, envelope};

use super::ClusterRoutes;
use crate::links::Links;

/// How often this node's changes go to its peers.
pub(super) const PRESENCE_EVERY: Duration = Duration::from_millis(250);

/// Most users one envelope names (well under the frame limit: at most 10 bytes each).
pub(super) const PART: usize = 16_384;

/// Sends this node's changes to every peer each round, until the routes are dropped.
pub(super) async fn broadcast(routes: Weak<ClusterRoutes>) {
    let mut ticks = tokio::time::interval(PRESENCE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(routes) = routes.upgrade() else {
            return;
        };
        let delta = routes.presence.take_unsent();
        if delta.is_empty() {
            continue;
        }
        for peer in routes.links.peers() {
            send_parts(&routes.links, peer, false, &delta.online, &delta.offline);
        }
    }
}

/// Sends `peer` a snapshot of this node's users (its link just came up).
pub(super) fn send_snapshot(links: &Links, presence: &Presence, peer: NodeId) {
    send_parts(links, peer, true, &presence.snapshot(), &[]);
}

/// Sends `online` and `offline` to `peer` in envelopes of at most [`PART`] users; `reset` on the
/// first (sent even when both are empty).
fn send_parts(links: &Links, peer: NodeId, reset: bool, online: &[UserId], offline: &[UserId]) {
    let ids = |users: &[UserId]| users.iter().map(|u| u.0).collect::<Vec<_>>();
    let mut first = true;
    let mut online = online.chunks(PART);
    let mut offline = offline.chunks(PART);
    loop {
        let (on, off) = match (online.next(), offline.next()) {
            (None, None) if !first => return,
            (on, off) => (on.unwrap_or_default(), off.unwrap_or_default()),
        };
        let envelope = Envelope {
            from_node: 0,
            body: Some(envelope::Body::Presence(v1::PresenceDelta {
                reset: reset && first,
                online: ids(on),
                offline: ids(off),
            })),
        };
        first = false;
        if links.send(peer, envelope).is_err() {
            // The link went down: the peer drops this node's users, and gets a snapshot next time.
            return;
        }
    }
}

/// Applies a peer's delta (or a snapshot part); a part naming more than [`PART`] users is refused.
pub(super) fn on_presence(presence: &Presence, from: NodeId, delta: v1::PresenceDelta) -> bool {
    if delta.online.len() + delta.offline.len() > 2 * PART {
        return false;
    }
    let users = |ids: Vec<i64>| ids.into_iter().map(UserId).collect();
    presence.apply(
        from,
        delta.reset,
        &Delta {
            online: users(delta.online),
            offline: users(delta.offline),
        },
    );
    true
}
