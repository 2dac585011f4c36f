//! The directory: a supervisor that gets-or-spawns the actor of an entity (a room, a user) by key, routes
//! messages to it, restarts it lazily after a crash and lets it passivate safely.
//!
//! Sessions and HTTP handlers never hold the only route to an entity: they go through its directory
//! (or a reference they got from it while subscribed). Spawning runs in a task, so the directory never
//! waits on a store inside its handler; messages for an entity being spawned wait in order.
//!
//! Passivation is a handshake: the entity asks ([`DirectoryMessage::Passivate`]); the directory tells it
//! to stop ([`Entity::stop_message`]) and from then on holds the entity's messages. Every message routed
//! before that point is already in the entity's mailbox ahead of the stop; the ones held are delivered,
//! in order, to a fresh activation that starts only once the old actor has terminated — so there are
//! never two live actors of one entity and one sender's messages keep their order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Debug;
use std::hash::Hash;

use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use tracing::{debug, warn};

/// Why a message could not reach its entity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// The entity does not exist (e.g. no such room).
    #[error("not found")]
    NotFound,
    /// The entity could not be started; the text says why.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Another node serves the entity: it is not started here.
    #[error("served by another node")]
    Moved,
}

/// An entity kind the directory manages.
pub trait Entity: Send + Sync + 'static {
    /// Key of one entity (room id, user id).
    type Key: Copy + Eq + Hash + Debug + Send + Sync + 'static;
    /// Message type of the entity's actor.
    type Msg: ractor::Message;

    /// Spawns the actor of `key`, linked to `supervisor`; resolves once it is ready to serve.
    fn spawn(
        &self,
        key: Self::Key,
        supervisor: ActorCell,
    ) -> BoxFuture<'static, Result<ActorRef<Self::Msg>, RouteError>>;

    /// Returns the message that makes a passivating actor stop once it has finished its work.
    fn stop_message(&self) -> Self::Msg;

    /// Answers a message that cannot be delivered (for its reply port or outbox).
    fn undeliverable(&self, key: Self::Key, msg: Self::Msg, error: RouteError);
}

/// Messages of a [`Directory`].
pub enum DirectoryMessage<E: Entity> {
    /// Delivers a message to the entity, spawning it when needed.
    Route(E::Key, E::Msg),
    /// Delivers a message only to an entity that is active or starting; drops it otherwise (used for
    /// cache updates that an inactive entity would load from the store anyway).
    Tell(E::Key, E::Msg),
    /// Returns the entity's actor, spawning it when needed.
    Lookup(E::Key, RpcReplyPort<Result<ActorRef<E::Msg>, RouteError>>),
    /// An entity asks to stop because it has been idle; it is always told to stop, and forgotten
    /// first when it is the registered actor of its key.
    Passivate(E::Key, ActorRef<E::Msg>),
    /// A spawn started by the directory finished.
    Spawned(E::Key, Result<ActorRef<E::Msg>, RouteError>),
    /// Returns how many entities are live (for metrics and tests).
    GetCount(RpcReplyPort<usize>),
    /// Sends each live entity the message the function makes of its key, if it makes one (e.g. the
    /// rooms of shards this node no longer serves are told to check).
    TellWhere(Selector<E>),
}

/// Picks the live entities to tell something, and what: see [`DirectoryMessage::TellWhere`].
pub type Selector<E> = Box<dyn Fn(<E as Entity>::Key) -> Option<<E as Entity>::Msg> + Send>;

/// A directory of entities of kind `E`.
pub struct Directory<E: Entity> {
    entity: E,
}

impl<E: Entity> Directory<E> {
    /// Creates a directory for `entity`.
    pub fn new(entity: E) -> Self {
        Directory { entity }
    }
}

enum Slot<E: Entity> {
    Live(ActorRef<E::Msg>),
    Spawning(Vec<Waiting<E>>),
    /// Told to stop; messages wait for it to terminate.
    Stopping(ActorId, Vec<Waiting<E>>),
}

enum Waiting<E: Entity> {
    Msg(E::Msg),
    Lookup(RpcReplyPort<Result<ActorRef<E::Msg>, RouteError>>),
}

/// State of a [`Directory`].
pub struct DirectoryState<E: Entity> {
    slots: HashMap<E::Key, Slot<E>>,
    by_id: HashMap<ActorId, E::Key>,
}

impl<E: Entity> Directory<E> {
    fn start_spawn(&self, myself: &ActorRef<DirectoryMessage<E>>, key: E::Key) {
        let fut = self.entity.spawn(key, myself.get_cell());
        let me = myself.clone();
        tokio::spawn(async move {
            let result = fut.await;
            if let Err(ractor::MessagingErr::SendErr(DirectoryMessage::Spawned(_, Ok(actor)))) =
                me.cast(DirectoryMessage::Spawned(key, result))
            {
                // The directory is gone: nobody can route to this actor any more.
                actor.stop(Some("directory stopped".into()));
            }
        });
    }

