//! Placement: which node serves which shard, by leases in the store, fenced by epochs.
//!
//! Every node runs a [`LeaseKeeper`]. Each round (a third of the lease) it records that it is alive,
//! renews the leases it holds, reads the members and the leases, and [`plan`]s: take the free shards
//! it is the preferred owner of (rendezvous hashing over the live members), hand back the ones a
//! more preferred member has come to want, and — when a shard's preferred owner does not take it —
//! take it after a delay that grows with its rank, so a shard never stays without an owner.
//!
//! [`Placement`] is the view the rest of the node reads: the owner of each shard as last seen, and
//! the shards this node serves. A node serves a shard only while its local monotonic deadline holds:
//! the time its last successful renewal (or take) was *sent*, plus the lease, less a margin. The
//! store computes the expiry from its own clock at the time it ran the statement, which is later, so
//! a node that is paused, cut from the store or slow stops serving before anyone can take over.
//!
//! A take is served only once the journal has fenced it ([`Journal::fence`]): the taker writes the
//! shards' new epochs into the journal before its rooms read their tails and append, so every reader
//! ignores what a former owner still manages to write under the old epoch. A take whose fence fails
//! is handed back at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::model::RoomId;
use banter_actors::ports::{Journal, Lease, Ownership, SourceId, Store, StoreError};
use banter_actors::shard::{EntityKey, Epoch, ShardId, Term, preferred_owners, shard_of};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

/// A shard this node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The epoch of the take.
    pub epoch: Epoch,
    /// Until when this node may serve it.
    pub deadline: Instant,
}

#[derive(Debug, Default)]
struct View {
    /// The holder of each shard and its epoch, by index, as last read (this node's own entries are
    /// kept current).
    owners: Vec<Option<(NodeId, Epoch)>>,
    /// The shards this node holds.
    held: HashMap<ShardId, Held>,
    /// The live members and their addresses, by id, this node included.
    members: Vec<(NodeId, String)>,
}

/// The placement view of one node; cheap to read from any task.
#[derive(Debug)]
pub struct Placement {
    me: NodeId,
    shards: u32,
    view: RwLock<View>,
    /// Bumped whenever this node stops holding shards (released, lost, evicted).
    dropped: watch::Sender<u64>,
}

