//! Guards on the cluster port, around what ractor_cluster does not bound.
//!
//! ractor_cluster 0.16.5 bounds one inbound frame (`NodeServer::with_max_inbound_frame_size`, 16 MiB
//! by default; nothing is allocated before payload bytes arrive) and turns every framing or protobuf
//! error into a closed session, never a panic. It does not bound how many connections it holds, how
//! long a peer may stay unauthenticated, or what an unauthenticated peer may send: protobuf frames
//! that are not part of the handshake are decoded (a frame of repeated empty records decodes into ~16
//! times its size) and then ignored with a warning, and the session stays open. So Banter accepts
//! connections itself:
//!
//! - [`accept_loop`]: our listener. It caps connections in total and per address (refusals are
//!   counted), and hands each accepted socket to the `NodeServer` as an external stream
//!   ([`Accepted`]) whose read half holds the connection's [`Permit`], so the slot is freed exactly
//!   when ractor_cluster drops the connection, whatever ended it. Accept errors (out of file
//!   descriptors) back off instead of spinning.
//! - `Sessions`: the handshake deadline. A session not authenticated within
//!   [`crate::NodeConfig::handshake_timeout`] is stopped, so a silent or chattering unauthenticated
//!   peer holds a slot for that long at most. Sessions that end unauthenticated (wrong cookie, bad
//!   bytes, deadline) are counted.
//!
//! The `NodeServer`'s own listener cannot be turned off; it is bound to an ephemeral loopback port
//! and never advertised. With TLS ([`crate::tls`]), the handshake runs here too, in a task per
//! connection under the handshake deadline, not in ractor_cluster's listener, which runs it inline
//! and so stalls every accept behind one slow client; a failed or late TLS handshake is counted
//! (`tls_failures`, and as unauthenticated).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeId, NodeServerMessage};
use tokio::io::{AsyncRead, BufReader, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::tls::Tls;

/// What the guards have counted.
#[derive(Debug, Default)]
pub struct GuardStats {
    accepted: AtomicU64,
    refused: AtomicU64,
    unauthenticated: AtomicU64,
    handshake_timeouts: AtomicU64,
    tls_failures: AtomicU64,
}

impl GuardStats {
    /// Connections our listener handed to the node server.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections refused for a connection cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Sessions (either direction) that ended before they authenticated: wrong cookie, bytes that
    /// are not the protocol, a peer that went away, the handshake deadline (and the losing
    /// connection of a simultaneous connect, which ractor_cluster closes without an event).
    pub fn unauthenticated(&self) -> u64 {
        self.unauthenticated.load(Ordering::Relaxed)
    }

    /// Sessions stopped by the handshake deadline (also counted in [`Self::unauthenticated`]).
    pub fn handshake_timeouts(&self) -> u64 {
        self.handshake_timeouts.load(Ordering::Relaxed)
    }

    /// Accepted connections whose TLS handshake failed or did not finish within the handshake
    /// deadline (no certificate of the cluster, not TLS at all, silence); also counted in
    /// [`Self::unauthenticated`]. They never reach the node server.
    pub fn tls_failures(&self) -> u64 {
        self.tls_failures.load(Ordering::Relaxed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain counts and flags, valid after any panic elsewhere.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connection caps of [`accept_loop`].
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Connections held at once, authenticated or not.
    pub total: usize,
    /// Connections held at once from one address.
    pub per_ip: usize,
}

/// Open connections, in total and per address.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection slot; dropping it frees the slot.
pub struct Permit {
    slots: Arc<Mutex<Slots>>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut slots = lock(&self.slots);
        slots.total = slots.total.saturating_sub(1);
        if let Entry::Occupied(mut held) = slots.per_ip.entry(self.ip) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

fn try_permit(slots: &Arc<Mutex<Slots>>, caps: Caps, ip: IpAddr) -> Option<Permit> {
    let mut held = lock(slots);
    let from_ip = held.per_ip.get(&ip).copied().unwrap_or(0);
    if held.total >= caps.total || from_ip >= caps.per_ip {
        return None;
    }
    held.total += 1;
    held.per_ip.insert(ip, from_ip + 1);
    Some(Permit {
        slots: slots.clone(),
        ip,
    })
}

/// An accepted socket handed to ractor_cluster as an external stream.
pub struct Accepted<S = TcpStream> {
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    permit: Permit,
}

/// An accepted connection after its TLS handshake.
type TlsAccepted = Accepted<tokio_rustls::server::TlsStream<TcpStream>>;

/// How an accepted stream splits into its read and write halves.
pub trait Halves: Send + 'static {
    /// The read half.
    type Read: AsyncRead + Send + Unpin + 'static;
    /// Splits the stream.
    fn halves(self) -> (Self::Read, BoxWrite);
}

impl Halves for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;

    fn halves(self) -> (Self::Read, BoxWrite) {
        // Lock-free halves of a plain socket.
        let (read, write) = self.into_split();
        (read, Box::new(write))
    }
}

impl Halves for tokio_rustls::client::TlsStream<TcpStream> {
    type Read = tokio::io::ReadHalf<Self>;

    fn halves(self) -> (Self::Read, BoxWrite) {
        let (read, write) = tokio::io::split(self);
        (read, Box::new(write))
    }
}

/// The read buffer of a cluster connection, bytes. ractor_cluster reads each frame as two reads
/// (its length, then its payload); through a buffer, one read from the socket takes in as many
/// frames as have arrived.
pub(crate) const READ_BUFFER: usize = 8 * 1024;

/// A connection's halves for ractor_cluster, its read half buffered ([`READ_BUFFER`]).
pub(crate) fn buffered_halves<S: Halves>(stream: S) -> (BufReader<S::Read>, BoxWrite) {
    let (read, write) = stream.halves();
    (BufReader::with_capacity(READ_BUFFER, read), write)
}

impl Halves for tokio_rustls::server::TlsStream<TcpStream> {
    type Read = tokio::io::ReadHalf<Self>;

    fn halves(self) -> (Self::Read, BoxWrite) {
        let (read, write) = tokio::io::split(self);
        (read, Box::new(write))
    }
}

impl<S: Halves> ClusterBidiStream for Accepted<S> {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let Accepted { stream, permit, .. } = *self;
        let (read, write) = buffered_halves(stream);
        (
            Box::new(Held {
                read,
                _permit: permit,
            }),
            write,
        )
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.peer.to_string())
    }

    fn local_label(&self) -> Option<String> {
        Some(self.local.to_string())
    }
}

