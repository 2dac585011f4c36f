//! The gateway's shared state ([`AppState`]: what every request handler and session reaches) and the
//! pieces the binary assembles around it: the front door's limits, the ops-only router, the gauge of
//! live actors.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use banter_actors::account::AccountRoutes;
use banter_actors::delivery::NodeId;
use banter_actors::directory::DirectoryMessage;
use banter_actors::model::{RoomId, UserId};
use banter_actors::ports::{Ports, Store};
use banter_actors::presence::Presence;
use banter_actors::room::{RoomMessage, Rooms};
use banter_actors::route::{LocalRoutes, Routes};
use banter_actors::user::{UserConfig, Users};
use ractor::ActorRef;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::auth::limits::LoginLimits;
use crate::auth::{AuthKeys, Passwords, default_max_concurrent_hashes};
use crate::config::{GatewayConfig, HttpConfig, WsConfig};
use crate::front_door::DoorLimits;
use crate::http::budget::RoomBudgets;

/// Everything a request handler or a session needs: one pointer, cheap to clone and small to hold (an
/// idle connection's session keeps one; see [`AppStateInner`] for the fields).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The fields of an [`AppState`].
pub struct AppStateInner {
    /// The gateway's configuration sections.
    pub config: Arc<GatewayConfig>,
    /// Store, journal, clock.
    pub ports: Ports,
    /// Token keys.
    pub keys: AuthKeys,
    /// Password hashing at the configured cost.
    pub passwords: Passwords,
    /// Directory of room actors.
    pub rooms: ActorRef<DirectoryMessage<Rooms>>,
    /// The users of this node with a session here: their sessions and send budgets.
    pub users: Arc<Users>,
    /// How sessions and handlers reach rooms, here or on another node.
    pub routes: Arc<dyn Routes>,
    /// Per-user budgets on creating rooms, opening DMs and joining.
    pub room_budgets: Arc<RoomBudgets>,
    /// Login and register attempts per client address, login attempts per account.
    pub login_limits: Arc<LoginLimits>,
    /// This node (its sessions' ids carry it).
    pub node: NodeId,
    /// Source of session numbers on this node.
    pub next_session: Arc<AtomicU64>,
    /// Permits for resume backfills running at once (`ws.max_concurrent_backfills`).
    pub backfills: Arc<tokio::sync::Semaphore>,
    /// Turns true when the node shuts down: every session then closes its client (see `ws`).
    pub shutdown: watch::Receiver<bool>,
    /// The WebSocket sessions running, so that a stopping node can wait for them to close.
    pub sessions: TaskTracker,
    /// Who is online, on this node and the others.
    pub presence: Arc<Presence>,
    /// How handlers reach users' actors; `None` while uploads are off.
    pub accounts: Option<Arc<dyn AccountRoutes>>,
}

/// What [`AppState::new`] assembles the state from.
pub struct GatewayParts {
    /// The gateway's configuration sections.
    pub config: GatewayConfig,
    /// Store, journal, clock.
    pub ports: Ports,
    /// Token keys.
    pub keys: AuthKeys,
    /// Directory of room actors.
    pub rooms: ActorRef<DirectoryMessage<Rooms>>,
    /// The users of this node with a session here.
    pub users: Arc<Users>,
    /// The node's shutdown signal.
    pub shutdown: watch::Receiver<bool>,
    /// This node.
    pub node: NodeId,
    /// How to reach rooms; `None`: this node serves every room ([`LocalRoutes`] over `rooms`).
    pub routes: Option<Arc<dyn Routes>>,
    /// The node's presence table (`users` fills it).
    pub presence: Arc<Presence>,
    /// How handlers reach users' actors; `None` while uploads are off.
    pub accounts: Option<Arc<dyn AccountRoutes>>,
}