impl Placement {
    /// An empty view for node `me` over `shards` shards: no owner known, nothing held.
    pub fn new(me: NodeId, shards: u32) -> Arc<Self> {
        let view = View {
            owners: vec![None; shards as usize],
            held: HashMap::new(),
            members: Vec::new(),
        };
        Arc::new(Placement {
            me,
            shards,
            view: RwLock::new(view),
            dropped: watch::channel(0).0,
        })
    }

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The number of shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The shard of `room`.
    pub fn shard_of_room(&self, room: RoomId) -> ShardId {
        shard_of(EntityKey::room(room), self.shards)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        // A writer that panicked left a consistent view (every write is a plain assignment).
        self.view.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The node that holds `shard` as last seen, `None` when nobody does (or it is out of range).
    pub fn owner(&self, shard: ShardId) -> Option<NodeId> {
        self.owner_epoch(shard).map(|(node, _)| node)
    }

    /// The node that holds `shard` as last seen, with the epoch of its lease.
    pub fn owner_epoch(&self, shard: ShardId) -> Option<(NodeId, Epoch)> {
        self.read().owners.get(shard.0 as usize).copied().flatten()
    }

    /// The epoch under which this node may serve `shard` now, `None` when it may not (not held, or
    /// its deadline has passed).
    pub fn serving(&self, shard: ShardId) -> Option<Epoch> {
        let held = self.read().held.get(&shard).copied()?;
        (Instant::now() < held.deadline).then_some(held.epoch)
    }

    /// The shards this node holds (whether or not their deadline still holds), by shard.
    pub fn held(&self) -> Vec<(ShardId, Held)> {
        let mut held: Vec<_> = self.read().held.iter().map(|(s, h)| (*s, *h)).collect();
        held.sort_unstable_by_key(|(s, _)| *s);
        held
    }

    /// Changes each time this node stops holding some shards (released, lost or evicted); a
    /// lease that runs out without a round (a paused node) changes nothing here: its deadline
    /// passes, which [`Placement::serving`] tells.
    pub fn dropped(&self) -> watch::Receiver<u64> {
        self.dropped.subscribe()
    }

    fn bump_dropped(&self) {
        self.dropped.send_modify(|n| *n += 1);
    }

    /// The live members as last read, this node included, by id.
    pub fn members(&self) -> Vec<NodeId> {
        self.read().members.iter().map(|(id, _)| *id).collect()
    }

    /// The live members as last read with the addresses they registered, by id.
    pub fn member_addrs(&self) -> Vec<(NodeId, String)> {
        self.read().members.clone()
    }

    /// Records `node` as the holder of `shard` (tests of what reads the view).
    #[cfg(test)]
    pub(crate) fn set_owner(&self, shard: ShardId, node: NodeId, epoch: Epoch) {
        self.write().owners[shard.0 as usize] = Some((node, epoch));
    }

    fn hold(&self, shard: ShardId, held: Held) {
        let mut view = self.write();
        view.held.insert(shard, held);
        if let Some(owner) = view.owners.get_mut(shard.0 as usize) {
            *owner = Some((self.me, held.epoch));
        }
    }

    fn drop_shard(&self, shard: ShardId) -> Option<Held> {
        let held = {
            let mut view = self.write();
            if let Some(owner) = view.owners.get_mut(shard.0 as usize)
                && owner.is_some_and(|(node, _)| node == self.me)
            {
                *owner = None;
            }
            view.held.remove(&shard)
        };
        self.bump_dropped();
        held
    }

    fn renewed(&self, renewed: &[ShardId], deadline: Instant) -> Vec<ShardId> {
        let mut lost = Vec::new();
        {
            let mut view = self.write();
            let renewed: std::collections::HashSet<_> = renewed.iter().copied().collect();
            view.held.retain(|shard, held| {
                if renewed.contains(shard) {
                    held.deadline = deadline;
                    true
                } else {
                    lost.push(*shard);
                    false
                }
            });
        }
        if !lost.is_empty() {
            self.bump_dropped();
        }
        lost
    }

    fn observe(&self, leases: &[Lease], members: Vec<(NodeId, String)>) {
        let mut view = self.write();
        for lease in leases {
            let i = lease.shard.0 as usize;
            if i < view.owners.len() {
                view.owners[i] = lease.holder().map(|node| (node, lease.epoch));
            }
        }
        let mine: Vec<(ShardId, Epoch)> = view.held.iter().map(|(s, h)| (*s, h.epoch)).collect();
        for (shard, epoch) in mine {
            view.owners[shard.0 as usize] = Some((self.me, epoch));
        }
        view.members = members;
    }
}

impl Ownership for Placement {
    fn serving(&self, room: RoomId) -> Option<Term> {
        let shard = self.shard_of_room(room);
        Placement::serving(self, shard).map(|epoch| Term { shard, epoch })
    }

    fn serving_source(&self, source: SourceId) -> Option<Term> {
        let shard = shard_of(EntityKey::source(source.0), self.shards);
        Placement::serving(self, shard).map(|epoch| Term { shard, epoch })
    }
}

/// What a round of the lease keeper does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Shards to take, with their rank among the candidates (0: this node is the preferred owner).
    pub take: Vec<ShardId>,
    /// Shards to hand back: a live member is preferred for them.
    pub release: Vec<ShardId>,
}

/// Decides a round: `me` among the live `members`, the `leases` as just read, the shards `held`.
///
/// A free shard (no holder, and `expired_for` past its expiry) goes to its preferred owner; the
/// member ranked `k` takes it too once it has been free `k × patience` longer, so a preferred owner
/// that registered but does not take (stuck, or starting) delays a shard by at most one step. A
/// held shard whose preferred owner is another live member is released, and that member takes it.
pub fn plan(
    me: NodeId,
    members: &[NodeId],
    leases: &[Lease],
    held: &HashMap<ShardId, Held>,
    expired_for: Duration,
    patience: Duration,
) -> Plan {
    let mut plan = Plan::default();
    for lease in leases {
        let ranked = preferred_owners(lease.shard, members);
        let Some(rank) = ranked.iter().position(|n| *n == me) else {
            continue;
        };
        if held.contains_key(&lease.shard) {
            if rank > 0 {
                plan.release.push(lease.shard);
            }
            continue;
        }
        if lease.owner.is_some() && lease.remaining_ms > 0 {
            continue;
        }
        // A shard without an owner (never taken, or released) is free at once for its preferred
        // owner; the fallback counts from its release or expiry, and a shard never taken has
        // neither, so only its preferred owner takes it.
        if lease.owner.is_none() && rank == 0 {
            plan.take.push(lease.shard);
            continue;
        }
        if lease.epoch.0 == 0 {
            continue;
        }
        let wait = expired_for + patience * u32::try_from(rank).unwrap_or(u32::MAX);
        let free_for = Duration::from_millis(lease.remaining_ms.min(0).unsigned_abs());
        if free_for >= wait {
            plan.take.push(lease.shard);
        }
    }
    plan
}

