//! Presence: who is online, counted over all of a user's sessions on all nodes, in one compact table
//! per node (no actor per user for it).
//!
//! Each node counts its own users (a user is *here* while it has a session on this node: the user
//! actor reports its first and last session) and tells its peers which of its users came and went,
//! as state, not as events: every [`Presence::take_unsent`] round (the cluster sends one envelope per
//! peer per round, a few times a second) carries the current local state of each user that changed
//! since the last one, so a user who connects and disconnects within a round costs nothing, and a
//! thousand users connecting at once cost one envelope per peer. A peer's table of this node is
//! replaced whole when a link comes up (a snapshot) and dropped when it goes down: a node that dies
//! takes its users' presence with it, on every survivor at once and without a message.
//!
//! A user is online while it is here or on any live peer; when the last of those ends, it is
//! offline and *last seen* then. [`Presence::take_round`] hands the node's watch (the live
//! `presence` events) what flipped since its last round, and which users came here or left. Reads are local (no hop): the REST API shows `online` and
//! `last_seen_ms` for the members of a room. This replicates the per-node sets, as Phoenix.Presence
//! does, rather than counting each user at one home node: the home of a shard moves with its lease,
//! and a home that died together with its users' sessions would leave them online everywhere.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::delivery::NodeId;
use crate::model::UserId;
use crate::ports::Clock;

/// A user's presence as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Whether the user has a session on some node.
    pub online: bool,
    /// When the user was last seen going offline (ms since the Unix epoch), when this node saw it.
    pub last_seen_ms: Option<i64>,
}

/// What changed since the last [`Presence::take_round`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Users whose online state flipped (and did not flip back), with their state now.
    pub flipped: Vec<(UserId, Status)>,
    /// Users of this node that came (`true`) or left (`false`).
    pub moved: Vec<(UserId, bool)>,
    /// Users of this node whose rooms changed.
    pub stale: Vec<UserId>,
}

/// A change of one node's users: `online` lists those now here, `offline` those gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Users that have a session on the node now.
    pub online: Vec<UserId>,
    /// Users that have none on the node any more.
    pub offline: Vec<UserId>,
}

impl Delta {
    /// Whether it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.online.is_empty() && self.offline.is_empty()
    }
}

/// Most users a peer may have in this node's table: a peer that names more (it cannot have that many
/// connections) has the rest ignored and counted.
pub const MAX_USERS_PER_PEER: usize = 1 << 18;

/// Most last-seen times kept (about 40 bytes each); past it, an arbitrary old one is forgotten.
pub const MAX_LAST_SEEN: usize = 1 << 20;

/// The presence table of a node.
pub struct Presence {
    clock: Arc<dyn Clock>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Users each peer has in `elsewhere`.
    per_node: HashMap<NodeId, usize>,
    /// Users a peer named past [`MAX_USERS_PER_PEER`], ignored.
    refused: u64,
    /// Users with a session on this node.
    here: HashSet<UserId>,
    /// Users with a session on another node, with those nodes.
    elsewhere: HashMap<UserId, Vec<NodeId>>,
    /// Users of this node that came or went since the last [`Presence::take_unsent`].
    unsent: HashSet<UserId>,
    /// Users whose online state changed since the last [`Presence::take_round`], with the state
    /// they had before the first change.
    flips: HashMap<UserId, bool>,
    /// Users of this node that came or went since the last [`Presence::take_round`].
    moves: HashSet<UserId>,
    /// Users of this node whose rooms changed since the last [`Presence::take_round`].
    stale: HashSet<UserId>,
    /// When users went offline, as this node saw it.
    last_seen: HashMap<UserId, i64>,
}

impl Table {
    fn online(&self, user: UserId) -> bool {
        self.here.contains(&user) || self.elsewhere.contains_key(&user)
    }

    /// Runs `change` on the table and notes a flip of `user`'s online state.
    fn tracking(&mut self, user: UserId, change: impl FnOnce(&mut Table)) {
        let before = self.online(user);
        change(self);
        if self.online(user) != before {
            self.flips.entry(user).or_insert(before);
        }
    }

