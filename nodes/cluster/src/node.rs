//! A cluster node: a ractor_cluster `NodeServer` behind Banter's own listener and guards, and the
//! stream of its session events.
//!
//! A node accepts peers on [`NodeConfig::listen`] ([`crate::guard::accept_loop`]) and connects to
//! peers with [`ClusterNode::connect`]. ractor_cluster authenticates each session with the shared
//! cookie, then exchanges the remotable actors and process groups; [`NodeEvent`]s tell what happened to
//! each session (its `node_id` is this node's number for it, and the key of the peer's router in
//! [`crate::router::router_of`]). ractor_cluster never reconnects: a [`NodeEventKind::Disconnected`]
//! session is gone for good, and reconnecting is the membership layer's job (it will redial its seeds
//! with backoff on this event).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorRef, RactorErr, SpawnErr};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{
    BoxRead, BoxWrite, ClientConnectErr, ClusterBidiStream, NodeEventSubscription, NodeId,
    NodeServer, NodeServerMessage,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use crate::guard::{Caps, GuardStats, Halves, Sessions, accept_loop, buffered_halves};
use crate::tls::{Tls, TlsError};

/// Settings of a [`ClusterNode`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's name, unique in the cluster: ractor_cluster takes a peer with the same name for a
    /// connection to itself and drops it.
    pub name: String,
    /// The secret every node of the cluster shares; a peer without it is never authenticated.
    pub cookie: String,
    /// Where to accept peers; port 0 picks a free one ([`ClusterNode::local_addr`] tells which).
    pub listen: SocketAddr,
    /// Largest frame a peer may send, in bytes: a bigger one closes its session before anything is
    /// allocated for it. It also bounds what one frame can decode into (up to ~16 times its size).
    pub max_frame_bytes: u64,
    /// How long a session may take to authenticate before it is stopped.
    pub handshake_timeout: Duration,
    /// Connections accepted at once, in total and per address.
    pub caps: Caps,
    /// TLS on the cluster port, both ways (`None`: plain TCP).
    pub tls: Option<Tls>,
}

impl NodeConfig {
    /// Settings with the defaults: loopback, any port, 1 MiB frames, a 5 s handshake, 256
    /// connections and 16 per address.
    pub fn new(name: impl Into<String>, cookie: impl Into<String>) -> Self {
        NodeConfig {
            name: name.into(),
            cookie: cookie.into(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_frame_bytes: 1 << 20,
            handshake_timeout: Duration::from_secs(5),
            caps: Caps {
                total: 256,
                per_ip: 16,
            },
            tls: None,
        }
    }
}

/// How a node opens sessions to peers: plain TCP, or TLS with the node's certificate.
#[derive(Clone, Debug)]
pub struct Dialer {
    server: ActorRef<NodeServerMessage>,
    tls: Option<Tls>,
}

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The connection (or its TLS handshake) failed, or the node server is gone.
    #[error("{0}")]
    Connect(#[from] ClientConnectErr),
    /// The address has no name to check in the peer's certificate.
    #[error("{0}")]
    Tls(#[from] TlsError),
}

impl Dialer {
    /// Opens a session to the peer at `addr` (`host:port`).
    pub async fn dial(&self, addr: &str) -> Result<(), DialError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(ClientConnectErr::Socket)?;
        stream.set_nodelay(true).map_err(ClientConnectErr::Socket)?;
        let peer = addr.to_owned();
        let dialed: Box<dyn ClusterBidiStream> = match &self.tls {
            None => Box::new(Dialed { stream, peer }),
            Some(tls) => {
                let (connector, name) = tls.dial(addr)?;
                let stream = connector
                    .connect(name, stream)
                    .await
                    .map_err(ClientConnectErr::Encryption)?;
                Box::new(Dialed { stream, peer })
            }
        };
        Ok(ractor_cluster::client_connect_external(&self.server, dialed).await?)
    }
}

/// A connection this node opened, for ractor_cluster (which would read it unbuffered).
struct Dialed<S> {
    stream: S,
    peer: String,
}

impl<S: Halves> ClusterBidiStream for Dialed<S> {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (read, write) = buffered_halves(self.stream);
        (Box::new(read), write)
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer.clone())
    }
}

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEventKind {
    /// A connection was opened (either way); nothing is known of the peer yet.
    Opened,
    /// The peer proved it has the cookie.
    Authenticated,
    /// Both sides have exchanged their actors and process groups: the peer's router is reachable.
    Ready,
    /// The session ended, for whatever reason (see ractor_cluster's log line for which).
    Disconnected,
}

/// An event of one session of this node.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// What happened.
    pub kind: NodeEventKind,
    /// This node's number for the session.
    pub node_id: NodeId,
    /// The peer's name (`name@host`), once it has said it.
    pub peer_name: Option<String>,
    /// The peer's address.
    pub peer_addr: String,
    /// Whether the peer connected to us.
    pub incoming: bool,
    /// The session's actor: stopping it closes the session.
    pub session: ractor::ActorCell,
}

