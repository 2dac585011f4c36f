//! The owner's side of routing: envelopes from peers into room messages, and the link back.
//!
//! A `ToRoom` is served only while this node serves the room's shard, at an epoch no older than
//! the sender's view (else `moved`, or for a SEND an ERROR to its session: it is sent again). Its
//! session becomes a [`SessionRef::Remote`] whose [`PeerLink`] sends the room's answers, RECEIPTs
//! and events back as `ToSession`, `FanOut`, `DropUser` and `RoomLost` envelopes. Requests that
//! await a room (subscribe, recent) run as tasks, at most [`MAX_ASKS`] at once for all peers.
//! Envelopes for this node's sessions go to the [`Hub`](banter_actors::hub::Hub); a fan-out from
//! an owner older than one already heard for the shard is dropped.

use std::sync::Arc;

use banter_actors::account::MAX_ATTACHMENTS;
use banter_actors::delivery::{
    NodeId, Outbound, PeerOutbox, RemoteSession, SessionId, SessionRef, Stamp,
};
use banter_actors::model::{Attachment, MessageKind, RoomId, Seq, UserId};
use banter_actors::ports::{Clock, SystemClock};
use banter_actors::room::{Draft, RoomError, RoomMessage};
use banter_actors::route::Routes;
use banter_actors::trace::TraceParent;
use banter_actors::user::USER_EVENTS;
use banter_actors::wire::{from_session_addr, refusal};
use banter_proto::v1::{self, Envelope, envelope, room_reply, to_room};
use banter_telemetry::otel;
use bytes::Bytes;
use tracing::debug;

use super::ClusterRoutes;
use crate::links::Inbound;
use crate::metrics;

/// Requests from peers (subscribe, recent) served at once, at most; more are refused as busy.
pub(super) const MAX_ASKS: usize = 1024;

/// The link to another node as this node's rooms see it.
#[derive(Debug)]
pub struct PeerLink {
    node: NodeId,
    routes: std::sync::Weak<ClusterRoutes>,
}

impl PeerLink {
    fn send(&self, body: envelope::Body) -> bool {
        let Some(routes) = self.routes.upgrade() else {
            return false;
        };
        let envelope = Envelope {
            from_node: routes.me.0,
            body: Some(body),
        };
        routes.links.send(self.node, envelope).is_ok()
    }
}

impl std::fmt::Debug for ClusterRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRoutes")
            .field("me", &self.me)
            .finish()
    }
}

impl PeerOutbox for PeerLink {
    fn node(&self) -> NodeId {
        self.node
    }

    fn offer(&self, session: SessionId, item: Outbound) -> bool {
        self.send(envelope::Body::ToSession(v1::ToSession {
            session: session.local,
            item: Some(item.into()),
        }))
    }

    fn fan_out(
        &self,
        room: RoomId,
        seq: Option<Seq>,
        tail: Bytes,
        skip_user: Option<UserId>,
        stamp: Option<Stamp<'_>>,
    ) -> bool {
        let Some(routes) = self.routes.upgrade() else {
            return false;
        };
        // The owner's epoch travels with its events; a node no longer serving sends none.
        let Some(epoch) = routes
            .placement
            .serving(routes.placement.shard_of_room(room))
        else {
            return false;
        };
        // Chat messages carry the time they left, for the hop's histogram.
        let sent_at_ms = seq.map_or(0, |_| SystemClock.now_ms());
        self.send(envelope::Body::FanOut(v1::FanOut {
            room_id: room.0,
            seq,
            tail,
            skip_user: skip_user.map(|u| u.0),
            epoch: epoch.0,
            sent_at_ms,
            traceparent: stamp
                .and_then(|s| s.trace)
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            accepted_at_ms: stamp.map_or(0, |s| s.accepted_at_ms),
        }))
    }

    fn drop_user(&self, room: RoomId, user: UserId) {
        self.send(envelope::Body::DropUser(v1::DropUser {
            room_id: room.0,
            user_id: user.0,
        }));
    }