    /// Notes `user` offline now if it no longer is online anywhere.
    fn seen(&mut self, user: UserId, now_ms: i64) {
        if self.online(user) {
            return;
        }
        if self.last_seen.len() >= MAX_LAST_SEEN
            && !self.last_seen.contains_key(&user)
            && let Some(old) = self.last_seen.keys().next().copied()
        {
            self.last_seen.remove(&old);
        }
        self.last_seen.insert(user, now_ms);
    }

    fn add_elsewhere(&mut self, user: UserId, node: NodeId) {
        let count = self.per_node.entry(node).or_default();
        let nodes = self.elsewhere.entry(user).or_default();
        if nodes.contains(&node) {
            return;
        }
        if *count >= MAX_USERS_PER_PEER {
            self.refused += 1;
            if nodes.is_empty() {
                self.elsewhere.remove(&user);
            }
            return;
        }
        *count += 1;
        nodes.push(node);
    }

    /// Removes `node` from `user`'s nodes; tells whether it was there.
    fn remove_elsewhere(&mut self, user: UserId, node: NodeId) -> bool {
        let Some(nodes) = self.elsewhere.get_mut(&user) else {
            return false;
        };
        let before = nodes.len();
        nodes.retain(|n| *n != node);
        let removed = nodes.len() != before;
        if nodes.is_empty() {
            self.elsewhere.remove(&user);
        }
        if removed && let Some(count) = self.per_node.get_mut(&node) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_node.remove(&node);
            }
        }
        removed
    }
}

