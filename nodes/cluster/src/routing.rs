//! Routing: rooms reached wherever they live, one envelope per command, answers through the
//! session's node.
//!
//! [`ClusterRoutes`] is a cluster node's [`Routes`]. For each command it finds the room's shard and
//! its owner in the [`Placement`] view: a room this node serves goes to its local directory
//! ([`LocalRoutes`]); any other goes to the owner's router as a `ToRoom` envelope naming the session
//! (`SessionAddr`). While a shard has no owner or the owner's link is not up (a move, a failover,
//! a node starting) a command waits, up to [`ClusterRoutes::WAIT`], for the view to settle; then it
//! fails to its session ("unavailable, try again"). One session's commands to one room leave on
//! one link in order, so they reach the room in the order sent.
//!
//! Requests that want an answer (subscribe, recent) carry a request id; the owner answers with a
//! `RoomReply`, or `moved` when it does not serve the shard (a stale view), and the request tries
//! again. A remote subscription is registered in this node's [`Hub`] *before* it is asked for, so
//! the room's first events after its answer find the session; events of a room arrive as one
//! `FanOut` per node. When a link goes down, every subscription to that node's rooms is lost and
//! the sessions subscribe again from their last seq, wherever the room lives by then.
//!
//! Presence crosses nodes too ([`presence`]): each node's users go to every peer.
//!
//! The owner's side, [`inbound`], turns envelopes back into room messages with remote
//! [`SessionRef`](banter_actors::delivery::SessionRef)s whose replies cross back as `ToSession`.

mod accounts;
mod inbound;
mod presence;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use banter_actors::account::{LocalAccounts, UploadRules};
use banter_actors::delivery::{NodeId, SessionHandle, SessionId};
use banter_actors::hub::Hub;
use banter_actors::model::{Attachment, RoomId, Seq, UserId};
use banter_actors::presence::Presence;
use banter_actors::room::{Recent, RoomError, RoomMessage, SubscribeOk};
use banter_actors::route::{Direct, LocalRoutes, ROOM_WAIT, Routes, fail};
use banter_actors::shard::{Epoch, ShardId};
use banter_actors::user::Users;
use banter_actors::wire::{room_error, session_addr};
use banter_proto::v1::{self, Envelope, envelope, room_reply, to_room, to_user};
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use inbound::PeerLink;

use crate::links::Links;
use crate::placement::Placement;

/// Where a room lives for a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// This node serves it.
    Here,
    /// Another node does, under that epoch, and its link is up.
    There(NodeId, ShardId, Epoch),
}

/// Requests waiting for a `RoomReply`, by id.
#[derive(Default)]
struct Requests {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, (NodeId, oneshot::Sender<room_reply::Result>)>>,
}

impl Requests {
    fn open(&self, node: NodeId) -> (u64, oneshot::Receiver<room_reply::Result>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, (node, tx));
        (id, rx)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, (NodeId, oneshot::Sender<room_reply::Result>)>>
    {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Hands an answer to its request; `false` when none waits (late or unknown).
    fn answer(&self, from: NodeId, id: u64, result: room_reply::Result) -> bool {
        let mut waiting = self.lock();
        match waiting.get(&id) {
            Some((node, _)) if *node == from => {}
            _ => return false,
        }
        waiting
            .remove(&id)
            .is_some_and(|(_, tx)| tx.send(result).is_ok())
    }

    /// Fails every request waiting on `node` (its link went down).
    fn node_down(&self, node: NodeId) {
        self.lock().retain(|_, (n, _)| *n != node);
    }
}

/// A cluster node's routes.
pub struct ClusterRoutes {
    this: std::sync::Weak<ClusterRoutes>,
    me: NodeId,
    local: LocalRoutes,
    placement: Arc<Placement>,
    links: Arc<Links>,
    hub: Arc<Hub>,
    requests: Requests,
    peers: Mutex<HashMap<NodeId, Arc<PeerLink>>>,
    /// Highest epoch seen in a fan-out, per shard: older owners' events are ignored.
    fan_out_epochs: Mutex<Vec<u64>>,
    /// Remote requests being served, bounded (`inbound::MAX_ASKS`).
    asks: Arc<tokio::sync::Semaphore>,
    /// This node's users, for events other nodes deliver to their users' sessions here.
    users: Arc<Users>,
    /// SENDs with a receipt sent to another node and not answered yet, by session and node: when
    /// that node's link goes down their outcome is unknown, and the session is told.
    unanswered: Mutex<HashMap<(SessionId, NodeId), u32>>,
    /// Who is online here and on the peers (`presence`).
    presence: Arc<Presence>,
    /// Metric handles of received envelopes.
    routed: crate::metrics::Routed,
    /// This node's users' actors, when uploads are on ([`accounts`]).
    accounts: Option<LocalAccounts>,
    /// What an upload may be (empty when uploads are off).
    account_rules: UploadRules,
    /// Requests to users' actors of other nodes waiting for an answer.
    account_requests: accounts::AccountRequests,
}

impl ClusterRoutes {
    /// How long a command waits for its room's shard to have a reachable owner.
    pub const WAIT: Duration = Duration::from_secs(10);