    fn deliver(
        &self,
        state: &mut DirectoryState<E>,
        myself: &ActorRef<DirectoryMessage<E>>,
        key: E::Key,
        w: Waiting<E>,
    ) {
        match state.slots.entry(key) {
            Entry::Occupied(mut o) => match o.get_mut() {
                Slot::Live(actor) => match w {
                    Waiting::Msg(m) => {
                        if let Err(ractor::MessagingErr::SendErr(m)) = actor.cast(m) {
                            // The actor died and its supervision event is not processed yet: respawn.
                            let id = actor.get_id();
                            state.by_id.remove(&id);
                            o.insert(Slot::Spawning(vec![Waiting::Msg(m)]));
                            self.start_spawn(myself, key);
                        }
                    }
                    Waiting::Lookup(reply) => {
                        let _ = reply.send(Ok(actor.clone()));
                    }
                },
                Slot::Spawning(queue) | Slot::Stopping(_, queue) => queue.push(w),
            },
            Entry::Vacant(v) => {
                v.insert(Slot::Spawning(vec![w]));
                self.start_spawn(myself, key);
            }
        }
    }

    /// Handles the end of an entity actor: forgets it, and respawns it when messages are waiting.
    fn forget(
        &self,
        state: &mut DirectoryState<E>,
        myself: &ActorRef<DirectoryMessage<E>>,
        id: ActorId,
    ) {
        let Some(key) = state.by_id.remove(&id) else {
            return;
        };
        match state.slots.remove(&key) {
            Some(Slot::Live(actor)) if actor.get_id() != id => {
                state.slots.insert(key, Slot::Live(actor));
            }
            Some(Slot::Stopping(sid, waiting)) if sid == id && !waiting.is_empty() => {
                state.slots.insert(key, Slot::Spawning(waiting));
                self.start_spawn(myself, key);
            }
            Some(Slot::Stopping(sid, waiting)) if sid != id => {
                state.slots.insert(key, Slot::Stopping(sid, waiting));
            }
            Some(spawning @ Slot::Spawning(_)) => {
                state.slots.insert(key, spawning);
            }
            _ => {}
        }
    }
}

impl<E: Entity> Actor for Directory<E> {
    type Msg = DirectoryMessage<E>;
    type State = DirectoryState<E>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(DirectoryState {
            slots: HashMap::new(),
            by_id: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DirectoryMessage::Route(key, msg) => {
                self.deliver(state, &myself, key, Waiting::Msg(msg))
            }
            DirectoryMessage::Tell(key, msg) => {
                if state.slots.contains_key(&key) {
                    self.deliver(state, &myself, key, Waiting::Msg(msg));
                }
            }
            DirectoryMessage::Lookup(key, reply) => {
                self.deliver(state, &myself, key, Waiting::Lookup(reply))
            }
            DirectoryMessage::Spawned(key, result) => {
                let waiting = match state.slots.remove(&key) {
                    Some(Slot::Spawning(w)) => w,
                    other => {
                        // Only a spawning slot starts a spawn; anything else would make a second actor.
                        if let Some(slot) = other {
                            state.slots.insert(key, slot);
                        }
                        if let Ok(actor) = result {
                            actor.stop(Some("duplicate activation".into()));
                        }
                        return Ok(());
                    }
                };
                match result {
                    Ok(actor) => {
                        state.by_id.insert(actor.get_id(), key);
                        state.slots.insert(key, Slot::Live(actor));
                        for w in waiting {
                            self.deliver(state, &myself, key, w);
                        }
                    }
                    Err(error) => {
                        debug!(?key, %error, "entity spawn failed");
                        for w in waiting {
                            match w {
                                Waiting::Msg(m) => self.entity.undeliverable(key, m, error.clone()),
                                Waiting::Lookup(reply) => {
                                    let _ = reply.send(Err(error.clone()));
                                }
                            }
                        }
                    }
                }
            }
            DirectoryMessage::Passivate(key, actor) => {
                let id = actor.get_id();
                if let Some(slot) = state.slots.get_mut(&key)
                    && matches!(slot, Slot::Live(live) if live.get_id() == id)
                {
                    *slot = Slot::Stopping(id, Vec::new());
                }
                let _ = actor.cast(self.entity.stop_message());
            }
            DirectoryMessage::GetCount(reply) => {
                let _ = reply.send(state.slots.len());
            }
            DirectoryMessage::TellWhere(select) => {
                for (key, slot) in &state.slots {
                    if let Slot::Live(actor) = slot
                        && let Some(msg) = select(*key)
                    {
                        let _ = actor.cast(msg);
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                warn!(actor = %cell.get_id(), %error, "entity actor failed; it restarts on next use");
                self.forget(state, &myself, cell.get_id());
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                self.forget(state, &myself, cell.get_id())
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
