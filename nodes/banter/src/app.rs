//! Wiring of a node: opens the store, starts the journal and the actor directories, builds the HTTP
//! router and serves until a shutdown signal.
//!
//! Supervision tree (`node.roles`; the persister runs only with `journal.kind = "kafka"`):
//! ```text
//! node (this module)
//! ├── gateway role
//! │   ├── Directory<Rooms>  ── Room actor per active room
//! │   ├── Directory<Users>  ── User actor per connected user
//! │   ├── journal: in-process writer task, or the Kafka producer
//! │   └── axum server ── one session task per WebSocket
//! ├── persister role: supervisor ── consumer loop (restarted after a panic) ── batch writer task;
//! │                  lag refresh task
//! └── without the gateway role: axum server with /healthz and /metrics only
//! ```

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use banter_actors::directory::{Directory, DirectoryMessage};
use banter_actors::model::{RoomId, UserId};
use banter_actors::ports::{Clock, Journal, Ports, Store, SystemClock};
use banter_actors::room::{RoomConfig, RoomMessage, Rooms};
use banter_actors::user::{UserConfig, UserMessage, Users};
use ractor::{Actor, ActorRef};
use tokio::net::TcpListener;
use tracing::info;

use crate::auth::limits::LoginLimits;
use crate::auth::{AuthKeys, Passwords, default_max_concurrent_hashes};
use crate::config::{Config, JournalKind, Role};
use crate::front_door::DoorLimits;
use crate::http::budget::RoomBudgets;
use crate::journal::{KafkaJournal, LocalJournal};
use crate::persister::Persister;

/// Everything a request handler or a session needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Node configuration.
    pub config: Arc<Config>,
    /// Store, journal, clock.
    pub ports: Ports,
    /// Token keys.
    pub keys: AuthKeys,
    /// Password hashing at the configured cost.
    pub passwords: Passwords,
    /// Directory of room actors.
    pub rooms: ActorRef<DirectoryMessage<Rooms>>,
    /// Directory of user actors.
    pub users: ActorRef<DirectoryMessage<Users>>,
    /// Per-user budgets on creating rooms, opening DMs and joining.
    pub room_budgets: Arc<RoomBudgets>,
    /// Login and register attempts per client address, login attempts per account.
    pub login_limits: Arc<LoginLimits>,
    /// Source of session ids.
    pub next_session: Arc<AtomicU64>,
    /// Permits for resume backfills running at once (`ws.max_concurrent_backfills`).
    pub backfills: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Returns the store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.ports.store
    }

    /// Returns the current time in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.ports.clock.now_ms()
    }

    /// Tells a room actor something if it is active (or starting); an inactive room loads it anyway.
    pub fn tell_room(&self, room: RoomId, msg: RoomMessage) {
        let _ = self.rooms.cast(DirectoryMessage::Tell(room, msg));
    }

    /// Tells a user actor something if it is active (the user has a connection on this node).
    pub fn tell_user(&self, user: UserId, msg: UserMessage) {
        let _ = self.users.cast(DirectoryMessage::Tell(user, msg));
    }
}

