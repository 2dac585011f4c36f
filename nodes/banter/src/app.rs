//! Wiring of a node: opens the store, starts the journal, the root supervisor and its actor
//! directories, the gateway and the persister as the roles say, and stops them in order.
//!
//! Supervision tree (`node.roles`; the persister runs only with `journal.kind = "kafka"`):
//! ```text
//! node (this module)
//! ├── gateway role
//! │   ├── Root (crate::supervisor): a dead directory stops the node
//! │   │   ├── Directory<Rooms>  ── Room actor per active room
//! │   │   ├── Directory<Accounts> ── the user's actor per user with uploads in flight (uploads on)
//! │   │   └── SourceSupervisor ([feeds]) ── IngestSource per source whose shard this node serves
//! │   ├── users table: each connected user's sessions and send budget (no actor per connection)
//! │   ├── blob store ([media]): S3, or the local folder and its signed /api/blobs routes
//! │   ├── journal: in-process writer task, or the Kafka producer
//! │   ├── housekeeping: token purge and limiter trim; signing key refresh (rotation, pruning)
//! │   └── front door ── one session task per WebSocket (closed with "reconnect elsewhere" on stop)
//! ├── cluster (gateway role, `cluster.enabled`): node server, router, membership, lease keeper
//! ├── persister role: supervisor ── consumer loop (restarted after a panic) ── batch writer task
//! ├── lag monitor (any node on the Kafka journal): the persister group's lag, even with every
//! │   persister down
//! └── without the gateway role: front door with /healthz and /metrics only
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use std::num::NonZeroU32;

