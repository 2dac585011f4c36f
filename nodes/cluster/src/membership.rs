//! The cluster layer of a node: registration, the node server, links to the members, the lease keeper.
//!
//! [`Cluster::start`] registers this node's incarnation in the store (its `NodeId`), starts the node
//! server under the name `n<id>` (so a peer's name tells its id) and the router, then runs two
//! tasks:
//! - membership: every heartbeat it pings each linked peer and drops the silent ones
//!   ([`Links::tick`]), and dials each live member with a lower id that has no link — the newer
//!   incarnation dials, so a pair has one session — with exponential backoff and jitter;
//!   ractor_cluster's session events bring links up and down;
//! - the [`LeaseKeeper`], whose view ([`Placement`]) also lists the members to dial.
//!
//! A keeper evicted by the store (the others presumed this node dead) fails the node: [`Cluster::failed`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::ports::{Journal, Store, StoreError};
use rand::RngExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{ClusterConfig, ConfigError};
use crate::links::{LinkHandler, LinkLimits, Links};
use crate::node::{ClusterNode, NodeConfig, NodeEvent, NodeEventKind};
use crate::placement::{KeeperConfig, LeaseKeeper, Placement};
use crate::router::{Router, RouterHandle, router_of};
use crate::{guard, metrics};

/// Why the cluster layer did not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The `[cluster]` section cannot run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store refused the registration or the shards.
    #[error("cluster placement in the store: {0}")]
    Store(#[from] StoreError),
    /// The node server did not start.
    #[error(transparent)]
    Start(#[from] crate::node::StartError),
    /// The router did not start.
    #[error("starting the router: {0}")]
    Router(#[from] ractor::SpawnErr),
}

/// A running cluster layer.
pub struct Cluster {
    me: NodeId,
    placement: Arc<Placement>,
    links: Arc<Links>,
    node: ClusterNode,
    router: RouterHandle,
    stop: watch::Sender<bool>,
    membership: JoinHandle<()>,
    keeper: JoinHandle<()>,
    failed: watch::Receiver<Option<String>>,
}

impl Cluster {
    /// Registers this node and starts the cluster layer. `journal` fences the shards it takes;
    /// `expired_for` is the journal's delivery timeout: how long an expired lease waits before another
    /// node takes it.
    pub async fn start(
        config: &ClusterConfig,
        store: Arc<dyn Store>,
        journal: Arc<dyn Journal>,
        expired_for: Duration,
    ) -> Result<Cluster, ClusterError> {
        config.validate()?;
        let cookie = config.cookie()?;
        let advertise = config.advertise()?;
        store
            .ensure_shards(config.shards)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ConfigError::Invalid(format!(
                    "shards = {} differs from the number the cluster's store already holds",
                    config.shards
                ))
                .into(),
                e => ClusterError::Store(e),
            })?;
        let me = store.register_node(&advertise).await?;
        let mut node_config = NodeConfig::new(format!("n{}", me.0), cookie);
        node_config.listen = config.listen;
        node_config.max_frame_bytes = config.max_frame_bytes;
        node_config.tls = config.tls()?;
        let node = ClusterNode::start(node_config).await?;
        let links = Arc::new(Links::new(
            me,
            LinkLimits {
                down_after: config.down_after(),
                max_unconfirmed: config.max_unconfirmed,
                // Headroom below what the peer takes for ractor_cluster's own wrapping.
                max_frame_bytes: usize::try_from(config.max_frame_bytes / 2).unwrap_or(usize::MAX),
            },
        ));
        let router =
            Router::spawn(&format!("n{}", me.0), Arc::new(LinkHandler(links.clone()))).await?;
        let placement = Placement::new(me, config.shards);
        let (stop, _) = watch::channel(false);
        let (failed_tx, failed) = watch::channel(None);
        let keeper = LeaseKeeper::new(
            store,
            journal,
            placement.clone(),
            KeeperConfig {
                ttl: config.lease_ttl(),
                margin: Duration::from_millis(config.lease_margin_ms),
                expired_for,
                live_within: config.lease_ttl(),
                dead_for: config.lease_ttl() * 360,
            },
        );
        let keeper_stop = stop.subscribe();
        let keeper = tokio::spawn(async move {
            if let Err(e) = keeper.run(keeper_stop).await {
                let _ = failed_tx.send(Some(e.to_string()));
            }
        });
        let membership = tokio::spawn(
            Membership {
                me,
                links: links.clone(),
                placement: placement.clone(),
                dialer: node.dialer().clone(),
                guard: node.stats().clone(),
                heartbeat: config.heartbeat(),
                redial_min: Duration::from_millis(config.redial_min_ms),
                redial_max: Duration::from_millis(config.redial_max_ms),
                dials: HashMap::new(),
                pending: Vec::new(),
            }
            .run(node.subscribe(), stop.subscribe()),
        );
        info!(node = %me, %advertise, listen = %node.local_addr(), "cluster member registered");
        Ok(Cluster {
            me,
            placement,
            links,
            node,
            router,
            stop,
            membership,
            keeper,
            failed,
        })
    }

    /// This node's id in the cluster.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Who serves which shard.
    pub fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// The links to the peers.
    pub fn links(&self) -> &Arc<Links> {
        &self.links
    }

    /// The address of the cluster port.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.node.local_addr()
    }

    /// Resolves when this node must stop serving for good (the store evicted it), with the reason.
    pub async fn failed(&self) -> String {
        let mut failed = self.failed.clone();
        match failed.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Hands the leases back, closes the links and stops the node server.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.keeper.await;
        let _ = self.membership.await;
        self.router.actor.stop(None);
        let _ = self.router.join.await;
        self.node.stop().await;
    }
}