    /// The routes of the node `me`: `local` for the rooms it serves, `links` to reach the others;
    /// `accounts`, its directory of users' actors when uploads are on (then the routes are also
    /// the node's [`AccountRoutes`](banter_actors::account::AccountRoutes)).
    pub fn new(
        local: LocalRoutes,
        users: Arc<Users>,
        placement: Arc<Placement>,
        links: Arc<Links>,
        presence: Arc<Presence>,
        accounts: Option<LocalAccounts>,
    ) -> Arc<ClusterRoutes> {
        use banter_actors::account::AccountRoutes as _;
        let account_rules = accounts.as_ref().map_or_else(
            || UploadRules {
                max_upload_bytes: 0,
                allowed_types: Arc::from([]),
            },
            |a| a.rules().clone(),
        );
        let shards = placement.shards() as usize;
        let routes = Arc::new_cyclic(|this| ClusterRoutes {
            this: this.clone(),
            me: placement.me(),
            local,
            placement,
            links: links.clone(),
            hub: Arc::new(Hub::new()),
            requests: Requests::default(),
            peers: Mutex::new(HashMap::new()),
            fan_out_epochs: Mutex::new(vec![0; shards]),
            asks: Arc::new(tokio::sync::Semaphore::new(inbound::MAX_ASKS)),
            unanswered: Mutex::new(HashMap::new()),
            users,
            presence,
            routed: crate::metrics::Routed::new(),
            accounts,
            account_rules,
            account_requests: accounts::AccountRequests::default(),
        });
        links.attach(routes.clone());
        tokio::spawn(check_owners(Arc::downgrade(&routes)));
        tokio::spawn(presence::broadcast(Arc::downgrade(&routes)));
        routes
    }

    /// The hub of this node's sessions.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn target_now(&self, room: RoomId) -> Option<Target> {
        let shard = self.placement.shard_of_room(room);
        if self.placement.serving(shard).is_some() {
            return Some(Target::Here);
        }
        match self.placement.owner_epoch(shard) {
            Some((node, epoch)) if node != self.me && self.links.is_up(node) => {
                Some(Target::There(node, shard, epoch))
            }
            _ => None,
        }
    }