    fn room_lost(&self, room: RoomId) {
        self.send(envelope::Body::RoomLost(v1::RoomLost { room_id: room.0 }));
    }
}

pub(super) fn refused(reason: &'static str) {
    ::metrics::counter!(metrics::ENVELOPES_REFUSED, "reason" => reason).increment(1);
}

/// A peer's Publish's attachments, when they are well formed (at most [`MAX_ATTACHMENTS`], each
/// with a valid upload id).
fn publish_attachments(p: &v1::Publish) -> Option<Vec<Attachment>> {
    if p.attachments.len() > MAX_ATTACHMENTS {
        return None;
    }
    p.attachments
        .iter()
        .cloned()
        .map(Attachment::from_proto)
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

impl ClusterRoutes {
    fn peer(self: &Arc<Self>, node: NodeId) -> Arc<PeerLink> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .entry(node)
            .or_insert_with(|| {
                Arc::new(PeerLink {
                    node,
                    routes: Arc::downgrade(self),
                })
            })
            .clone()
    }

    fn reply(self: &Arc<Self>, to: NodeId, request_id: u64, result: room_reply::Result) {
        if request_id == 0 {
            return;
        }
        self.peer(to).send(envelope::Body::RoomReply(v1::RoomReply {
            request_id,
            result: Some(result),
        }));
    }

    fn on_to_room(self: &Arc<Self>, from: NodeId, request: v1::ToRoom) {
        let room = RoomId(request.room_id);
        let shard = self.placement.shard_of_room(room);
        let serving = self
            .placement
            .serving(shard)
            .filter(|e| e.0 >= request.epoch);
        let Some(op) = request.op else {
            return refused("malformed");
        };
        let session = match request.session.map(|a| from_session_addr(Some(a))) {
            Some(Ok((id, user))) if id.node == from => Some(SessionRef::Remote(RemoteSession {
                id,
                user,
                peer: self.peer(from),
            })),
            Some(_) => return refused("malformed"),
            None => None,
        };
        // A Publish's attachments were checked by the sender's actor on the peer; only their
        // shape is checked here, before anything else is done with the message.
        let parts = match (&op, &session) {
            (to_room::Op::Publish(p), Some(session)) => {
                let kind = MessageKind::from_code(p.kind, p.target_seq);
                match (publish_attachments(p), kind) {
                    (Some(attachments), Some(kind)) => Some((attachments, kind)),
                    (attachments, _) => {
                        let what = if attachments.is_none() {
                            "malformed attachments"
                        } else {
                            "malformed kind"
                        };
                        session.offer(Outbound::Failed {
                            receipt_id: p.receipt.clone(),
                            message: what.into(),
                        });
                        return refused("malformed");
                    }
                }
            }
            _ => None,
        };
        if serving.is_none() {
            refused("moved");
            let moved = room_reply::Result::Moved(v1::Moved {
                shard: shard.0,
                epoch: self.placement.owner_epoch(shard).map_or(0, |(_, e)| e.0),
            });
            if let (to_room::Op::Publish(p), Some(session)) = (&op, &session) {
                session.offer(Outbound::Failed {
                    receipt_id: p.receipt.clone(),
                    message: RoomError::Moved(room).to_string(),
                });
            }
            return self.reply(from, request.request_id, moved);
        }
        let request_id = request.request_id;
        match (op, session) {
            (to_room::Op::Publish(p), Some(session)) => {
                let (attachments, kind) = parts.unwrap_or_default();
                // A sampled message's hop into this node is a span of its own, the room's parent.
                let hop = otel::start("cluster.to_room", otel::Kind::Consumer, &p.traceparent);
                let trace = hop
                    .as_ref()
                    .map_or(p.traceparent.as_str(), |(_, t)| t.as_str());
                let trace = TraceParent::parse(trace).unwrap_or_else(TraceParent::new_root);
                self.local.route(
                    room,
                    RoomMessage::Publish {
                        session,
                        receipt: p.receipt,
                        trace,
                        nonce: p.nonce,
                        draft: Draft {
                            body: p.body,
                            attachments,
                            kind,
                            content_type: p.content_type,
                        },
                    },
                );
                if let Some((hop, _)) = hop {
                    hop.end(None);
                }
            }
            (to_room::Op::Typing(_), Some(session)) => {
                self.local.route(room, RoomMessage::Typing { session });
            }
            (to_room::Op::MarkRead(m), Some(session)) => {
                self.local.route(
                    room,
                    RoomMessage::MarkRead {
                        session,
                        seq: m.seq,
                    },
                );
            }
            (to_room::Op::Unsubscribe(_), Some(session)) => {
                self.local.unsubscribe(room, session.id());
            }
            (to_room::Op::Subscribe(s), Some(session)) => {
                let local = self.local.clone();
                self.serve_ask(from, request_id, async move {
                    match local.subscribe_ref(room, session, s.since).await {
                        Ok((_, ok)) => room_reply::Result::Subscribed(ok.into()),
                        Err(e) => room_reply::Result::Refused(refusal(&e)),
                    }
                });
            }
            (to_room::Op::GetRecent(g), _) => {
                let local = self.local.clone();
                self.serve_ask(from, request_id, async move {
                    match local.recent(room, g.after, g.before, g.limit).await {
                        Ok(recent) => room_reply::Result::Recent(recent.into()),
                        Err(e) => room_reply::Result::Refused(refusal(&e)),
                    }
                });
            }
            (to_room::Op::MemberJoined(m), _) => {
                let msg = RoomMessage::MemberJoined {
                    user: UserId(m.user_id),
                    username: m.username,
                };
                self.local.room_changed(room, msg);
            }
            (to_room::Op::MemberLeft(m), _) => {
                let msg = RoomMessage::MemberLeft {
                    user: UserId(m.user_id),
                };
                self.local.room_changed(room, msg);
            }
            _ => refused("malformed"),
        }
    }

    /// Runs a request that awaits a room as a task (bounded), and answers it.
    fn serve_ask(
        self: &Arc<Self>,
        from: NodeId,
        request_id: u64,
        serve: impl Future<Output = room_reply::Result> + Send + 'static,
    ) {
        let Ok(permit) = self.asks.clone().try_acquire_owned() else {
            refused("busy");
            let busy = RoomError::Unavailable(RoomId(0), "the node is busy; try again".into());
            return self.reply(
                from,
                request_id,
                room_reply::Result::Refused(refusal(&busy)),
            );
        };
        let routes = self.clone();
        tokio::spawn(async move {
            let result = serve.await;
            routes.reply(from, request_id, result);
            drop(permit);
        });
    }

    fn on_to_session(&self, from: NodeId, to: v1::ToSession) {
        let session = SessionId::new(self.me, to.session);
        match to.item.map(Outbound::try_from) {
            Some(Ok(item)) => {
                let answers_a_send = matches!(
                    &item,
                    Outbound::Receipt { .. }
                        | Outbound::Failed {
                            receipt_id: Some(_),
                            ..
                        }
                );
                if answers_a_send {
                    self.count_unanswered(session, from, false);
                }
                self.hub.offer(session, item);
            }
            _ => refused("malformed"),
        }
    }

    /// An event for a user's sessions on this node; only the known events are taken.
    fn on_to_user(&self, u: v1::ToUser) {
        let Some(v1::to_user::Op::Notify(n)) = u.op else {
            return refused("unrouted");
        };
        let Some(event) = USER_EVENTS.iter().copied().find(|e| *e == n.event) else {
            return refused("malformed");
        };
        self.users.notify(UserId(u.user_id), event, &n.body);
    }

    fn on_fan_out(&self, f: v1::FanOut) {
        let room = RoomId(f.room_id);
        let shard = self.placement.shard_of_room(room);
        {
            let mut epochs = self
                .fan_out_epochs
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let Some(seen) = epochs.get_mut(shard.0 as usize) else {
                return refused("malformed");
            };
            if f.epoch < *seen {
                debug!(room_id = %room, epoch = f.epoch, seen = *seen, seq = ?f.seq, "a fan-out of an older owner: dropped");
                return refused("stale_epoch");
            }
            *seen = f.epoch;
        }
        if f.sent_at_ms != 0 {
            let hop_ms = SystemClock.now_ms().saturating_sub(f.sent_at_ms);
            self.routed.hop.record(hop_ms.max(0) as f64 / 1000.0);
        }
        let delivered = self.hub.fan_out(
            room,
            f.seq,
            &f.tail,
            f.skip_user.map(UserId),
            f.accepted_at_ms,
        );
        if !f.traceparent.is_empty() {
            // The hop from the room's node to this one's sessions, under the room's span.
            let sent = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(f.sent_at_ms).unwrap_or(0));
            otel::record(
                "cluster.fan_out",
                otel::Kind::Consumer,
                &f.traceparent,
                sent,
                vec![otel::KeyValue::new("fan_out.sessions", delivered as i64)],
            );
        }
    }
}