use banter_actors::account::{
    AccountConfig, AccountPorts, AccountRoutes, Accounts, LocalAccounts, UploadRules,
};
use banter_actors::delivery::{NodeId, SessionId};
use banter_actors::ports::{
    Blobs, Clock, Journal, Ownership, Ports, SingleNode, Store, SystemClock,
};
use banter_actors::presence::Presence;
use banter_actors::room::{RoomConfig, Rooms};
use banter_actors::route::{LocalRoutes, Routes};
use banter_actors::source::supervisor::{SourceSupervisor, SupervisorArgs};
use banter_actors::source::{RawLog, SourceDeps, SourceSpec, StoreRawLog};
use banter_actors::user::Users;
use banter_cluster::{Cluster, ClusterRoutes};
use banter_gateway::auth::{AuthKeys, KeyPolicy};
use banter_gateway::state::{count_actors, door_limits, ops_router, user_config};
use banter_gateway::{AppState, GatewayParts};
use banter_kafka::raw::KafkaRawLog;
use banter_kafka::{KafkaJournal, Persister};
use banter_media::{Media, MediaConfig, MediaKind};
use banter_store::LocalJournal;
use ractor::{Actor, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::config::{Config, JournalKind, Role};
use crate::supervisor::{Directories, Root, RootArgs, RootMessage};

/// A started node: its address and the handles to stop it.
pub struct Node {
    /// Address the HTTP server listens on.
    pub addr: SocketAddr,
    state: Option<AppState>,
    root: Option<ActorRef<RootMessage>>,
    failed: watch::Receiver<Option<String>>,
    kafka_journal: Option<KafkaJournal>,
    persister: Option<Persister>,
    lag: Option<banter_kafka::LagMonitor>,
    cluster: Option<Cluster>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: watch::Sender<bool>,
}

impl Node {
    /// Starts a node with `config`: opens the store (running migrations), starts the journal, the actors
    /// and the persister as its roles say, binds the port.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        banter_telemetry::install();
        banter_store::describe_metrics();
        banter_kafka::describe_metrics();
        banter_gateway::describe_metrics();
        banter_cluster::describe_metrics();
        banter_telemetry::otel::describe_metrics();
        banter_actors::metrics::describe_metrics();
        banter_media::sweep::describe_metrics();
        banter_feeds::client::describe_metrics();
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("failed to create data dir {}", config.data_dir.display()))?;
        let url = config.store_url();
        let store = banter_store::open_store(&url, config.store.sqlite_synchronous)
            .await
            .with_context(|| format!("failed to open store {}", redact(&url)))?;
        let listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("failed to listen on {}", config.http.listen))?;
        let addr = listener.local_addr()?;
        let gateway = config.node.has(Role::Gateway);
        let kafka = config.journal.kind == JournalKind::Kafka;
        if kafka {
            banter_kafka::metrics::export_at_zero();
        }
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
                banter_kafka::prepare_topics(&config.journal.kafka)
                    .await
                    .context("failed to prepare the Kafka topics")?;
            }
            None
        };
        // Every node on the Kafka journal reports the persister group's lag, persister or not.
        let lag = if kafka {
            Some(
                banter_kafka::LagMonitor::start(&config.journal.kafka, &config.persister)
                    .context("failed to start the lag monitor")?,
            )
        } else {
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
        // The gateway's journal (a persister-only node appends nothing).
        let journal: Option<Arc<dyn Journal>> = match &kafka_journal {
            Some(k) => Some(Arc::new(k.clone())),
            None if gateway => Some(Arc::new(LocalJournal::start(
                store.clone(),
                config.journal.max_batch,
                config.journal.max_queue,
            ))),
            None => None,
        };
        let cluster = if let (true, Some(journal)) = (config.cluster.enabled, &journal) {
            let expired_for = Duration::from_millis(config.journal.kafka.message_timeout_ms);
            let cluster =
                Cluster::start(&config.cluster, store.clone(), journal.clone(), expired_for)
                    .await
                    .context("failed to join the cluster")?;
            Some(cluster)
        } else {
            if config.cluster.enabled {
                tracing::warn!("the cluster runs with the gateway role only; [cluster] ignored");
            }
            None
        };
        let node_id = cluster.as_ref().map_or(NodeId::SINGLE, Cluster::me);
        let ownership: Arc<dyn Ownership> = match &cluster {
            Some(cluster) => cluster.placement().clone(),
            None => Arc::new(SingleNode),
        };
        let (shutdown, _) = watch::channel(false);
        let (failed_tx, failed) = watch::channel(None);
        let door = door_limits(&config.http)?;
        let metrics_token = config.http.metrics_token.clone();
        let (state, root, router) = if let Some(journal) = journal {
            let media = open_media(&config, cluster.is_some()).await?;
            if let Some(media) = &media {
                tokio::spawn(banter_media::sweep::run(
                    store.clone(),
                    media.blobs.clone(),
                    Arc::new(SystemClock),
                    Duration::from_secs(config.media.unattached_ttl_secs),
                    Duration::from_secs(config.media.sweep_interval_secs.max(1)),
                    shutdown.subscribe(),
                ));
            }
            let parts = GatewayPorts {
                store,
                journal,
                node: node_id,
                ownership,
                cluster: cluster.as_ref(),
                blobs: media.as_ref().map(|m| m.blobs.clone()),
            };
            let feeds = config.feeds.specs().context("invalid [feeds] settings")?;
            // Raw frames go to their own Kafka topic on the full stack, to the store otherwise.
            let raw: Option<Arc<dyn RawLog>> = match &kafka_journal {
                Some(_) if !feeds.is_empty() => Some(Arc::new(
                    KafkaRawLog::new(&config.journal.kafka)
                        .context("failed to start the feeds' raw log producer")?,
                )),
                _ => None,
            };
            let (state, root) = start_gateway(config, parts, &shutdown, failed_tx).await?;
            start_sources(&state, &root, feeds, raw).await?;
            tokio::spawn(banter_gateway::housekeeping::run(
                state.clone(),
                banter_gateway::housekeeping::PURGE_EVERY,
                banter_gateway::housekeeping::TRIM_EVERY,
                shutdown.subscribe(),
            ));
            tokio::spawn(banter_gateway::housekeeping::refresh_keys(
                state.keys.clone(),
                shutdown.subscribe(),
            ));
            tokio::spawn(count_actors(state.clone(), shutdown.subscribe()));
            tokio::spawn(banter_gateway::presence::run(
                state.clone(),
                shutdown.subscribe(),
            ));
            let router = banter_gateway::http::router(state.clone(), media.and_then(|m| m.routes));
            (Some(state), Some(root), router)
        } else {
            (None, None, ops_router(&metrics_token))
        };
        let server = tokio::spawn(banter_gateway::front_door::serve(
            listener,
            router,
            door,
            shutdown.subscribe(),
        ));
        let roles: Vec<&str> = [(gateway, "gateway"), (persister.is_some(), "persister")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        info!(%addr, store = %redact(&url), ?roles, node = %node_id, "banter node listening");
        Ok(Node {
            addr,
            state,
            root,
            failed,
            kafka_journal,
            persister,
            lag,
            cluster,
            server,
            shutdown,
        })
    }

    /// Returns the node's shared state (`None` without the gateway role).
    pub fn state(&self) -> Option<&AppState> {
        self.state.as_ref()
    }

    /// The cluster layer (`None` for a single node).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Resolves when a part the node cannot serve without has died (an actor directory, or the
    /// cluster evicted this node), with the reason; never resolves while the node is healthy.
    pub async fn failed(&self) -> String {
        let mut failed = self.failed.clone();
        let local = async {
            match failed.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or_default(),
                Err(_) => std::future::pending().await,
            }
        };
        let cluster = async {
            match &self.cluster {
                Some(cluster) => cluster.failed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = local => reason,
            reason = cluster => reason,
        }
    }

    /// Stops accepting connections and closes the sessions (each client is told to reconnect
    /// elsewhere), waits for the server, stops the actors, settles the journal's appends in flight,
    /// then stops the persister.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let served = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        if let Some(state) = &self.state
            && !state.sessions_closed(Duration::from_secs(10)).await
        {
            tracing::warn!("sessions still open 10 s after the shutdown signal");
        }
        if let Some(root) = &self.root {
            let _ = ractor::call!(root, RootMessage::Shutdown);
        }
        if let Some(journal) = &self.kafka_journal {
            journal.flush(Duration::from_secs(10)).await;
        }
        // The rooms have drained into the journal: their shards can go to other nodes.
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
        if let Some(persister) = self.persister {
            persister.stop().await;
        }
        if let Some(lag) = self.lag {
            lag.stop().await;
        }
        match served {
            Ok(Ok(r)) => r.context("server failed"),
            Ok(Err(join)) => Err(join.into()),
            Err(_) => Ok(()),
        }
    }
}

