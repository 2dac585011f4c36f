//! The front door: the accept loop of the HTTP and WebSocket listener, with what a client can make it
//! hold bounded before any handler runs.
//!
//! - Connections open at once are capped for the node (`http.max_connections`, by default the
//!   process's open-file limit less a reserve, so the node never runs out of descriptors for its store,
//!   journal and peers) and per client address (`http.max_connections_per_ip`; addresses listed in
//!   `http.trusted_proxies` are exempt: a proxy carries many clients). A connection over a cap gets a
//!   plain HTTP answer with the JSON error body (503 `too_many_connections` for the node, 429
//!   `too_many_connections_from_address` for an address) and is closed at once.
//! - A client has `http.header_read_timeout_ms` to send a request's headers (slow-loris clients and
//!   idle keep-alive connections are closed), and `http.request_timeout_ms` for the rest of the
//!   request, body included (408 `request_timeout`); a WebSocket, once upgraded, is bounded by the
//!   session's own deadlines instead.
//! - A connection's slot is a [`ConnectionSlot`] in its requests' extensions; the WebSocket upgrade
//!   moves it into the session, so an upgraded connection keeps counting until the session ends.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::error::ApiError;

/// Reserve of open files kept for everything but client connections when the cap is automatic.
const FD_RESERVE: u64 = 512;

/// Limits of the front door.
#[derive(Clone, Debug)]
pub struct DoorLimits {
    /// Connections open at once on the node.
    pub max_connections: usize,
    /// Connections open at once from one address (not a trusted proxy).
    pub max_per_ip: usize,
    /// Addresses exempt from the per-address cap.
    pub trusted: Vec<IpNet>,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
}

/// Returns the automatic node-wide cap: the open-file limit less [`FD_RESERVE`].
pub fn auto_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(FD_RESERVE).max(64)).unwrap_or(usize::MAX)
}

/// Counts open connections, in total and per address.
#[derive(Debug)]
struct Counts {
    limits: DoorLimits,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under the caps; it is given back when the last holder drops it.
#[derive(Debug)]
pub struct ConnectionSlot {
    counts: Arc<Counts>,
    ip: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.counts.total.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).decrement(1.0);
        if let Some(ip) = self.ip {
            let mut per_ip = self.counts.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Node,
    Address,
}

impl Counts {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.limits.max_connections {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Node);
        }
        let tracked = !self.limits.trusted.iter().any(|net| net.contains(&ip));
        if tracked {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            if *n >= self.limits.max_per_ip {
                drop(per_ip);
                self.total.fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::Address);
            }
            *n += 1;
        }
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
        Ok(ConnectionSlot {
            counts: self.clone(),
            ip: tracked.then_some(ip),
        })
    }

    fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// Answers a refused connection with a complete HTTP response and closes it, without waiting: the
/// answer fits in the socket's send buffer, and a client that is not reading loses it.
fn refuse(stream: TcpStream, why: Refusal) {
    let (status, code, message) = match why {
        Refusal::Node => (
            "503 Service Unavailable",
            "too_many_connections",
            "the node has as many connections as it serves; try again or another node",
        ),
        Refusal::Address => (
            "429 Too Many Requests",
            "too_many_connections_from_address",
            "too many connections from this address",
        ),
    };
    crate::metrics::refused(match why {
        Refusal::Node => "node_connections",
        Refusal::Address => "ip_connections",
    });
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// Serves `router` on `listener` under `limits` until `shutdown` turns true, then lets open
/// connections finish (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: DoorLimits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let counts = Arc::new(Counts {
        limits,
        total: AtomicUsize::new(0),
        per_ip: Mutex::new(HashMap::new()),
    });
    let (closing, _) = watch::channel(false);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was taken: not fatal.
                    warn!(error = %e, open = counts.open(), "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        match counts.admit(peer.ip()) {
            Ok(slot) => {
                let conn = serve_connection(
                    stream,
                    peer,
                    Arc::new(slot),
                    router.clone(),
                    counts.limits.header_read_timeout,
                    closing.subscribe(),
                );
                tokio::spawn(conn);
            }
            Err(why) => {
                debug!(%peer, ?why, "connection refused");
                refuse(stream, why);
            }
        }
    }
    let _ = closing.send(true);
    // In-flight requests complete and keep-alive connections close (upgraded ones are sessions now).
    while closing.receiver_count() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Resolves once `flag` is true (or its sender is gone).
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// Requests of one connection in flight, and when the last one ended: a connection with none in
/// flight for the header-read timeout is closed (hyper's own header timer starts only at a request's
/// first byte, so it does not close a connection that sends nothing).
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` when a request last ended.
    last_ms: AtomicU64,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Returns when the connection counts as idle since (`None` while a request is in flight).
    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Relaxed) == 0)
            .then(|| self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A request in flight; ending it marks the connection active now.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Arc<ConnectionSlot>,
    router: Router,
    header_read_timeout: Duration,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        started: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let seen = activity.clone();
    let service = tower::service_fn(move |req: axum::http::Request<Incoming>| {
        let request = seen.begin();
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(slot.clone());
        let response = router.clone().oneshot(req);
        async move {
            let response = response.await;
            drop(request);
            response
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut check = tokio::time::interval(header_read_timeout / 4 + Duration::from_millis(1));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            () = stopped(&mut closing), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = check.tick(), if !shutting_down => {
                if activity.idle_since().is_some_and(|t| t.elapsed() >= header_read_timeout) {
                    debug!(%peer, "closing an idle connection");
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Middleware: a request (body included) must complete within `timeout`; past it the client gets
/// 408 `request_timeout`.
pub async fn request_deadline(timeout: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long to arrive",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(max: usize, per_ip: usize, trusted: &[&str]) -> Arc<Counts> {
        Arc::new(Counts {
            limits: DoorLimits {
                max_connections: max,
                max_per_ip: per_ip,
                trusted: trusted.iter().map(|t| t.parse().expect("net")).collect(),
                header_read_timeout: Duration::from_secs(1),
            },
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    #[test]
    fn caps_per_address_and_per_node_and_slots_come_back() {
        let c = counts(3, 2, &[]);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = c.admit(a).expect("first");
        let _s2 = c.admit(a).expect("second");
        assert_eq!(c.admit(a).err(), Some(Refusal::Address));
        let _s3 = c.admit(b).expect("another address");
        assert_eq!(c.admit(b).err(), Some(Refusal::Node));
        assert_eq!(c.open(), 3);
        drop(s1);
        assert_eq!(c.open(), 2);
        assert!(c.admit(a).is_ok(), "a slot came back");
    }

    #[test]
    fn trusted_proxies_have_no_per_address_cap() {
        let c = counts(10, 1, &["127.0.0.0/8"]);
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let slots: Vec<_> = (0..5).map(|_| c.admit(proxy).expect("proxy")).collect();
        assert_eq!(slots.len(), 5);
        assert!(c.per_ip.lock().expect("lock").is_empty());
    }
}