fn nonzero(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// A started node: its address and the handles to stop it.
pub struct Node {
    /// Address the HTTP server listens on.
    pub addr: SocketAddr,
    state: Option<AppState>,
    kafka_journal: Option<KafkaJournal>,
    persister: Option<Persister>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Node {
    /// Starts a node with `config`: opens the store (running migrations), starts the journal, the actors
    /// and the persister as its roles say, binds the port.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        crate::metrics::install();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("failed to create data dir {}", config.data_dir.display()))?;
        let url = config.store_url();
        let store = crate::store::open_store(&url, config.store.sqlite_synchronous)
            .await
            .with_context(|| format!("failed to open store {}", redact(&url)))?;
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("failed to listen on {}", config.http.listen))?;
        let addr = listener.local_addr()?;
        let gateway = config.node.has(Role::Gateway);
        let kafka = config.journal.kind == JournalKind::Kafka;
        if !kafka && config.node.has(Role::Persister) && !gateway {
            tracing::warn!(
                "the persister role runs only with journal.kind = \"kafka\"; nothing to do"
            );
        }
        let kafka_journal = if kafka && gateway {
            let journal = KafkaJournal::start(
                &config.journal.kafka,
                &config.persister.group_id,
                store.clone(),
            )
            .await
            .context("failed to start the Kafka journal")?;
            Some(journal)
        } else {
            if kafka {
                crate::journal::kafka::prepare_topics(&config.journal.kafka)
                    .await
                    .context("failed to prepare the Kafka topics")?;
            }
            None
        };
        let persister = if kafka && config.node.has(Role::Persister) {
            let p = Persister::start(&config.journal.kafka, &config.persister, store.clone())
                .await
                .context("failed to start the persister")?;
            Some(p)
        } else {
            None
        };
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let door = door_limits(&config.http)?;
        let metrics_token = config.http.metrics_token.clone();
        let (state, router) = if gateway {
            let journal: Arc<dyn Journal> = match &kafka_journal {
                Some(k) => Arc::new(k.clone()),
                None => Arc::new(LocalJournal::start(
                    store.clone(),
                    config.journal.max_batch,
                    config.journal.max_queue,
                )),
            };
            let state = start_gateway(config, store, journal).await?;
            tokio::spawn(crate::housekeeping::run(
                state.clone(),
                crate::housekeeping::PURGE_EVERY,
                crate::housekeeping::TRIM_EVERY,
                shutdown.subscribe(),
            ));
            tokio::spawn(count_actors(state.clone(), shutdown.subscribe()));
            let router = crate::http::router(state.clone());
            (Some(state), router)
        } else {
            (None, ops_router(&metrics_token))
        };
        let server = tokio::spawn(crate::front_door::serve(
            listener,
            router,
            door,
            shutdown.subscribe(),
        ));
        let roles: Vec<&str> = [(gateway, "gateway"), (persister.is_some(), "persister")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        info!(%addr, store = %redact(&url), ?roles, "banter node listening");
        Ok(Node {
            addr,
            state,
            kafka_journal,
            persister,
            server,
            shutdown,
        })
    }

    /// Returns the node's shared state (`None` without the gateway role).
    pub fn state(&self) -> Option<&AppState> {
        self.state.as_ref()
    }

    /// Stops accepting connections, waits for the server, stops the actors, settles the journal's
    /// appends in flight, then stops the persister.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let served = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        if let Some(state) = &self.state {
            state.rooms.stop(None);
            state.users.stop(None);
        }
        if let Some(journal) = &self.kafka_journal {
            journal.flush(Duration::from_secs(10)).await;
        }
        if let Some(persister) = self.persister {
            persister.stop().await;
        }
        match served {
            Ok(Ok(r)) => r.context("server failed"),
            Ok(Err(join)) => Err(join.into()),
            Err(_) => Ok(()),
        }
    }
}

/// Returns the router of a process without the gateway role: liveness and metrics only.
fn ops_router(metrics_token: &str) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/metrics", crate::metrics::route(metrics_token))
}

/// Returns the front door's limits from the HTTP settings.
fn door_limits(http: &crate::config::HttpConfig) -> anyhow::Result<DoorLimits> {
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

/// Starts what the gateway role runs: the actor directories over the store and `journal`.
async fn start_gateway(
    config: Config,
    store: Arc<dyn Store>,
    journal: Arc<dyn Journal>,
) -> anyhow::Result<AppState> {
    let keys = AuthKeys::load_or_create(&config.data_dir)
        .context("failed to load the token signing key")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = Ports {
        store,
        journal,
        clock,
    };
    let idle = Duration::from_secs(config.rooms.idle_timeout_secs.max(1));
    let rooms = Rooms {
        ports: ports.clone(),
        config: RoomConfig {
            ring_size: config.rooms.ring_size.max(1),
            idle_timeout: idle,
            typing_interval: Duration::from_millis(1000),
        },
    };
    let users = Users {
        config: UserConfig {
            send_per_second: nonzero(config.limits.send_per_second),
            send_burst: nonzero(config.limits.send_burst),
            idle_timeout: idle,
            max_sessions: config.ws.max_sessions_per_user.max(1),
        },
    };
    let (rooms, _) = Actor::spawn(None, Directory::new(rooms), ())
        .await
        .context("failed to start the room directory")?;
    let (users, _) = Actor::spawn(None, Directory::new(users), ())
        .await
        .context("failed to start the user directory")?;
    let config_backfills = config.ws.max_concurrent_backfills;
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
    Ok(AppState {
        config: Arc::new(config),
        ports,
        keys,
        passwords,
        rooms,
        users,
        room_budgets,
        login_limits: Arc::new(login_limits),
        next_session: Arc::new(AtomicU64::new(1)),
        backfills: Arc::new(tokio::sync::Semaphore::new(config_backfills.max(1))),
    })
}

/// Sets the gauge of live actors ([`crate::metrics::ACTORS_ACTIVE`]) every second until shutdown.
async fn count_actors(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let rooms = ractor::call!(state.rooms, DirectoryMessage::GetCount);
        let users = ractor::call!(state.users, DirectoryMessage::GetCount);
        let (Ok(rooms), Ok(users)) = (rooms, users) else {
            return;
        };
        metrics::gauge!(crate::metrics::ACTORS_ACTIVE, "kind" => "room").set(rooms as f64);
        metrics::gauge!(crate::metrics::ACTORS_ACTIVE, "kind" => "user").set(users as f64);
    }
}

/// Hides the password of a database URL for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}