/// What the gateway is started over.
struct GatewayPorts<'a> {
    store: Arc<dyn Store>,
    journal: Arc<dyn Journal>,
    node: NodeId,
    ownership: Arc<dyn Ownership>,
    cluster: Option<&'a Cluster>,
    /// The blob store, while uploads are on.
    blobs: Option<Arc<dyn Blobs>>,
}

/// Opens the blob store `[media]` names, or none (uploads off) when a cluster node is configured
/// with the local folder, which one node alone could serve.
async fn open_media(config: &Config, clustered: bool) -> anyhow::Result<Option<Media>> {
    if clustered && config.media.kind == MediaKind::Local {
        tracing::warn!(
            "uploads are off: the local blob folder serves one node, a cluster needs \
             [media] kind = \"s3\""
        );
        return Ok(None);
    }
    let media = banter_media::open(&config.media, &config.data_dir)
        .await
        .context("failed to open the blob store ([media])")?;
    Ok(Some(media))
}

/// Attachments checked at once on a node: each holds its object (up to `media.max_upload_bytes`)
/// in memory while an image decodes on a blocking thread; two keep both cores busy.
const INSPECTIONS: usize = 2;

/// The longest a download URL may be good for, in seconds: SigV4's limit (7 days).
const MAX_DOWNLOAD_TTL: u64 = 7 * 24 * 3600;

/// The users' actors' entity factory for `[media]`, over `ports`.
pub(crate) fn accounts(media: &MediaConfig, ports: AccountPorts) -> Accounts {
    let ttl = Duration::from_secs(media.upload_ttl_secs.max(1));
    Accounts {
        ports,
        config: AccountConfig {
            rules: UploadRules {
                max_upload_bytes: media.max_upload_bytes,
                allowed_types: media
                    .allowed_types
                    .iter()
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect(),
            },
            upload_ttl: ttl.min(banter_media::s3::MAX_FORM_TTL),
            download_ttl: Duration::from_secs(media.download_ttl_secs.clamp(1, MAX_DOWNLOAD_TTL)),
            uploads_per_minute: NonZeroU32::new(media.uploads_per_minute.max(1))
                .unwrap_or(NonZeroU32::MIN),
            quota_bytes: media.quota_bytes,
            max_image_pixels: media.max_image_pixels,
            idle_timeout: Duration::from_secs(300),
        },
    }
}