/// A peer to dial: when next, and how long to wait after a failure.
struct Dial {
    next_at: Instant,
    backoff: Duration,
    in_flight: bool,
}

struct Membership {
    me: NodeId,
    links: Arc<Links>,
    placement: Arc<Placement>,
    dialer: crate::node::Dialer,
    guard: Arc<guard::GuardStats>,
    heartbeat: Duration,
    redial_min: Duration,
    redial_max: Duration,
    dials: HashMap<NodeId, Dial>,
    /// Ready sessions whose router has not shown in the process group yet.
    pending: Vec<(NodeId, NodeEvent, Instant)>,
}

impl Membership {
    async fn run(
        mut self,
        mut events: broadcast::Receiver<NodeEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticks = tokio::time::interval(self.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (dialed_tx, mut dialed) = mpsc::channel(64);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.on_event(event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "membership fell behind the node server's events");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = ticks.tick() => self.on_tick(&dialed_tx),
                Some((peer, ok)) = dialed.recv() => self.on_dialed(peer, ok),
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    fn on_event(&mut self, event: NodeEvent) {
        match event.kind {
            NodeEventKind::Ready => {
                let Some(peer) = event.peer_name.as_deref().and_then(peer_id) else {
                    warn!(name = ?event.peer_name, "a peer with a name that is not a node id");
                    event.session.stop(Some("not a banter node name".into()));
                    return;
                };
                self.pending.push((peer, event, Instant::now()));
                self.link_pending();
            }
            NodeEventKind::Disconnected => {
                self.pending.retain(|(_, e, _)| e.node_id != event.node_id);
                if let Some(peer) = self.links.disconnected(&event.session)
                    && let Some(dial) = self.dials.get_mut(&peer)
                {
                    dial.next_at = Instant::now() + jitter(self.redial_min);
                }
            }
            NodeEventKind::Opened | NodeEventKind::Authenticated => {}
        }
    }

    /// Brings up the links whose peer router is now in the process group.
    fn link_pending(&mut self) {
        let now = Instant::now();
        let links = &self.links;
        let dials = &mut self.dials;
        let redial_min = self.redial_min;
        self.pending
            .retain(|(peer, event, since)| match router_of(event.node_id) {
                Some(router) => {
                    links.up(*peer, event.session.clone(), router);
                    if let Some(dial) = dials.get_mut(peer) {
                        dial.backoff = redial_min;
                    }
                    false
                }
                None if now.duration_since(*since) > Duration::from_secs(10) => {
                    warn!(%peer, "the peer's router never showed; closing the session");
                    event.session.stop(Some("no router".into()));
                    false
                }
                None => true,
            });
    }

    fn on_tick(&mut self, dialed: &mpsc::Sender<(NodeId, bool)>) {
        self.link_pending();
        self.links.tick();
        let members = self.placement.member_addrs();
        let now = Instant::now();
        self.dials
            .retain(|id, _| members.iter().any(|(m, _)| m == id));
        let mut down = 0;
        for (peer, addr) in members {
            if peer == self.me || self.links.is_up(peer) {
                continue;
            }
            down += 1;
            if peer > self.me {
                continue; // the newer incarnation dials
            }
            let dial = self.dials.entry(peer).or_insert(Dial {
                next_at: now,
                backoff: self.redial_min,
                in_flight: false,
            });
            if dial.in_flight || now < dial.next_at || self.pending.iter().any(|p| p.0 == peer) {
                continue;
            }
            dial.in_flight = true;
            let dialer = self.dialer.clone();
            let dialed = dialed.clone();
            let timeout = self.redial_max.max(Duration::from_secs(1));
            tokio::spawn(async move {
                let connect = dialer.dial(addr.as_str());
                let ok = match tokio::time::timeout(timeout, connect).await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, %addr, error = %e, "dial failed");
                        false
                    }
                    Err(_) => false,
                };
                let _ = dialed.send((peer, ok)).await;
            });
        }
        let up = self.links.peers().len() + 1;
        ::metrics::gauge!(metrics::MEMBERS, "state" => "up").set(up as f64);
        ::metrics::gauge!(metrics::MEMBERS, "state" => "down").set(f64::from(down));
        let guard = &self.guard;
        for (reason, count) in [
            ("refused", guard.refused()),
            ("unauthenticated", guard.unauthenticated()),
            ("handshake_timeout", guard.handshake_timeouts()),
            ("tls", guard.tls_failures()),
        ] {
            ::metrics::counter!(metrics::PORT_REFUSED, "reason" => reason).absolute(count);
        }
    }

    fn on_dialed(&mut self, peer: NodeId, ok: bool) {
        let Some(dial) = self.dials.get_mut(&peer) else {
            return;
        };
        dial.in_flight = false;
        if !ok {
            ::metrics::counter!(metrics::DIAL_ERRORS).increment(1);
        }
        // Connected or not, the next dial waits: a connection still has to authenticate (its
        // session shows as ready, or it is gone and the backoff has grown).
        dial.next_at = Instant::now() + jitter(dial.backoff);
        dial.backoff = (dial.backoff * 2).min(self.redial_max);
    }
}

/// The id in a node name `n<id>@host`.
fn peer_id(name: &str) -> Option<NodeId> {
    let name = name.split('@').next()?;
    name.strip_prefix('n')?.parse().ok().map(NodeId)
}

/// `base` scaled by a random factor in [0.5, 1.5): redials of many nodes do not line up.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_name_tells_its_id() {
        assert_eq!(peer_id("n7@127.0.0.1"), Some(NodeId(7)));
        assert_eq!(peer_id("n12"), Some(NodeId(12)));
        assert_eq!(peer_id("x7@host"), None);
        assert_eq!(peer_id("n@host"), None);
        assert_eq!(peer_id("n-1@host"), None);
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let base = Duration::from_millis(1000);
        for _ in 0..1000 {
            let j = jitter(base);
            assert!(j >= base / 2 && j < base * 3 / 2, "{j:?}");
        }
    }
}