/// A read half that holds its connection's slot: ractor_cluster drops it when the session ends.
struct Held<R> {
    read: R,
    _permit: Permit,
}

impl<R: AsyncRead + Unpin> AsyncRead for Held<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

/// How long [`accept_loop`] waits after an accept error (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts cluster connections on `listener` and hands them to `server`, within `caps`.
pub async fn accept_loop(
    listener: TcpListener,
    server: ActorRef<NodeServerMessage>,
    caps: Caps,
    stats: Arc<GuardStats>,
    tls: Option<(Tls, Duration)>,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "cluster: accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(permit) = try_permit(&slots, caps, peer.ip()) else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            debug!(%peer, "cluster: connection refused (cap)");
            continue;
        };
        let local = match stream.set_nodelay(true).and_then(|()| stream.local_addr()) {
            Ok(local) => local,
            Err(error) => {
                debug!(%peer, %error, "cluster: accepted socket already unusable");
                continue;
            }
        };
        if let Some((tls, deadline)) = &tls {
            let acceptor = tls.acceptor().clone();
            let (server, stats, deadline) = (server.clone(), stats.clone(), *deadline);
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => return tls_failed(&stats, peer, &error.to_string()),
                    Err(_) => return tls_failed(&stats, peer, "no TLS handshake in time"),
                };
                let accepted: TlsAccepted = Accepted {
                    stream,
                    peer,
                    local,
                    permit,
                };
                hand_over(&server, accepted, &stats);
            });
            continue;
        }
        let accepted = Accepted {
            stream,
            peer,
            local,
            permit,
        };
        if !hand_over(&server, accepted, &stats) {
            // The node server is gone: so is the node.
            return;
        }
    }
}

/// Hands an accepted connection to the node server and counts it; `false` when the server is gone.
fn hand_over<S: Halves>(
    server: &ActorRef<NodeServerMessage>,
    accepted: Accepted<S>,
    stats: &GuardStats,
) -> bool {
    let opened = NodeServerMessage::ConnectionOpenedExternal {
        stream: Box::new(accepted),
        is_server: true,
    };
    let handed = server.cast(opened).is_ok();
    if handed {
        stats.accepted.fetch_add(1, Ordering::Relaxed);
    }
    handed
}

/// Counts a connection whose TLS handshake failed; its slot is freed as it drops.
fn tls_failed(stats: &GuardStats, peer: SocketAddr, why: &str) {
    stats.tls_failures.fetch_add(1, Ordering::Relaxed);
    stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
    debug!(%peer, why, "cluster: TLS handshake failed");
}

/// Where a session is in its life, as the node server's events tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Authenticated,
}

/// The sessions of a node server by node id, and the handshake deadline over them.
#[derive(Clone)]
pub(crate) struct Sessions {
    phases: Arc<Mutex<HashMap<NodeId, Phase>>>,
    stats: Arc<GuardStats>,
    handshake_timeout: Duration,
}

impl Sessions {
    pub(crate) fn new(stats: Arc<GuardStats>, handshake_timeout: Duration) -> Self {
        Sessions {
            phases: Arc::default(),
            stats,
            handshake_timeout,
        }
    }

    /// A session opened: it has until the deadline to authenticate.
    pub(crate) fn opened(
        &self,
        node_id: NodeId,
        session: ActorRef<ractor_cluster::NodeSessionMessage>,
    ) {
        lock(&self.phases).insert(node_id, Phase::Handshaking);
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(me.handshake_timeout).await;
            if lock(&me.phases).get(&node_id) == Some(&Phase::Handshaking) {
                me.stats.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                debug!(
                    node_id,
                    "cluster: session not authenticated in time; stopping it"
                );
                session.stop(Some("handshake_timeout".into()));
            }
        });
    }

    pub(crate) fn authenticated(&self, node_id: NodeId) {
        lock(&self.phases).insert(node_id, Phase::Authenticated);
    }

    pub(crate) fn closed(&self, node_id: NodeId) {
        if lock(&self.phases).remove(&node_id) != Some(Phase::Authenticated) {
            self.stats.unauthenticated.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn permits_cap_in_total_and_per_address_and_free_on_drop() {
        let slots = Arc::new(Mutex::new(Slots::default()));
        let caps = Caps {
            total: 3,
            per_ip: 2,
        };
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let a1 = try_permit(&slots, caps, a).expect("first from a");
        let _a2 = try_permit(&slots, caps, a).expect("second from a");
        assert!(
            try_permit(&slots, caps, a).is_none(),
            "third from a is over per_ip"
        );
        let _b1 = try_permit(&slots, caps, b).expect("first from b");
        assert!(try_permit(&slots, caps, b).is_none(), "over total");
        drop(a1);
        let _b2 = try_permit(&slots, caps, b).expect("a slot was freed");
        assert_eq!(lock(&slots).total, 3);
        drop((_a2, _b1, _b2));
        assert_eq!(lock(&slots).total, 0);
        assert!(lock(&slots).per_ip.is_empty());
    }
}