/// Starts what the gateway role runs: the root supervisor with the actor directories over the store
/// and `journal`, and the gateway's state.
async fn start_gateway(
    config: Config,
    parts: GatewayPorts<'_>,
    shutdown: &watch::Sender<bool>,
    failed: watch::Sender<Option<String>>,
) -> anyhow::Result<(AppState, ActorRef<RootMessage>)> {
    let GatewayPorts {
        store,
        journal,
        node,
        ownership,
        cluster,
        blobs,
    } = parts;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = KeyPolicy::from_config(&config.auth).context("invalid [auth] key settings")?;
    let keys = AuthKeys::open(store.clone(), clock.clone(), policy, &config.data_dir)
        .await
        .context("failed to load the token signing keys")?;
    let presence = Presence::new(clock.clone());
    let ports = Ports {
        ownership,
        spans: banter_telemetry::hops::spans(),
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
            max_sessions_per_user: config.ws.max_sessions_per_user.max(1),
        },
    };
    let accounts = blobs.map(|blobs| {
        let ports = AccountPorts {
            store: ports.store.clone(),
            blobs,
            clock: ports.clock.clone(),
            inspections: Arc::new(tokio::sync::Semaphore::new(INSPECTIONS)),
        };
        accounts(&config.media, ports)
    });
    let account_rules = accounts.as_ref().map(|a| a.config.rules.clone());
    let gateway = config.gateway();
    let users = Users::new(user_config(&gateway), presence.clone());
    let args = RootArgs {
        rooms,
        accounts,
        failed,
    };
    let (root, _) = Actor::spawn(None, Root, args)
        .await
        .context("failed to start the root supervisor")?;
    let Directories { rooms, accounts } = ractor::call!(root, RootMessage::Directories)
        .map_err(|e| anyhow::anyhow!("the root supervisor did not answer: {e}"))?;
    let local_accounts = accounts
        .zip(account_rules)
        .map(|(directory, rules)| LocalAccounts::new(directory, rules));
    // On a cluster node, a user's actor lives on the owner of the user's shard: the cluster's
    // routes reach it, as they reach rooms.
    let (routes, accounts) = match cluster {
        Some(c) => {
            let local = LocalRoutes::new(rooms.clone());
            let (placement, links) = (c.placement().clone(), c.links().clone());
            let uploads_on = local_accounts.is_some();
            let routes = ClusterRoutes::new(
                local,
                users.clone(),
                placement,
                links,
                presence.clone(),
                local_accounts,
            );
            let accounts = uploads_on.then(|| routes.clone() as Arc<dyn AccountRoutes>);
            (Some(routes as Arc<dyn Routes>), accounts)
        }
        None => (
            None,
            local_accounts.map(|a| Arc::new(a) as Arc<dyn AccountRoutes>),
        ),
    };
    let state = AppState::new(GatewayParts {
        config: gateway,
        ports,
        keys,
        rooms,
        users,
        shutdown: shutdown.subscribe(),
        node,
        routes,
        presence,
        accounts,
    })?;
    Ok((state, root))
}

/// Starts the supervisor of the configured ingest sources, linked to the root (none: nothing).
async fn start_sources(
    state: &AppState,
    root: &ActorRef<RootMessage>,
    specs: Vec<SourceSpec>,
    raw: Option<Arc<dyn RawLog>>,
) -> anyhow::Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let raw = raw.unwrap_or_else(|| Arc::new(StoreRawLog(state.ports.clone())));
    let (node, next) = (state.node, state.next_session.clone());
    let deps = SourceDeps {
        ports: state.ports.clone(),
        routes: state.routes.clone(),
        raw,
        sessions: Arc::new(move || SessionId::new(node, next.fetch_add(1, Ordering::Relaxed))),
    };
    let args = SupervisorArgs {
        specs,
        deps,
        check_every: Duration::from_secs(1),
    };
    Actor::spawn_linked(None, SourceSupervisor, args, root.get_cell())
        .await
        .context("failed to start the ingest sources' supervisor")?;
    Ok(())
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