/// Rounds between two sweeps of dead nodes.
const SWEEP_EVERY: u64 = 100;

/// Settings of a [`LeaseKeeper`].
#[derive(Clone, Debug)]
pub struct KeeperConfig {
    /// How long a lease lasts.
    pub ttl: Duration,
    /// How much of it this node gives up, against clock drift.
    pub margin: Duration,
    /// How long an expired lease waits before another node takes it: the journal's delivery timeout,
    /// after which a former owner's appends in flight have failed.
    pub expired_for: Duration,
    /// A member is live while its last heartbeat in the store is younger than this.
    pub live_within: Duration,
    /// Nodes silent this long are deleted from the store.
    pub dead_for: Duration,
}

impl KeeperConfig {
    fn round(&self) -> Duration {
        self.ttl / 3
    }
}

/// Why a lease keeper stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// The store no longer knows this node: it was presumed dead. It must stop serving.
    #[error("the store deleted this node's registration (presumed dead); it must restart")]
    Evicted,
}

/// Keeps a node's leases: the loop described in the module documentation.
pub struct LeaseKeeper {
    store: Arc<dyn Store>,
    journal: Arc<dyn Journal>,
    placement: Arc<Placement>,
    config: KeeperConfig,
}

impl LeaseKeeper {
    /// A keeper of `placement`'s node, whose takes `journal` fences.
    pub fn new(
        store: Arc<dyn Store>,
        journal: Arc<dyn Journal>,
        placement: Arc<Placement>,
        config: KeeperConfig,
    ) -> Self {
        LeaseKeeper {
            store,
            journal,
            placement,
            config,
        }
    }