    /// Where `room` lives, waiting (until `deadline`) while its shard has no reachable owner.
    async fn target(&self, room: RoomId, deadline: Instant) -> Result<Target, RoomError> {
        loop {
            if let Some(target) = self.target_now(room) {
                return Ok(target);
            }
            if Instant::now() >= deadline {
                return Err(RoomError::Unavailable(
                    room,
                    "no node serves it right now; try again".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn send(&self, node: NodeId, to_room: v1::ToRoom) -> bool {
        let envelope = Envelope {
            from_node: self.me.0,
            body: Some(envelope::Body::ToRoom(to_room)),
        };
        self.links.send(node, envelope).is_ok()
    }

    /// Sends a one-way `op` to `room` on `node`; `false` when the link refused it.
    fn tell(
        &self,
        room: RoomId,
        (node, shard, epoch): (NodeId, ShardId, Epoch),
        session: Option<v1::SessionAddr>,
        op: to_room::Op,
    ) -> bool {
        let to_room = v1::ToRoom {
            shard: shard.0,
            epoch: epoch.0,
            room_id: room.0,
            session,
            request_id: 0,
            op: Some(op),
        };
        self.send(node, to_room)
    }

    /// Counts a receipted SEND to `node` out (`true`) or answered (`false`).
    fn count_unanswered(&self, session: SessionId, node: NodeId, out: bool) {
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|p| p.into_inner());
        let count = unanswered.entry((session, node)).or_default();
        if out {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                unanswered.remove(&(session, node));
            }
        }
    }

    /// The sessions with SENDs to `node` not answered yet, forgotten.
    fn take_unanswered(&self, node: NodeId) -> Vec<SessionId> {
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|p| p.into_inner());
        let sessions: Vec<SessionId> = unanswered
            .keys()
            .filter(|(_, n)| *n == node)
            .map(|(s, _)| *s)
            .collect();
        for s in &sessions {
            unanswered.remove(&(*s, node));
        }
        sessions
    }

    /// Sends a request to `room` on `node` and waits for its answer.
    async fn ask(
        &self,
        room: RoomId,
        (node, shard, epoch): (NodeId, ShardId, Epoch),
        session: Option<v1::SessionAddr>,
        op: to_room::Op,
    ) -> Result<room_reply::Result, RoomError> {
        let (id, answer) = self.requests.open(node);
        let request = v1::ToRoom {
            shard: shard.0,
            epoch: epoch.0,
            room_id: room.0,
            session,
            request_id: id,
            op: Some(op),
        };
        let unavailable = |why: &str| RoomError::Unavailable(room, why.to_owned());
        if !self.send(node, request) {
            self.requests.forget(id);
            return Err(unavailable("its node is unreachable; try again"));
        }
        match tokio::time::timeout(ROOM_WAIT, answer).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => Err(unavailable("its node went away; try again")),
            Err(_) => {
                self.requests.forget(id);
                Err(unavailable("its node did not answer in time"))
            }
        }
    }
}

/// How often the rooms of this node check that it still serves them when nothing was dropped (a
/// lease may run out on its own: a node paused, or cut off from the store).
const CHECK_OWNERS_EVERY: Duration = Duration::from_secs(1);

/// Tells the rooms whose shard this node no longer serves to check, at once when shards are
/// dropped and every [`CHECK_OWNERS_EVERY`]: such a room stops, and its subscribers (here and on
/// other nodes) resubscribe where it lives now. Ends with the routes.
async fn check_owners(routes: std::sync::Weak<ClusterRoutes>) {
    let Some(mut dropped) = routes.upgrade().map(|r| r.placement.dropped()) else {
        return;
    };
    let mut ticks = tokio::time::interval(CHECK_OWNERS_EVERY);
    loop {
        tokio::select! {
            changed = dropped.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticks.tick() => {}
        }
        let Some(routes) = routes.upgrade() else {
            return;
        };
        let placement = routes.placement.clone();
        routes
            .local
            .check_owners(move |room| placement.serving(placement.shard_of_room(room)).is_none());
    }
}

/// A session's command as a `ToRoom` operation, with the session's address.
fn to_op(msg: RoomMessage) -> Result<(Option<v1::SessionAddr>, to_room::Op), Box<RoomMessage>> {
    Ok(match msg {
        RoomMessage::Publish {
            session,
            receipt,
            trace,
            nonce,
            draft,
        } => (
            Some(session_addr(session.id(), session.user())),
            to_room::Op::Publish(v1::Publish {
                receipt,
                body: draft.body,
                traceparent: trace.as_str().to_owned(),
                nonce,
                attachments: draft.attachments.iter().map(Attachment::to_proto).collect(),
                kind: draft.kind.code(),
                target_seq: draft.kind.target().unwrap_or(0),
                content_type: draft.content_type,
            }),
        ),
        RoomMessage::Typing { session } => (
            Some(session_addr(session.id(), session.user())),
            to_room::Op::Typing(v1::Typing {}),
        ),
        RoomMessage::MarkRead { session, seq } => (
            Some(session_addr(session.id(), session.user())),
            to_room::Op::MarkRead(v1::MarkRead { seq }),
        ),
        RoomMessage::MemberJoined { user, username } => (
            None,
            to_room::Op::MemberJoined(v1::MemberJoined {
                user_id: user.0,
                username,
            }),
        ),
        RoomMessage::MemberLeft { user } => (
            None,
            to_room::Op::MemberLeft(v1::MemberLeft { user_id: user.0 }),
        ),
        other => return Err(Box::new(other)),
    })
}

#[async_trait]
impl Routes for ClusterRoutes {
    async fn to_room(&self, room: RoomId, msg: RoomMessage) {
        let deadline = Instant::now() + Self::WAIT;
        match self.target(room, deadline).await {
            Ok(Target::Here) => self.local.route(room, msg),
            Ok(Target::There(node, shard, epoch)) => {
                // A copy of the session to answer if the link refuses the envelope.
                let session = match &msg {
                    RoomMessage::Publish {
                        session, receipt, ..
                    } => Some((session.clone(), receipt.clone())),
                    _ => None,
                };
                if let Some((s, Some(_))) = &session {
                    self.count_unanswered(s.id(), node, true);
                }
                let (addr, op) = match to_op(msg) {
                    Ok(parts) => parts,
                    Err(msg) => return self.local.route(room, *msg),
                };
                let sent = self.tell(room, (node, shard, epoch), addr, op);
                if !sent && let Some((session, receipt_id)) = session {
                    if receipt_id.is_some() {
                        self.count_unanswered(session.id(), node, false);
                    }
                    session.offer(banter_actors::delivery::Outbound::Failed {
                        receipt_id,
                        message: RoomError::Unavailable(room, "its node is unreachable".into())
                            .to_string(),
                    });
                }
            }
            Err(e) => fail(msg, e),
        }
    }

