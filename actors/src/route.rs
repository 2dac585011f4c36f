//! Routes: how sessions and REST handlers reach rooms, wherever they live.
//!
//! The gateway speaks to rooms only through [`Routes`]. A single node's routes are
//! [`LocalRoutes`], over its room directory. A cluster node's routes (`banter-cluster`) look up the
//! room's shard and its owner, use [`LocalRoutes`] for the rooms this node serves, and carry the
//! rest to the owner's router as envelopes; the owner answers through the session's
//! [`SessionRef`](crate::delivery::SessionRef).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ractor::{ActorRef, RpcReplyPort};
use tokio::time::timeout;

use crate::delivery::{Outbound, SessionHandle, SessionId, SessionRef};
use crate::directory::{DirectoryMessage, RouteError};
use crate::model::{RoomId, Seq, UserId};
use crate::room::{Recent, RoomError, RoomMessage, Rooms, SubscribeOk};

/// How long a request waits for a room's answer (its activation included).
pub const ROOM_WAIT: Duration = Duration::from_secs(10);

/// A subscription's way to its room: the room actor itself when it lives on this node (commands go
/// straight to it while it runs), else through the routes.
pub type Direct = Option<ActorRef<RoomMessage>>;

/// How the gateway reaches rooms.
#[async_trait]
pub trait Routes: Send + Sync + 'static {
    /// Sends a session's command (`Publish`, `Typing`, `MarkRead`) to `room`, starting the room when
    /// needed. A command that cannot reach the room is answered to its session (`Failed`).
    async fn to_room(&self, room: RoomId, msg: RoomMessage);

    /// Tells `room`, if it is active, of a membership change (`MemberJoined`, `MemberLeft`); a room
    /// that is not active reads its members from the store when it starts.
    fn room_changed(&self, room: RoomId, msg: RoomMessage);

    /// Subscribes `session` to `room`: the replay plan, and the room actor when it lives here.
    async fn subscribe(
        &self,
        room: RoomId,
        session: SessionHandle,
        since: Option<Seq>,
    ) -> Result<(Direct, SubscribeOk), RoomError>;

    /// Ends `session`'s subscription to `room`.
    fn unsubscribe(&self, room: RoomId, session: SessionId);

    /// Asks `room` (activating it when needed) for its acknowledged messages above `after` and below
    /// `before`, at most `limit`.
    async fn recent(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Recent, RoomError>;

    /// Tells the user's sessions on the other nodes of an event for their own queue (this node's
    /// sessions are told by this node's users table). A single node has none.
    fn notify_elsewhere(&self, _user: UserId, _event: &'static str, _body: Bytes) {}

    /// A session of this node started: items for it may come from other nodes.
    fn session_started(&self, _session: &SessionHandle) {}

    /// A session of this node ended.
    fn session_ended(&self, _session: SessionId) {}
}

/// The routes of a node that serves every room itself: its room directory.
#[derive(Clone)]
pub struct LocalRoutes {
    rooms: ActorRef<DirectoryMessage<Rooms>>,
}

impl LocalRoutes {
    /// Routes over the room directory `rooms`.
    pub fn new(rooms: ActorRef<DirectoryMessage<Rooms>>) -> Self {
        LocalRoutes { rooms }
    }

    /// Sends `msg` to `room`, starting it when needed (a cluster's owner side: the session may be
    /// another node's).
    pub fn route(&self, room: RoomId, msg: RoomMessage) {
        // The directory is gone (the node is stopping): the command's session is told.
        if let Err(ractor::MessagingErr::SendErr(DirectoryMessage::Route(_, msg))) =
            self.rooms.cast(DirectoryMessage::Route(room, msg))
        {
            fail(
                msg,
                RoomError::Unavailable(room, "the node is stopping".into()),
            );
        }
    }

    /// Tells each active room for which `lost` holds to check whether this node still serves it
    /// (one that does not stops: see [`RoomMessage::CheckOwner`]).
    pub fn check_owners(&self, lost: impl Fn(RoomId) -> bool + Send + 'static) {
        let select = Box::new(move |room| lost(room).then_some(RoomMessage::CheckOwner));
        let _ = self.rooms.cast(DirectoryMessage::TellWhere(select));
    }

    /// Subscribes a session of this node or another.
    pub async fn subscribe_ref(
        &self,
        room: RoomId,
        session: SessionRef,
        since: Option<Seq>,
    ) -> Result<(Direct, SubscribeOk), RoomError> {
        let unavailable = |why: &str| RoomError::Unavailable(room, why.to_owned());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.rooms
            .cast(DirectoryMessage::Lookup(room, RpcReplyPort::from(tx)))
            .map_err(|_| unavailable("the node is stopping"))?;
        let actor = match timeout(ROOM_WAIT, rx).await {
            Ok(Ok(Ok(actor))) => actor,
            Ok(Ok(Err(RouteError::NotFound))) => return Err(RoomError::NotFound(room)),
            Ok(Ok(Err(RouteError::Moved))) => return Err(RoomError::Moved(room)),
            Ok(Ok(Err(RouteError::Unavailable(why)))) => return Err(unavailable(&why)),
            _ => return Err(unavailable("the room did not start in time")),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = RoomMessage::Subscribe {
            session,
            since,
            reply: RpcReplyPort::from(tx),
        };
        actor
            .cast(msg)
            .map_err(|_| unavailable("the room stopped"))?;
        match timeout(ROOM_WAIT, rx).await {
            Ok(Ok(result)) => result.map(|ok| (Some(actor), ok)),
            _ => Err(unavailable("the room did not answer in time")),
        }
    }
}

#[async_trait]
impl Routes for LocalRoutes {
    async fn to_room(&self, room: RoomId, msg: RoomMessage) {
        self.route(room, msg);
    }

    fn room_changed(&self, room: RoomId, msg: RoomMessage) {
        let _ = self.rooms.cast(DirectoryMessage::Tell(room, msg));
    }

    async fn subscribe(
        &self,
        room: RoomId,
        session: SessionHandle,
        since: Option<Seq>,
    ) -> Result<(Direct, SubscribeOk), RoomError> {
        self.subscribe_ref(room, session.into(), since).await
    }

    fn unsubscribe(&self, room: RoomId, session: SessionId) {
        let msg = RoomMessage::Unsubscribe {
            session_id: session,
        };
        let _ = self.rooms.cast(DirectoryMessage::Tell(room, msg));
    }

    async fn recent(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Recent, RoomError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ask = RoomMessage::GetRecent {
            after,
            before,
            limit,
            reply: RpcReplyPort::from(tx),
        };
        let unavailable = |why: String| RoomError::Unavailable(room, why);
        self.rooms
            .cast(DirectoryMessage::Route(room, ask))
            .map_err(|_| unavailable("the node is stopping".into()))?;
        match timeout(ROOM_WAIT, rx).await {
            Ok(Ok(recent)) => Ok(recent),
            // The directory drops the question when the room cannot start.
            Ok(Err(_)) => Err(unavailable("the room could not start".into())),
            Err(_) => Err(unavailable(format!("no answer within {ROOM_WAIT:?}"))),
        }
    }
}

/// Answers a command that cannot reach its room to the command's session, if it has one.
pub fn fail(msg: RoomMessage, error: RoomError) {
    let (session, receipt_id) = match msg {
        RoomMessage::Publish {
            session, receipt, ..
        } => (session, receipt),
        RoomMessage::Typing { session } | RoomMessage::MarkRead { session, .. } => (session, None),
        RoomMessage::Subscribe { reply, .. } => {
            let _ = reply.send(Err(error));
            return;
        }
        _ => return,
    };
    session.offer(Outbound::Failed {
        receipt_id,
        message: error.to_string(),
    });
}
