//! The user actor: one per user with a live connection on this node.
//!
//! It owns the user's sessions (the seed of presence), delivers events for the user's own queue
//! (`/user/queue/events`: a new DM, a joined room) to every session of the user, and owns the user's
//! send budget: a token bucket shared by all of the user's connections, checked by sessions without a
//! round trip. It tells the node's [`Presence`] table when the user's first session here opens and its
//! last one ends. It passivates when it has had no session for the idle timeout.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::time::Instant;

use crate::delivery::{Outbound, SessionId, SessionRef};
use crate::directory::{DirectoryMessage, Entity, RouteError};
use crate::encode;
use crate::model::UserId;
use crate::presence::Presence;

/// The events of a user's own queue, by name: the only ones another node may ask to deliver.
pub const USER_EVENTS: &[&str] = &["room.added"];

/// Settings of user actors.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// Messages a user may send per second over all connections.
    pub send_per_second: NonZeroU32,
    /// Burst above that rate.
    pub send_burst: NonZeroU32,
    /// Time with no session after which the actor passivates.
    pub idle_timeout: Duration,
    /// Sessions the user may have open at once on this node.
    pub max_sessions: usize,
}

/// A user's send budget, shared by their sessions.
pub type SendBudget = Arc<DefaultDirectRateLimiter>;

/// Why a session was not registered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttachError {
    /// The user has as many sessions as allowed (the number).
    #[error("too many sessions: at most {0}")]
    TooManySessions(usize),
}

/// Messages of a [`User`].
pub enum UserMessage {
    /// Registers a session of the user; replies with the user's send budget, or refuses a session
    /// past [`UserConfig::max_sessions`].
    Attach {
        /// The session.
        session: SessionRef,
        /// The shared budget.
        reply: RpcReplyPort<Result<SendBudget, AttachError>>,
    },
    /// Forgets a session (it closed).
    Detach {
        /// The session.
        session_id: SessionId,
    },
    /// Delivers an event to every session of the user; `body` is JSON.
    Notify {
        /// Event name, e.g. `room.added`.
        event: &'static str,
        /// JSON body.
        body: Bytes,
    },
    /// Returns how many sessions the user has on this node.
    GetSessionCount(RpcReplyPort<usize>),
    /// Periodic check for passivation.
    IdleCheck,
    /// Stops (sent by the directory after a passivation request).
    Stop,
}

/// The user actor.
pub struct User;

/// Arguments of a [`User`].
pub struct UserArguments {
    /// The user.
    pub user_id: UserId,
    /// Settings.
    pub config: UserConfig,
    /// The directory that spawned it.
    pub directory: ActorRef<DirectoryMessage<Users>>,
    /// The node's presence table.
    pub presence: Arc<Presence>,
}

/// State of a [`User`].
pub struct UserState {
    id: UserId,
    config: UserConfig,
    directory: ActorRef<DirectoryMessage<Users>>,
    sessions: HashMap<SessionId, SessionRef>,
    presence: Arc<Presence>,
    /// Whether the presence table counts the user here (it has a session).
    here: bool,
    budget: SendBudget,
    idle_since: Instant,
    passivation_requested: bool,
    stopping: bool,
}

impl User {
    fn on_attach(state: &mut UserState, session: SessionRef) -> Result<SendBudget, AttachError> {
        if state.sessions.len() >= state.config.max_sessions {
            // Sessions that ended without detaching yet do not count.
            state.sessions.retain(|_, s| !s.is_closed());
            if state.sessions.len() >= state.config.max_sessions {
                return Err(AttachError::TooManySessions(state.config.max_sessions));
            }
        }
        state.sessions.insert(session.id(), session);
        Ok(state.budget.clone())
    }

    fn on_detach(state: &mut UserState, session_id: SessionId) {
        state.sessions.remove(&session_id);
        if state.sessions.is_empty() {
            state.idle_since = Instant::now();
        }
    }

    fn on_notify(state: &mut UserState, event: &'static str, body: &Bytes) {
        if event == "room.added" {
            state.presence.rooms_changed(state.id);
        }
        let tail = encode::user_event_tail(event, body);
        state
            .sessions
            .retain(|_, s| s.offer(Outbound::User { tail: tail.clone() }));
    }

