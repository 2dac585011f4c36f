//! Live presence events: a user's sessions hear, on `/user/queue/events`, when someone who shares a
//! room with them comes online or goes offline (event `presence`).
//!
//! Each node watches for its own users only. When a user arrives here (its first session on this
//! node), its *contacts* are loaded from the store: the members of its rooms, except rooms larger
//! than [`MAX_ROOM_MEMBERS`] (a big room's members are shown by its member list, not pushed: pushing
//! them would make every connection in a crowd an event to everyone), at most [`MAX_CONTACTS`].
//! They are reloaded when the user is added to a room, and every [`REFRESH_EVERY`] in case the
//! user's rooms gained members. Once they are first loaded, the user gets one `presence` event with
//! those of them online then (none when none is): from there on its sessions know every change,
//! whether they subscribed before or after the contacts were loaded.
//!
//! Users whose last session on this node ended in a round have their last-seen time written to the
//! store (one statement per round, one write in flight at a time), so that it outlives the node.
//!
//! Every [`ROUND`], the users whose presence flipped since the last round (on this node or any
//! other, as the presence table learned it) are matched against the local users watching them, and
//! each watcher gets **one** event listing its contacts that changed, with their state at the end of
//! the round: 10,000 users connecting at once, or a node with 10,000 users dying, is one event per
//! watcher, not one per pair.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use banter_actors::model::UserId;
use banter_actors::presence::Status;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tracing::warn;

use crate::state::AppState;

/// How often presence changes become events.
pub const ROUND: Duration = Duration::from_millis(250);
/// Rooms with more members than this make no contacts.
pub const MAX_ROOM_MEMBERS: u32 = 100;
/// Most contacts a user watches.
pub const MAX_CONTACTS: u32 = 2_000;
/// How often a watcher's contacts are loaded again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(600);
/// Contact loads running at once.
const LOADS: usize = 4;

/// One user's presence in a `presence` event.
#[derive(Serialize)]
struct Item {
    user_id: i64,
    online: bool,
    last_seen_ms: Option<i64>,
}

/// The body of a `presence` event.
#[derive(Serialize)]
struct Event {
    users: Vec<Item>,
}

/// Who watches whom on this node.
#[derive(Default)]
pub struct Watch {
    /// Each local watcher's contacts, and when they were loaded.
    contacts: HashMap<UserId, (Vec<UserId>, Instant)>,
    /// Each contact's local watchers.
    watchers: HashMap<UserId, Vec<UserId>>,
}

impl Watch {
    /// Sets `watcher`'s contacts (loaded at `at`), replacing the old ones.
    pub fn set(&mut self, watcher: UserId, contacts: Vec<UserId>, at: Instant) {
        self.remove(watcher);
        for c in &contacts {
            self.watchers.entry(*c).or_default().push(watcher);
        }
        self.contacts.insert(watcher, (contacts, at));
    }

    /// Forgets `watcher` (it left this node).
    pub fn remove(&mut self, watcher: UserId) {
        let Some((contacts, _)) = self.contacts.remove(&watcher) else {
            return;
        };
        for c in contacts {
            if let Some(w) = self.watchers.get_mut(&c) {
                w.retain(|x| *x != watcher);
                if w.is_empty() {
                    self.watchers.remove(&c);
                }
            }
        }
    }

    /// Whether `watcher`'s contacts are loaded.
    pub fn watches(&self, watcher: UserId) -> bool {
        self.contacts.contains_key(&watcher)
    }

    /// Watchers whose contacts were loaded before `before`.
    pub fn stale(&self, before: Instant) -> Vec<UserId> {
        self.contacts
            .iter()
            .filter(|(_, (_, at))| *at < before)
            .map(|(w, _)| *w)
            .collect()
    }

    /// Groups the flipped users by the local watchers that watch them.
    pub fn events(&self, flipped: &[(UserId, Status)]) -> HashMap<UserId, Vec<(UserId, Status)>> {
        let mut out: HashMap<UserId, Vec<(UserId, Status)>> = HashMap::new();
        for &(user, status) in flipped {
            for w in self.watchers.get(&user).into_iter().flatten() {
                out.entry(*w).or_default().push((user, status));
            }
        }
        out
    }
}

/// Rounds between two looks for contacts to load again.
const REFRESH_LOOK_EVERY: u64 = 40;