impl NodeEvent {
    fn new(kind: NodeEventKind, session: &NodeServerSessionInformation) -> Self {
        NodeEvent {
            kind,
            node_id: session.node_id,
            peer_name: session.peer_name.as_ref().map(|name| name.name.clone()),
            peer_addr: session.peer_addr.clone(),
            incoming: session.is_server,
            session: session.actor.get_cell(),
        }
    }
}

/// Events a slow subscriber may fall behind by before it misses some (it is told how many).
const EVENT_BUFFER: usize = 1024;

/// Forwards the node server's events; called from inside the node server, so it never blocks.
struct Subscription {
    events: broadcast::Sender<NodeEvent>,
    sessions: Sessions,
}

impl Subscription {
    fn send(&self, kind: NodeEventKind, session: &NodeServerSessionInformation) {
        // No subscriber is fine: the events are for whoever listens.
        let _ = self.events.send(NodeEvent::new(kind, session));
    }
}

impl NodeEventSubscription for Subscription {
    fn node_session_opened(&self, session: NodeServerSessionInformation) {
        self.sessions.opened(session.node_id, session.actor.clone());
        self.send(NodeEventKind::Opened, &session);
    }

    fn node_session_authenticated(&self, session: NodeServerSessionInformation) {
        self.sessions.authenticated(session.node_id);
        self.send(NodeEventKind::Authenticated, &session);
    }

    fn node_session_ready(&self, session: NodeServerSessionInformation) {
        self.send(NodeEventKind::Ready, &session);
    }

    fn node_session_disconnected(&self, session: NodeServerSessionInformation) {
        self.sessions.closed(session.node_id);
        self.send(NodeEventKind::Disconnected, &session);
    }
}

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cluster port could not be bound.
    #[error("binding the cluster port: {0}")]
    Bind(#[from] std::io::Error),
    /// The node server did not start.
    #[error("starting the node server: {0}")]
    Spawn(#[from] SpawnErr),
}

/// A running cluster node.
pub struct ClusterNode {
    server: ActorRef<NodeServerMessage>,
    dialer: Dialer,
    server_done: Option<JoinHandle<()>>,
    accept: tokio::task::JoinHandle<()>,
    local_addr: SocketAddr,
    events: broadcast::Sender<NodeEvent>,
    stats: Arc<GuardStats>,
}

impl ClusterNode {
    /// Binds the cluster port and starts the node server.
    pub async fn start(config: NodeConfig) -> Result<Self, StartError> {
        crate::metrics::export_at_zero();
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(GuardStats::default());
        // The server's own listener cannot be turned off: loopback, ephemeral, never advertised.
        let server = NodeServer::new(
            0,
            config.cookie,
            config.name,
            local_addr.ip().to_string(),
            None,
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .with_max_inbound_frame_size(config.max_frame_bytes);
        let (server, server_done) = Actor::spawn(None, server, ()).await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let subscription = Subscription {
            events: events.clone(),
            sessions: Sessions::new(stats.clone(), config.handshake_timeout),
        };
        // Queued before the first connection can be: no session goes unseen.
        let subscribed = server.cast(NodeServerMessage::SubscribeToEvents {
            id: "banter-cluster".into(),
            subscription: Box::new(subscription),
        });
        if subscribed.is_err() {
            return Err(SpawnErr::StartupFailed("the node server stopped at once".into()).into());
        }
        let accept = tokio::spawn(accept_loop(
            listener,
            server.clone(),
            config.caps,
            stats.clone(),
            config.tls.clone().map(|t| (t, config.handshake_timeout)),
        ));
        Ok(ClusterNode {
            dialer: Dialer {
                server: server.clone(),
                tls: config.tls,
            },
            server,
            server_done: Some(server_done),
            accept,
            local_addr,
            events,
            stats,
        })
    }

    /// The address peers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Session events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// What the guards have counted.
    pub fn stats(&self) -> &Arc<GuardStats> {
        &self.stats
    }

    /// The node server, for what this type does not wrap.
    pub fn server(&self) -> &ActorRef<NodeServerMessage> {
        &self.server
    }

    /// Opens a session to the peer at `addr` (`host:port`). It returns once the connection (and its
    /// TLS handshake, with TLS) is handed to the node server: authentication follows, and its
    /// outcome arrives as a [`NodeEvent`].
    pub async fn connect(&self, addr: impl std::fmt::Display) -> Result<(), DialError> {
        self.dialer.dial(&addr.to_string()).await
    }

    /// How this node dials peers, for the membership layer.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// The authenticated sessions, by node id.
    pub async fn sessions(
        &self,
    ) -> Result<HashMap<NodeId, NodeServerSessionInformation>, RactorErr<NodeServerMessage>> {
        ractor::call_t!(self.server, NodeServerMessage::GetSessions, 1000)
    }

    /// Stops accepting, closes every session and waits for the node server to stop.
    pub async fn stop(mut self) {
        self.accept.abort();
        self.server.stop(Some("node stopping".into()));
        if let Some(done) = self.server_done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        self.accept.abort();
        if self.server_done.is_some() {
            self.server.stop(Some("node dropped".into()));
        }
    }
}