impl AppState {
    /// Builds the state: checks the limits, sets up password hashing and the budgets.
    pub fn new(parts: GatewayParts) -> anyhow::Result<AppState> {
        let GatewayParts {
            config,
            ports,
            keys,
            rooms,
            users,
            shutdown,
            node,
            routes,
            presence,
            accounts,
        } = parts;
        let routes = routes.unwrap_or_else(|| Arc::new(LocalRoutes::new(rooms.clone())));
        anyhow::ensure!(
            config.limits.max_body_bytes <= banter_actors::rules::BODY_MAX_BYTES_CEILING,
            "limits.max_body_bytes is {}, above the {} bytes a store can hold",
            config.limits.max_body_bytes,
            banter_actors::rules::BODY_MAX_BYTES_CEILING
        );
        let login_limits = LoginLimits::new(
            config.limits.auth_per_minute,
            config.limits.login_per_account_per_minute,
            &config.http.trusted_proxies,
        )
        .map_err(anyhow::Error::msg)
        .context("invalid http.trusted_proxies")?;
        let max_hashes = match config.auth.max_concurrent_hashes {
            0 => default_max_concurrent_hashes(),
            n => n,
        };
        let passwords = Passwords::new(
            config.auth.password_memory_kib,
            config.auth.password_iterations,
        )
        .context("invalid auth.password_memory_kib / auth.password_iterations")?
        .with_limits(max_hashes, Duration::from_millis(config.auth.hash_wait_ms));
        let room_budgets = Arc::new(RoomBudgets::new(&config.limits));
        let backfills = config.ws.max_concurrent_backfills.max(1);
        Ok(AppState(Arc::new(AppStateInner {
            config: Arc::new(config),
            ports,
            keys,
            passwords,
            rooms,
            users,
            routes,
            room_budgets,
            login_limits: Arc::new(login_limits),
            node,
            next_session: Arc::new(AtomicU64::new(1)),
            backfills: Arc::new(tokio::sync::Semaphore::new(backfills)),
            shutdown,
            sessions: TaskTracker::new(),
            presence,
            accounts,
        })))
    }

    /// Returns the store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.ports.store
    }

    /// Returns the current time in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.ports.clock.now_ms()
    }

    /// Waits (at most `deadline`) for every session to end; the node's shutdown signal tells them to.
    pub async fn sessions_closed(&self, deadline: Duration) -> bool {
        self.sessions.close();
        tokio::time::timeout(deadline, self.sessions.wait())
            .await
            .is_ok()
    }

    /// Tells a room actor something if it is active (or starting); an inactive room loads it anyway.
    pub fn tell_room(&self, room: RoomId, msg: RoomMessage) {
        self.routes.room_changed(room, msg);
    }

    /// Delivers an event to the user's own queue on every session of the user, on every node.
    pub fn notify_user(&self, user: UserId, event: &'static str, body: bytes::Bytes) {
        self.routes.notify_elsewhere(user, event, body.clone());
        self.users.notify(user, event, &body);
    }
}

/// Returns the users table's settings from the gateway's limits.
pub fn user_config(config: &GatewayConfig) -> UserConfig {
    fn nonzero(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
    }
    let ws: &WsConfig = &config.ws;
    UserConfig {
        send_per_second: nonzero(config.limits.send_per_second),
        send_burst: nonzero(config.limits.send_burst),
        max_sessions: ws.max_sessions_per_user.max(1),
    }
}

/// Returns the router of a process without the gateway role: liveness and metrics only.
pub fn ops_router(metrics_token: &str) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/metrics", crate::metrics::route(metrics_token))
}

/// Returns the front door's limits from the HTTP settings.
pub fn door_limits(http: &HttpConfig) -> anyhow::Result<DoorLimits> {
    let trusted = crate::auth::limits::parse_trusted(&http.trusted_proxies)
        .map_err(anyhow::Error::msg)
        .context("invalid http.trusted_proxies")?;
    Ok(DoorLimits {
        max_connections: match http.max_connections {
            0 => crate::front_door::auto_max_connections(),
            n => n,
        },
        max_per_ip: http.max_connections_per_ip.max(1),
        trusted,
        header_read_timeout: Duration::from_millis(http.header_read_timeout_ms.max(1)),
    })
}

/// Sets the gauges of live actors ([`crate::metrics::ACTORS_ACTIVE`]), of their mailboxes
/// ([`crate::metrics::MAILBOX_DEPTH`]) and of users online
/// ([`crate::metrics::PRESENCE_USERS`]) every second until shutdown.
pub async fn count_actors(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let Ok(rooms) = ractor::call!(state.rooms, DirectoryMessage::GetCount) else {
            return;
        };
        metrics::gauge!(crate::metrics::ACTORS_ACTIVE, "kind" => "room").set(rooms as f64);
        for (kind, depth) in banter_actors::mailbox_depths() {
            metrics::gauge!(crate::metrics::MAILBOX_DEPTH, "kind" => kind).set(depth as f64);
        }
        let (here, online) = (state.presence.here(), state.presence.online_count());
        metrics::gauge!(crate::metrics::PRESENCE_USERS, "scope" => "node").set(here as f64);
        metrics::gauge!(crate::metrics::PRESENCE_USERS, "scope" => "cluster").set(online as f64);
    }
}