impl Presence {
    /// An empty table; `clock` dates the last-seen times.
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Presence> {
        Arc::new(Presence {
            clock,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `user` has its first session on this node.
    pub fn arrived(&self, user: UserId) {
        let mut t = self.table();
        t.tracking(user, |t| {
            if t.here.insert(user) {
                t.unsent.insert(user);
                t.moves.insert(user);
            }
        });
    }

    /// `user`'s last session on this node ended.
    pub fn left(&self, user: UserId) {
        let now = self.clock.now_ms();
        let mut t = self.table();
        t.tracking(user, |t| {
            if t.here.remove(&user) {
                t.unsent.insert(user);
                t.moves.insert(user);
                t.seen(user, now);
            }
        });
    }

    /// `user`'s rooms changed (it was added to one): its contacts are to be loaded again.
    pub fn rooms_changed(&self, user: UserId) {
        let mut t = self.table();
        if t.here.contains(&user) {
            t.stale.insert(user);
        }
    }

    /// Takes what changed since the last call, for the node's watch.
    pub fn take_round(&self) -> Round {
        let mut t = self.table();
        let flips = std::mem::take(&mut t.flips);
        let flipped = flips
            .into_iter()
            .filter(|&(user, before)| t.online(user) != before)
            .map(|(user, _)| {
                let online = t.online(user);
                let last_seen_ms = if online {
                    None
                } else {
                    t.last_seen.get(&user).copied()
                };
                (
                    user,
                    Status {
                        online,
                        last_seen_ms,
                    },
                )
            })
            .collect();
        let moves = std::mem::take(&mut t.moves);
        let moved = moves
            .into_iter()
            .map(|u| (u, t.here.contains(&u)))
            .collect();
        let stale = std::mem::take(&mut t.stale)
            .into_iter()
            .filter(|u| t.here.contains(u))
            .collect();
        Round {
            flipped,
            moved,
            stale,
        }
    }

    /// Returns `user`'s presence.
    pub fn status(&self, user: UserId) -> Status {
        let t = self.table();
        let online = t.online(user);
        Status {
            online,
            last_seen_ms: if online {
                None
            } else {
                t.last_seen.get(&user).copied()
            },
        }
    }

    /// Returns the users online, of `users`.
    pub fn online_of(&self, users: &[UserId]) -> Vec<UserId> {
        let t = self.table();
        users.iter().copied().filter(|u| t.online(*u)).collect()
    }

    /// Whether `user` has a session on this node.
    pub fn is_here(&self, user: UserId) -> bool {
        self.table().here.contains(&user)
    }

    /// Users with a session on this node.
    pub fn here(&self) -> usize {
        self.table().here.len()
    }

    /// Users online on some node, as this node knows.
    pub fn online_count(&self) -> usize {
        let t = self.table();
        t.here.len() + t.elsewhere.keys().filter(|u| !t.here.contains(u)).count()
    }

    /// Users peers named past [`MAX_USERS_PER_PEER`], ignored since start.
    pub fn refused(&self) -> u64 {
        self.table().refused
    }

    /// Takes the changes of this node's users since the last call: each user's current state.
    pub fn take_unsent(&self) -> Delta {
        let mut t = self.table();
        let unsent = std::mem::take(&mut t.unsent);
        let mut delta = Delta::default();
        for user in unsent {
            if t.here.contains(&user) {
                delta.online.push(user);
            } else {
                delta.offline.push(user);
            }
        }
        delta
    }

    /// Returns every user of this node: the snapshot a peer gets when its link comes up.
    pub fn snapshot(&self) -> Vec<UserId> {
        self.table().here.iter().copied().collect()
    }

    /// Applies a change of `node`'s users. With `reset`, it replaces everything known of `node`
    /// (the first part of a snapshot).
    pub fn apply(&self, node: NodeId, reset: bool, delta: &Delta) {
        let now = self.clock.now_ms();
        let mut t = self.table();
        if reset {
            Self::drop_node_in(&mut t, node, now);
        }
        for &user in &delta.online {
            t.tracking(user, |t| t.add_elsewhere(user, node));
        }
        for &user in &delta.offline {
            t.tracking(user, |t| {
                if t.remove_elsewhere(user, node) {
                    t.seen(user, now);
                }
            });
        }
    }

    /// Forgets every user of `node` (its link went down): those with no session elsewhere are
    /// offline now.
    pub fn drop_node(&self, node: NodeId) {
        let now = self.clock.now_ms();
        Self::drop_node_in(&mut self.table(), node, now);
    }

    fn drop_node_in(t: &mut Table, node: NodeId, now: i64) {
        let users: Vec<UserId> = t
            .elsewhere
            .iter()
            .filter(|(_, nodes)| nodes.contains(&node))
            .map(|(u, _)| *u)
            .collect();
        for user in users {
            t.tracking(user, |t| {
                t.remove_elsewhere(user, node);
                t.seen(user, now);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FixedClock;

    const NOW: i64 = 1_700_000_000_000;

    fn users(ids: &[i64]) -> Vec<UserId> {
        ids.iter().map(|&i| UserId(i)).collect()
    }

    fn sorted(mut v: Vec<UserId>) -> Vec<UserId> {
        v.sort_unstable();
        v
    }

    #[test]
    fn a_user_is_online_while_here_or_on_any_peer() {
        let p = Presence::new(Arc::new(FixedClock(NOW)));
        let (a, b) = (NodeId(2), NodeId(3));
        let u = UserId(7);
        assert_eq!(
            p.status(u),
            Status {
                online: false,
                last_seen_ms: None
            }
        );
        p.arrived(u);
        p.apply(
            a,
            false,
            &Delta {
                online: vec![u],
                offline: vec![],
            },
        );
        p.left(u);
        assert!(p.status(u).online, "still on node a");
        p.apply(
            b,
            false,
            &Delta {
                online: vec![u],
                offline: vec![],
            },
        );
        p.drop_node(a);
        assert!(p.status(u).online, "still on node b");
        p.apply(
            b,
            false,
            &Delta {
                online: vec![],
                offline: vec![u],
            },
        );
        assert_eq!(
            p.status(u),
            Status {
                online: false,
                last_seen_ms: Some(NOW)
            }
        );
        assert_eq!(p.online_count(), 0);
    }

    #[test]
    fn changes_are_sent_as_state_once_per_round() {
        let p = Presence::new(Arc::new(FixedClock(NOW)));
        p.arrived(UserId(1));
        p.arrived(UserId(2));
        p.arrived(UserId(3));
        p.left(UserId(3));
        let d = p.take_unsent();
        assert_eq!(sorted(d.online), users(&[1, 2]));
        assert_eq!(d.offline, users(&[3]), "came and went: its state, once");
        assert!(p.take_unsent().is_empty());
        // A second arrival of a user already here is nothing new.
        p.arrived(UserId(1));
        assert!(p.take_unsent().is_empty());
        assert_eq!(sorted(p.snapshot()), users(&[1, 2]));
        assert_eq!(p.here(), 2);
    }

    #[test]
    fn a_snapshot_replaces_what_was_known_of_a_node_and_a_dead_node_takes_its_users() {
        let p = Presence::new(Arc::new(FixedClock(NOW)));
        let n = NodeId(4);
        p.apply(
            n,
            false,
            &Delta {
                online: users(&[1, 2, 3]),
                offline: vec![],
            },
        );
        p.apply(
            n,
            true,
            &Delta {
                online: users(&[3, 4]),
                offline: vec![],
            },
        );
        assert_eq!(
            sorted(p.online_of(&users(&[1, 2, 3, 4, 5]))),
            users(&[3, 4])
        );
        assert_eq!(p.status(UserId(1)).last_seen_ms, Some(NOW));
        p.arrived(UserId(4));
        p.drop_node(n);
        assert_eq!(p.online_of(&users(&[1, 2, 3, 4])), users(&[4]));
        assert_eq!(p.status(UserId(3)).last_seen_ms, Some(NOW));
        assert_eq!(p.online_count(), 1);
    }

    #[test]
    fn a_round_has_the_flips_that_stuck_the_moves_and_the_stale() {
        let p = Presence::new(Arc::new(FixedClock(NOW)));
        let n = NodeId(2);
        p.arrived(UserId(1));
        p.arrived(UserId(2));
        p.left(UserId(2));
        p.apply(
            n,
            false,
            &Delta {
                online: users(&[3, 1]),
                offline: vec![],
            },
        );
        p.rooms_changed(UserId(1));
        p.rooms_changed(UserId(3));
        let mut r = p.take_round();
        r.flipped.sort_by_key(|f| f.0);
        r.moved.sort_unstable();
        let on = Status {
            online: true,
            last_seen_ms: None,
        };
        assert_eq!(r.flipped, [(UserId(1), on), (UserId(3), on)]);
        assert_eq!(r.moved, [(UserId(1), true), (UserId(2), false)]);
        assert_eq!(
            r.stale,
            users(&[1]),
            "only users here have contacts to load"
        );
        assert_eq!(p.take_round(), Round::default());
        // User 1 leaves here but stays online on n: no flip. n dies: 1 and 3 go offline.
        p.left(UserId(1));
        let r = p.take_round();
        assert!(r.flipped.is_empty());
        assert_eq!(r.moved, [(UserId(1), false)]);
        p.drop_node(n);
        let mut flipped = p.take_round().flipped;
        flipped.sort_by_key(|f| f.0);
        let off = Status {
            online: false,
            last_seen_ms: Some(NOW),
        };
        assert_eq!(flipped, [(UserId(1), off), (UserId(3), off)]);
    }

    #[test]
    fn a_peer_that_names_too_many_users_is_bounded() {
        let p = Presence::new(Arc::new(FixedClock(NOW)));
        let n = NodeId(9);
        let many: Vec<UserId> = (0..MAX_USERS_PER_PEER as i64 + 10).map(UserId).collect();
        p.apply(
            n,
            false,
            &Delta {
                online: many.clone(),
                offline: vec![],
            },
        );
        assert_eq!(p.online_count(), MAX_USERS_PER_PEER);
        assert_eq!(p.refused(), 10);
        // Another peer has its own allowance; the first one's users leaving free its own.
        p.apply(
            NodeId(10),
            false,
            &Delta {
                online: users(&[-1]),
                offline: vec![],
            },
        );
        p.apply(
            n,
            false,
            &Delta {
                online: vec![],
                offline: many[..10].to_vec(),
            },
        );
        p.apply(
            n,
            false,
            &Delta {
                online: many[MAX_USERS_PER_PEER..].to_vec(),
                offline: vec![],
            },
        );
        assert_eq!(p.online_count(), MAX_USERS_PER_PEER + 1);
        assert_eq!(p.refused(), 10);
    }
}