    /// Runs rounds until `stop` turns true, then hands every lease back. Returns early with
    /// [`KeeperError::Evicted`] when the store has deleted this node.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), KeeperError> {
        let mut ticks = tokio::time::interval(self.config.round());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u64.. {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            if round % SWEEP_EVERY == SWEEP_EVERY - 1
                && let Err(e) = self.sweep_dead().await
            {
                warn!(error = %e, "could not delete dead nodes");
            }
            match self.round().await {
                Ok(()) => {}
                Err(RoundError::Evicted) => {
                    self.lose_all();
                    return Err(KeeperError::Evicted);
                }
                Err(RoundError::Store(e)) => {
                    metrics::counter!(crate::metrics::LEASE_ERRORS).increment(1);
                    warn!(error = %e, "lease round failed; held shards lapse at their deadline");
                }
            }
        }
        self.release_all().await;
        Ok(())
    }

    /// One round: heartbeat, renew, read, take and release.
    pub async fn round(&self) -> Result<(), RoundError> {
        let me = self.placement.me();
        let sent = Instant::now();
        match self.store.node_heartbeat(me).await {
            Err(StoreError::NotFound) => return Err(RoundError::Evicted),
            other => other?,
        }
        let held = self.placement.held();
        if !held.is_empty() {
            let pairs: Vec<_> = held.iter().map(|(s, h)| (*s, h.epoch)).collect();
            let renewed = self.store.renew_leases(me, &pairs, self.config.ttl).await?;
            let lost = self.placement.renewed(&renewed, self.deadline(sent));
            if !lost.is_empty() {
                metrics::counter!(crate::metrics::REBALANCES, "kind" => "lost")
                    .increment(lost.len() as u64);
                warn!(
                    shards = lost.len(),
                    "leases lost: another node holds them now"
                );
            }
        }
        let live = self.store.live_nodes(self.config.live_within).await?;
        let mut members: Vec<NodeId> = live.iter().map(|n| n.id).collect();
        if !members.contains(&me) {
            members.push(me);
            members.sort_unstable();
        }
        let leases = self.store.leases().await?;
        let held: HashMap<_, _> = self.placement.held().into_iter().collect();
        let plan = plan(
            me,
            &members,
            &leases,
            &held,
            self.config.expired_for,
            self.config.ttl,
        );
        self.release(&plan.release, &held).await?;
        let mut taken = Vec::new();
        for shard in plan.take {
            let sent = Instant::now();
            let epoch = self
                .store
                .take_lease(shard, me, self.config.ttl, self.config.expired_for)
                .await?;
            if let Some(epoch) = epoch {
                let deadline = self.deadline(sent);
                taken.push((shard, Held { epoch, deadline }));
            }
        }
        self.fence_and_hold(taken).await?;
        let addrs = live.into_iter().map(|n| (n.id, n.advertise)).collect();
        self.placement.observe(&leases, addrs);
        metrics::gauge!(crate::metrics::SHARDS_OWNED).set(self.placement.held().len() as f64);
        metrics::gauge!(crate::metrics::MEMBERS_LIVE).set(members.len() as f64);
        Ok(())
    }

    /// Fences the shards just taken in the journal, then serves them; a take whose fence fails, or
    /// takes longer than a round (the broker is away: waiting longer would let this node's other
    /// leases lapse), is handed back (its epoch stays raised: the next taker fences a higher one, and
    /// a late fence record of this one raises nothing past it).
    async fn fence_and_hold(&self, taken: Vec<(ShardId, Held)>) -> Result<(), StoreError> {
        if taken.is_empty() {
            return Ok(());
        }
        let terms: Vec<Term> = taken
            .iter()
            .map(|&(shard, h)| Term {
                shard,
                epoch: h.epoch,
            })
            .collect();
        let fenced = tokio::time::timeout(self.config.round(), self.journal.fence(&terms))
            .await
            .unwrap_or_else(|_| {
                Err(banter_actors::ports::JournalError::Unknown(
                    "the fence was not acknowledged within a lease round".into(),
                ))
            });
        match fenced {
            Ok(()) => {
                metrics::counter!(crate::metrics::REBALANCES, "kind" => "taken")
                    .increment(taken.len() as u64);
                for (shard, held) in taken {
                    self.placement.hold(shard, held);
                }
                Ok(())
            }
            Err(e) => {
                metrics::counter!(crate::metrics::FENCE_ERRORS).increment(1);
                warn!(shards = taken.len(), error = %e, "could not fence the shards taken; handing them back");
                let pairs: Vec<_> = taken.iter().map(|&(s, h)| (s, h.epoch)).collect();
                self.store
                    .release_leases(self.placement.me(), &pairs)
                    .await?;
                Ok(())
            }
        }
    }

    fn deadline(&self, sent: Instant) -> Instant {
        sent + self.config.ttl.saturating_sub(self.config.margin)
    }

    /// Stops serving `shards`, then hands them back.
    async fn release(
        &self,
        shards: &[ShardId],
        held: &HashMap<ShardId, Held>,
    ) -> Result<(), StoreError> {
        if shards.is_empty() {
            return Ok(());
        }
        let pairs: Vec<_> = shards
            .iter()
            .filter_map(|s| held.get(s).map(|h| (*s, h.epoch)))
            .collect();
        for (shard, _) in &pairs {
            self.placement.drop_shard(*shard);
        }
        let released = self
            .store
            .release_leases(self.placement.me(), &pairs)
            .await?;
        metrics::counter!(crate::metrics::REBALANCES, "kind" => "released").increment(released);
        info!(shards = released, "handed shards over to preferred members");
        Ok(())
    }

    async fn release_all(&self) {
        let held: HashMap<_, _> = self.placement.held().into_iter().collect();
        let shards: Vec<_> = held.keys().copied().collect();
        if let Err(e) = self.release(&shards, &held).await {
            warn!(error = %e, "could not hand the leases back; they expire on their own");
        }
        metrics::gauge!(crate::metrics::SHARDS_OWNED).set(0.0);
    }

    fn lose_all(&self) {
        for (shard, _) in self.placement.held() {
            self.placement.drop_shard(shard);
        }
        metrics::gauge!(crate::metrics::SHARDS_OWNED).set(0.0);
    }

    /// Deletes nodes silent for [`KeeperConfig::dead_for`]; run now and then by any node.
    pub async fn sweep_dead(&self) -> Result<u64, StoreError> {
        self.store.delete_dead_nodes(self.config.dead_for).await
    }
}

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The store deleted this node.
    #[error("evicted")]
    Evicted,
    /// The store failed; the next round tries again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests;