/// Runs the node's watch until shutdown (see the module documentation).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut watch = Watch::default();
    let permits = Arc::new(Semaphore::new(LOADS));
    let (loaded_tx, mut loaded) =
        mpsc::unbounded_channel::<(UserId, Option<Vec<UserId>>, Instant)>();
    let mut loading = std::collections::HashSet::new();
    // Users who left this node since the last write of last-seen times, and that write.
    let mut departed = std::collections::HashSet::new();
    let mut writing: Option<tokio::task::JoinHandle<()>> = None;
    let mut ticks = tokio::time::interval(ROUND);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 0u64.. {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        while let Ok((user, contacts, at)) = loaded.try_recv() {
            loading.remove(&user);
            if let Some(contacts) = contacts
                && state.presence.is_here(user)
            {
                let first = !watch.watches(user);
                if first {
                    let online: Vec<_> = state
                        .presence
                        .online_of(&contacts)
                        .into_iter()
                        .map(|u| (u, state.presence.status(u)))
                        .collect();
                    if !online.is_empty() {
                        notify(&state, user, &online);
                    }
                }
                watch.set(user, contacts, at);
            }
        }
        let changes = state.presence.take_round();
        let mut load = changes.stale;
        for (user, here) in changes.moved {
            if !here {
                watch.remove(user);
                departed.insert(user);
            } else if !watch.watches(user) {
                load.push(user);
            }
        }
        if !departed.is_empty() && writing.as_ref().is_none_or(|w| w.is_finished()) {
            let store = state.store().clone();
            let users: Vec<UserId> = departed.drain().collect();
            let at_ms = state.now_ms();
            writing = Some(tokio::spawn(async move {
                if let Err(e) = store.record_last_seen(&users, at_ms).await {
                    warn!(users = users.len(), error = %e, "cannot record last-seen times");
                }
            }));
        }
        if round % REFRESH_LOOK_EVERY == 0
            && let Some(before) = Instant::now().checked_sub(REFRESH_EVERY)
        {
            load.extend(watch.stale(before));
        }
        for user in load {
            if loading.insert(user) {
                let (store, permits, tx) =
                    (state.store().clone(), permits.clone(), loaded_tx.clone());
                tokio::spawn(async move {
                    let _permit = permits.acquire().await;
                    let at = Instant::now();
                    let contacts = match store.contacts(user, MAX_ROOM_MEMBERS, MAX_CONTACTS).await
                    {
                        Ok(c) => Some(c),
                        Err(e) => {
                            warn!(user_id = %user, error = %e, "cannot load a user's contacts");
                            None
                        }
                    };
                    let _ = tx.send((user, contacts, at));
                });
            }
        }
        for (watcher, changed) in watch.events(&changes.flipped) {
            notify(&state, watcher, &changed);
        }
    }
}

/// Sends `watcher`'s sessions on this node a `presence` event.
fn notify(state: &AppState, watcher: UserId, changed: &[(UserId, Status)]) {
    state.users.notify(watcher, "presence", &body(changed));
}

/// The JSON body of a `presence` event.
fn body(changed: &[(UserId, Status)]) -> Bytes {
    let event = Event {
        users: changed
            .iter()
            .map(|(user, s)| Item {
                user_id: user.0,
                online: s.online,
                last_seen_ms: s.last_seen_ms,
            })
            .collect(),
    };
    Bytes::from(serde_json::to_vec(&event).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[i64]) -> Vec<UserId> {
        v.iter().map(|&i| UserId(i)).collect()
    }

    const ON: Status = Status {
        online: true,
        last_seen_ms: None,
    };

    #[test]
    fn each_watcher_gets_one_event_with_its_contacts_that_changed() {
        let mut w = Watch::default();
        let t0 = Instant::now();
        w.set(UserId(1), ids(&[10, 11, 12]), t0);
        w.set(UserId(2), ids(&[11]), t0);
        let flipped = [(UserId(11), ON), (UserId(12), ON), (UserId(99), ON)];
        let mut events: Vec<_> = w.events(&flipped).into_iter().collect();
        events.sort_by_key(|e| e.0);
        assert_eq!(
            events,
            [
                (UserId(1), vec![(UserId(11), ON), (UserId(12), ON)]),
                (UserId(2), vec![(UserId(11), ON)])
            ]
        );
        // Reloaded contacts replace the old; a watcher that left watches nothing.
        w.set(UserId(1), ids(&[12]), t0);
        w.remove(UserId(2));
        let events = w.events(&flipped);
        assert_eq!(events.len(), 1);
        assert_eq!(events[&UserId(1)], vec![(UserId(12), ON)]);
        assert!(!w.watchers.contains_key(&UserId(11)), "no empty entries");
        assert!(w.watches(UserId(1)) && !w.watches(UserId(2)));
        assert!(w.stale(t0).is_empty());
        assert_eq!(w.stale(t0 + Duration::from_secs(1)), ids(&[1]));
    }

    #[test]
    fn the_event_body_lists_each_user_with_its_state() {
        let off = Status {
            online: false,
            last_seen_ms: Some(5),
        };
        let b = body(&[(UserId(3), ON), (UserId(4), off)]);
        assert_eq!(
            std::str::from_utf8(&b).expect("utf-8"),
            r#"{"users":[{"user_id":3,"online":true,"last_seen_ms":null},{"user_id":4,"online":false,"last_seen_ms":5}]}"#
        );
    }
}