impl Inbound for ClusterRoutes {
    fn deliver(&self, from: NodeId, envelope: Envelope) {
        let Some(routes) = self.this.upgrade() else {
            return;
        };
        // Indexes of `metrics::Routed::KINDS`.
        let kind = match &envelope.body {
            Some(envelope::Body::ToRoom(_)) => 0,
            Some(envelope::Body::RoomReply(_)) => 1,
            Some(envelope::Body::ToSession(_)) => 2,
            Some(envelope::Body::FanOut(_)) => 3,
            Some(envelope::Body::DropUser(_)) => 4,
            Some(envelope::Body::RoomLost(_)) => 5,
            Some(envelope::Body::ToUser(_)) => 6,
            Some(envelope::Body::Presence(_)) => 7,
            Some(envelope::Body::ToAccount(_)) => 8,
            Some(envelope::Body::AccountReply(_)) => 9,
            _ => 10,
        };
        self.routed.count(kind);
        match envelope.body {
            Some(envelope::Body::ToRoom(r)) => routes.on_to_room(from, r),
            Some(envelope::Body::RoomReply(r)) => {
                let answered = r
                    .result
                    .is_some_and(|result| self.requests.answer(from, r.request_id, result));
                if !answered {
                    refused("late_reply");
                }
            }
            Some(envelope::Body::ToSession(s)) => self.on_to_session(from, s),
            Some(envelope::Body::FanOut(f)) => self.on_fan_out(f),
            Some(envelope::Body::DropUser(d)) => {
                self.hub.drop_user(RoomId(d.room_id), UserId(d.user_id));
            }
            Some(envelope::Body::RoomLost(l)) => self.hub.room_lost(RoomId(l.room_id)),
            Some(envelope::Body::Presence(p)) => {
                if !super::presence::on_presence(&self.presence, from, p) {
                    refused("oversized");
                }
            }
            Some(envelope::Body::ToUser(u)) => self.on_to_user(u),
            Some(envelope::Body::ToAccount(a)) => routes.on_to_account(from, a),
            Some(envelope::Body::AccountReply(r)) => self.on_account_reply(from, r),
            _ => refused("unrouted"),
        }
    }

    fn peer_up(&self, node: NodeId) {
        super::presence::send_snapshot(&self.links, &self.presence, node);
    }

    fn peer_down(&self, node: NodeId) {
        self.presence.drop_node(node);
        self.requests.node_down(node);
        self.account_requests.node_down(node);
        // Their SENDs may or may not be durable: the sessions close with an ERROR, and the clients
        // resend with the same nonce (or check history).
        for session in self.take_unanswered(node) {
            self.hub.offer(
                session,
                Outbound::Failed {
                    receipt_id: None,
                    message: format!(
                        "lost the link to node {node}, which serves a room you sent to: the \
                         outcome of unanswered messages is unknown; resend them with the same nonce"
                    ),
                },
            );
        }
        for room in self.hub.rooms_on(node) {
            self.hub.room_lost(room);
        }
    }
}