    fn room_changed(&self, room: RoomId, msg: RoomMessage) {
        match self.target_now(room) {
            Some(Target::Here) => self.local.room_changed(room, msg),
            Some(Target::There(node, shard, epoch)) => {
                if let Ok((addr, op)) = to_op(msg) {
                    self.tell(room, (node, shard, epoch), addr, op);
                }
            }
            // Nobody serves the room: its next activation reads the members from the store.
            None => {}
        }
    }

    async fn subscribe(
        &self,
        room: RoomId,
        session: SessionHandle,
        since: Option<Seq>,
    ) -> Result<(Direct, SubscribeOk), RoomError> {
        let deadline = Instant::now() + Self::WAIT;
        loop {
            let (node, shard, epoch) = match self.target(room, deadline).await? {
                Target::Here => return self.local.subscribe_ref(room, session.into(), since).await,
                Target::There(node, shard, epoch) => (node, shard, epoch),
            };
            self.hub.subscribe(room, node, session.clone());
            let addr = session_addr(session.id, session.user);
            let op = to_room::Op::Subscribe(v1::Subscribe { since });
            let answer = self.ask(room, (node, shard, epoch), Some(addr), op).await;
            let refused = match answer {
                Ok(room_reply::Result::Subscribed(ok)) => match SubscribeOk::try_from(ok) {
                    Ok(ok) => return Ok((None, ok)),
                    Err(_) => RoomError::Unavailable(room, "a malformed answer".into()),
                },
                Ok(room_reply::Result::Refused(r)) => room_error(room, r)
                    .unwrap_or_else(|_| RoomError::Unavailable(room, "refused".into())),
                Ok(room_reply::Result::Moved(_)) if Instant::now() < deadline => {
                    self.hub.unsubscribe(room, session.id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Ok(_) => RoomError::Moved(room),
                Err(e) => e,
            };
            self.hub.unsubscribe(room, session.id);
            return Err(refused);
        }
    }

    fn unsubscribe(&self, room: RoomId, session: SessionId) {
        let Some(node) = self.hub.node_of(room) else {
            return self.local.unsubscribe(room, session);
        };
        self.hub.unsubscribe(room, session);
        let shard = self.placement.shard_of_room(room);
        let addr = session_addr(session, banter_actors::model::UserId(0));
        let op = to_room::Op::Unsubscribe(v1::Unsubscribe {});
        self.tell(room, (node, shard, Epoch(0)), Some(addr), op);
    }

    async fn recent(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Recent, RoomError> {
        let deadline = Instant::now() + Self::WAIT;
        loop {
            let there = match self.target(room, deadline).await? {
                Target::Here => return self.local.recent(room, after, before, limit).await,
                Target::There(node, shard, epoch) => (node, shard, epoch),
            };
            let op = to_room::Op::GetRecent(v1::GetRecent {
                after,
                before,
                limit,
            });
            match self.ask(room, there, None, op).await? {
                room_reply::Result::Recent(recent) => {
                    return Recent::try_from(recent)
                        .map_err(|_| RoomError::Unavailable(room, "a malformed answer".into()));
                }
                room_reply::Result::Moved(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                room_reply::Result::Refused(r) => {
                    return Err(room_error(room, r)
                        .unwrap_or_else(|_| RoomError::Unavailable(room, "refused".into())));
                }
                _ => return Err(RoomError::Moved(room)),
            }
        }
    }

    fn notify_elsewhere(&self, user: UserId, event: &'static str, body: Bytes) {
        // Each node's users table holds that node's sessions of the user: every peer is told (user
        // events are rare: a room added). ARCHITECTURE.md section 5 says what replaces this.
        for peer in self.links.peers() {
            let envelope = Envelope {
                from_node: self.me.0,
                body: Some(envelope::Body::ToUser(v1::ToUser {
                    shard: 0,
                    epoch: 0,
                    user_id: user.0,
                    op: Some(to_user::Op::Notify(v1::Notify {
                        event: event.to_owned(),
                        body: body.clone(),
                    })),
                })),
            };
            let _ = self.links.send(peer, envelope);
        }
    }

    fn session_started(&self, session: &SessionHandle) {
        self.hub.register(session.clone());
    }

    fn session_ended(&self, session: SessionId) {
        self.hub.unregister(session, []);
        let mut unanswered = self.unanswered.lock().unwrap_or_else(|p| p.into_inner());
        unanswered.retain(|(s, _), _| *s != session);
    }
}

#[cfg(test)]
mod tests;