    fn on_idle_check(myself: &ActorRef<UserMessage>, state: &mut UserState) {
        state.sessions.retain(|_, s| !s.is_closed());
        if !state.sessions.is_empty() {
            state.idle_since = Instant::now();
        } else if !state.passivation_requested
            && state.idle_since.elapsed() >= state.config.idle_timeout
        {
            state.passivation_requested = true;
            let _ = state
                .directory
                .cast(DirectoryMessage::Passivate(state.id, myself.clone()));
        }
    }

    /// Tells the presence table when the user's first session here opened or its last one ended.
    fn settle_presence(state: &mut UserState) {
        let here = !state.sessions.is_empty();
        if here != state.here {
            state.here = here;
            if here {
                state.presence.arrived(state.id);
            } else {
                state.presence.left(state.id);
            }
        }
    }
}

impl Actor for User {
    type Msg = UserMessage;
    type State = UserState;
    type Arguments = UserArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<UserMessage>,
        args: UserArguments,
    ) -> Result<UserState, ActorProcessingErr> {
        let quota =
            Quota::per_second(args.config.send_per_second).allow_burst(args.config.send_burst);
        let period = (args.config.idle_timeout / 4).max(Duration::from_millis(50));
        myself.send_interval(period, || UserMessage::IdleCheck);
        Ok(UserState {
            id: args.user_id,
            config: args.config,
            directory: args.directory,
            sessions: HashMap::new(),
            presence: args.presence,
            here: false,
            budget: Arc::new(RateLimiter::direct(quota)),
            idle_since: Instant::now(),
            passivation_requested: false,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<UserMessage>,
        message: UserMessage,
        state: &mut UserState,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping {
            match message {
                UserMessage::Stop | UserMessage::IdleCheck => {}
                other => {
                    let _ = state
                        .directory
                        .cast(DirectoryMessage::Route(state.id, other));
                }
            }
            return Ok(());
        }
        match message {
            UserMessage::Attach { session, reply } => {
                let _ = reply.send(Self::on_attach(state, session));
            }
            UserMessage::Detach { session_id } => Self::on_detach(state, session_id),
            UserMessage::Notify { event, body } => Self::on_notify(state, event, &body),
            UserMessage::GetSessionCount(reply) => {
                let _ = reply.send(state.sessions.len());
            }
            UserMessage::IdleCheck => Self::on_idle_check(&myself, state),
            UserMessage::Stop => {
                state.stopping = true;
                myself.stop(Some("passivated".into()));
            }
        }
        Self::settle_presence(state);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<UserMessage>,
        state: &mut UserState,
    ) -> Result<(), ActorProcessingErr> {
        // Stopped with sessions (a failure: passivation waits for none), it counts them no more.
        if state.here {
            state.presence.left(state.id);
        }
        Ok(())
    }
}

/// The user entity kind, for the [`crate::directory::Directory`] of users.
pub struct Users {
    /// Settings handed to every user actor.
    pub config: UserConfig,
    /// The node's presence table.
    pub presence: Arc<Presence>,
}

impl Entity for Users {
    type Key = UserId;
    type Msg = UserMessage;

    fn spawn(
        &self,
        key: UserId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ActorRef<UserMessage>, RouteError>> {
        let args = UserArguments {
            user_id: key,
            config: self.config.clone(),
            directory: ActorRef::from(supervisor.clone()),
            presence: self.presence.clone(),
        };
        Box::pin(async move {
            Actor::spawn_linked(None, User, args, supervisor)
                .await
                .map(|(a, _)| a)
                .map_err(|e| RouteError::Unavailable(e.to_string()))
        })
    }

    fn stop_message(&self) -> UserMessage {
        UserMessage::Stop
    }

    fn undeliverable(&self, _user: UserId, _msg: UserMessage, _error: RouteError) {
        // Attach's reply port drops with the message: the session sees the call fail.
    }
}

#[cfg(test)]
mod tests;
