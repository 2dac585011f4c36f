//! The users of this node: a compact table, not an actor per user (an idle connection must stay
//! small, and a user with a connection is not doing anything that needs a mailbox).
//!
//! An entry lives while the user has a session on this node: it holds those sessions, so that events
//! of the user's own queue (`/user/queue/events`: a new DM, a joined room, presence changes) reach
//! every one of them, and caps how many a user may open. The table tells the node's [`Presence`] when
//! a user's first session here opens and their last one ends, under the entry's lock, so arrivals and
//! departures reach it in the order they happened. The send budget, a token bucket per user shared by
//! all of their connections on the node, is governor's keyed limiter: a cell per user who sent lately,
//! checked by sessions without a round trip, and forgotten ([`Users::trim`]) once it is full again,
//! so a reconnect does not refill it and quiet users cost nothing.
//!
//! A session holds an [`Attached`] guard: however it ends (even by a panic), dropping the guard
//! takes it out of the table.
//!
//! The table is sharded behind short `std` mutexes, never held across an await; a delivery is a
//! non-blocking push into a session's bounded outbox.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::delivery::{Outbound, SessionHandle, SessionId};
use crate::encode;
use crate::model::UserId;
use crate::presence::Presence;

/// The events of a user's own queue, by name: the only ones another node may ask to deliver.
pub const USER_EVENTS: &[&str] = &["room.added"];

const SHARDS: usize = 16;

/// One shard of the table: users and their sessions on this node.
type Shard = Mutex<HashMap<UserId, Vec<SessionHandle>>>;

/// Settings of the users table.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// Messages a user may send per second over all connections.
    pub send_per_second: NonZeroU32,
    /// Burst above that rate.
    pub send_burst: NonZeroU32,
    /// Sessions the user may have open at once on this node.
    pub max_sessions: usize,
}

/// Why a session was not registered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttachError {
    /// The user has as many sessions as allowed (the number).
    #[error("too many sessions: at most {0}")]
    TooManySessions(usize),
}

/// The send budget was spent: the user sent more than the rate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("send budget spent")]
pub struct OverBudget;

/// The users of this node with a session here.
pub struct Users {
    shards: Box<[Shard]>,
    budgets: DefaultKeyedRateLimiter<UserId>,
    config: UserConfig,
    presence: Arc<Presence>,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

/// A session's place in the [`Users`] table; dropping it takes the session out.
#[must_use = "the session leaves the table when this is dropped"]
pub struct Attached {
    users: Arc<Users>,
    user: UserId,
    session: SessionId,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.users.detach(self.user, self.session);
    }
}

impl Users {
    /// An empty table.
    pub fn new(config: UserConfig, presence: Arc<Presence>) -> Arc<Users> {
        let quota = Quota::per_second(config.send_per_second).allow_burst(config.send_burst);
        Arc::new(Users {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            budgets: RateLimiter::keyed(quota),
            config,
            presence,
            hasher: Default::default(),
        })
    }

    fn shard(&self, user: UserId) -> MutexGuard<'_, HashMap<UserId, Vec<SessionHandle>>> {
        let i = self.hasher.hash_one(user) as usize % self.shards.len();
        // A poisoned shard only means a panic elsewhere mid-update of a plain map: still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session of `session.user`, or refuses one past [`UserConfig::max_sessions`]
    /// (sessions that ended without leaving yet do not count).
    pub fn attach(self: &Arc<Self>, session: &SessionHandle) -> Result<Attached, AttachError> {
        let mut shard = self.shard(session.user);
        let sessions = shard.entry(session.user).or_default();
        if sessions.len() >= self.config.max_sessions {
            sessions.retain(|s| !s.is_closed());
            if sessions.len() >= self.config.max_sessions {
                return Err(AttachError::TooManySessions(self.config.max_sessions));
            }
        }
        if sessions.is_empty() {
            self.presence.arrived(session.user);
        }
        sessions.push(session.clone());
        Ok(Attached {
            users: self.clone(),
            user: session.user,
            session: session.id,
        })
    }

    /// Takes a session out; the user's last one here tells the presence table they left.
    fn detach(&self, user: UserId, session: SessionId) {
        let mut shard = self.shard(user);
        let Some(sessions) = shard.get_mut(&user) else {
            return;
        };
        sessions.retain(|s| s.id != session);
        if sessions.is_empty() {
            shard.remove(&user);
            self.presence.left(user);
        }
    }

    /// Delivers an event of the user's own queue (`body` is JSON) to every session of the user on
    /// this node; returns how many took it. A session too slow to take it is told to close.
    pub fn notify(&self, user: UserId, event: &str, body: &Bytes) -> usize {
        if event == "room.added" {
            self.presence.rooms_changed(user);
        }
        let shard = self.shard(user);
        let Some(sessions) = shard.get(&user) else {
            return 0;
        };
        let tail = encode::user_event_tail(event, body);
        sessions
            .iter()
            .filter(|s| s.offer(Outbound::User { tail: tail.clone() }))
            .count()
    }

    /// Takes one unit of the user's send budget.
    pub fn charge(&self, user: UserId) -> Result<(), OverBudget> {
        self.budgets.check_key(&user).map_err(|_| OverBudget)
    }

    /// Returns how many sessions the user has on this node.
    pub fn sessions_of(&self, user: UserId) -> usize {
        self.shard(user).get(&user).map_or(0, Vec::len)
    }

    /// Returns how many users have a session on this node.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Returns whether no user has a session on this node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the budgets that are full again (their users have not sent for a while): called
    /// periodically, so that the budgets of every user who ever sent do not pile up.
    pub fn trim(&self) {
        self.budgets.retain_recent();
        self.budgets.shrink_to_fit();
    }

    /// Returns how many send budgets the table holds.
    pub fn budgets(&self) -> usize {
        self.budgets.len()
    }
}

#[cfg(test)]
mod tests;
