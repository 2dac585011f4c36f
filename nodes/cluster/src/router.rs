//! The router: the one actor of a node that other nodes talk to.
//!
//! Its message, [`RouterMessage`], is the only remotable message type of Banter: every other actor is
//! local, and reaches another node through the routers (ARCHITECTURE.md section 2). Each node's router
//! joins the process group [`ROUTER_GROUP`] in [`ROUTER_SCOPE`]; ractor_cluster mirrors a peer's router
//! into that group as a `RemoteActor` once the session with the peer is ready, and takes it out when
//! the session ends. [`router_of`] finds the router of one peer, [`peer_routers`] all of them.
//!
//! Payloads are protobuf [`Envelope`]s carried as [`Wire`], so bytes that do not decode reach the
//! router as [`Wire::Malformed`]: it counts them ([`RouterStats::malformed`]) and goes on. A probe
//! (`Envelope.body = probe`) is answered by the router itself; any other envelope goes to the node's
//! [`Handler`]. In this first stage the handler is the seam where the placement layer will plug in
//! (get-or-spawn the entity's actor through `banter-actors`' directories).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use banter_proto::v1::{Envelope, envelope};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use ractor_cluster::{NodeId, RactorClusterMessage};
use tracing::debug;

use crate::wire::Wire;

/// The process-group scope of the routers.
pub const ROUTER_SCOPE: &str = "banter.cluster";
/// The process group every node's router joins.
pub const ROUTER_GROUP: &str = "router";

/// Messages of a [`Router`], local or from a peer.
///
/// The derive gives it a serializing [`ractor::Message`] impl: a variant crosses nodes as its name
/// and its fields' bytes, so renaming a variant is a protocol change (add new ones instead).
#[derive(RactorClusterMessage)]
pub enum RouterMessage {
    /// An envelope one way.
    Deliver(Wire<Envelope>),
    /// An envelope that wants an answer.
    #[rpc]
    Ask(Wire<Envelope>, RpcReplyPort<Wire<Envelope>>),
}

/// What a node does with the envelopes its router receives (other than probes).
pub trait Handler: Send + Sync + 'static {
    /// An envelope sent one way.
    fn deliver(&self, envelope: Envelope);
    /// An envelope that wants an answer.
    fn ask(&self, envelope: Envelope) -> Envelope;
}

/// What a router has received, for metrics and tests.
#[derive(Debug, Default)]
pub struct RouterStats {
    delivered: AtomicU64,
    asked: AtomicU64,
    probes: AtomicU64,
    malformed: AtomicU64,
}

impl RouterStats {
    /// Envelopes delivered one way (probes included).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Envelopes that asked for an answer (probes included).
    pub fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// Probes answered or dropped by the router itself.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Payloads that did not decode as an [`Envelope`].
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The router actor.
pub struct Router {
    handler: Arc<dyn Handler>,
    stats: Arc<RouterStats>,
}

/// A running router.
pub struct RouterHandle {
    /// The router.
    pub actor: ActorRef<RouterMessage>,
    /// What it has received.
    pub stats: Arc<RouterStats>,
    /// Completes when it has stopped.
    pub join: JoinHandle<()>,
}

impl Router {
    /// Spawns the router of the node named `node` and joins it to [`ROUTER_GROUP`].
    pub async fn spawn(node: &str, handler: Arc<dyn Handler>) -> Result<RouterHandle, SpawnErr> {
        let stats = Arc::new(RouterStats::default());
        let router = Router {
            handler,
            stats: stats.clone(),
        };
        let (actor, join) = Actor::spawn(Some(format!("router@{node}")), router, ()).await?;
        Ok(RouterHandle { actor, stats, join })
    }

    fn on_deliver(&self, wire: Wire<Envelope>) {
        RouterStats::count(&self.stats.delivered);
        match wire {
            Wire::Decoded(Envelope {
                body: Some(envelope::Body::Probe(_)),
                ..
            }) => RouterStats::count(&self.stats.probes),
            Wire::Decoded(envelope) => self.handler.deliver(envelope),
            Wire::Malformed { bytes, error } => self.malformed(bytes.len(), &error),
        }
    }

    fn on_ask(&self, wire: Wire<Envelope>) -> Envelope {
        RouterStats::count(&self.stats.asked);
        match wire {
            Wire::Decoded(
                probe @ Envelope {
                    body: Some(envelope::Body::Probe(_)),
                    ..
                },
            ) => {
                RouterStats::count(&self.stats.probes);
                probe
            }
            Wire::Decoded(envelope) => self.handler.ask(envelope),
            Wire::Malformed { bytes, error } => {
                self.malformed(bytes.len(), &error);
                // An envelope without a body: "not understood". The caller gets an answer rather
                // than waiting for its timeout.
                Envelope::default()
            }
        }
    }

    fn malformed(&self, len: usize, error: &prost::DecodeError) {
        RouterStats::count(&self.stats.malformed);
        debug!(len, %error, "router: dropped an envelope that does not decode");
    }
}

impl Actor for Router {
    type Msg = RouterMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMessage>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::join_scoped(
            ROUTER_SCOPE.to_owned(),
            ROUTER_GROUP.to_owned(),
            vec![myself.get_cell()],
        );
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouterMessage>,
        message: RouterMessage,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RouterMessage::Deliver(wire) => self.on_deliver(wire),
            RouterMessage::Ask(wire, reply) => {
                // The caller may have given up (timeout); that is not the router's failure.
                let _ = reply.send(Wire::Decoded(self.on_ask(wire)));
            }
        }
        Ok(())
    }
}

/// Returns the routers of the peers this node has a ready session with, with the session's node id.
pub fn peer_routers() -> Vec<(NodeId, ActorRef<RouterMessage>)> {
    ractor::pg::get_scoped_members(&ROUTER_SCOPE.to_owned(), &ROUTER_GROUP.to_owned())
        .into_iter()
        .filter_map(|cell| match cell.get_id() {
            ActorId::Remote { node_id, .. } => Some((node_id, ActorRef::from(cell))),
            ActorId::Local(_) => None,
        })
        .collect()
}

/// Returns the router of the peer behind the session `node_id` (a
/// [`ractor_cluster::node::NodeServerSessionInformation::node_id`]), once that session is ready.
pub fn router_of(node_id: NodeId) -> Option<ActorRef<RouterMessage>> {
    peer_routers()
        .into_iter()
        .find_map(|(id, router)| (id == node_id).then_some(router))
}
