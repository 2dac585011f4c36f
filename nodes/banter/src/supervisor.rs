//! The root supervisor of a node's actors.
//!
//! It spawns the room directory and the users' actors' directory linked to itself (the ingest
//! sources' supervisor is linked to it too, once the gateway is up), so a directory's death is an event here rather than a silent hole: a directory that stops or panics while the node is not shutting down leaves a
//! node that would look alive and serve no chat, so the root reports it on the `failed` channel and
//! stops. The binary then stops the node and exits non-zero, and whatever runs it (systemd, Compose's
//! restart policy, a Kubernetes pod) starts a fresh process: the directories hold no state a restart
//! loses (rooms reload from the journal and the store), and a fresh process is simpler to reason
//! about than directories swapped under live sessions.
//!
//! A graceful stop goes through [`RootMessage::Shutdown`]: the root marks itself stopping, stops the
//! directories and waits for them (each stops its entities first), then stops.

use std::time::Duration;

use banter_actors::account::Accounts;
use banter_actors::directory::{Directory, DirectoryMessage};
use banter_actors::room::Rooms;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::watch;
use tracing::{error, info};

/// How long a graceful stop waits for the directories and their entities.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The root actor of a node.
pub struct Root;

/// What the root starts from.
pub struct RootArgs {
    /// The room directory's entity factory.
    pub rooms: Rooms,
    /// The users' actors' directory's entity factory (`None` while uploads are off).
    pub accounts: Option<Accounts>,
    /// Receives the reason when a directory dies outside a shutdown.
    pub failed: watch::Sender<Option<String>>,
}

/// The root's directories.
#[derive(Clone)]
pub struct Directories {
    /// Of rooms.
    pub rooms: ActorRef<DirectoryMessage<Rooms>>,
    /// Of users' actors, while uploads are on (a connected user's sessions are in the gateway's
    /// users table instead).
    pub accounts: Option<ActorRef<DirectoryMessage<Accounts>>>,
}

/// The root's state: its children and whether it is stopping.
pub struct RootState {
    directories: Directories,
    failed: watch::Sender<Option<String>>,
    stopping: bool,
}

/// Messages of the root.
pub enum RootMessage {
    /// Returns the directories.
    Directories(ractor::RpcReplyPort<Directories>),
    /// Stops the directories, waits for them, then stops the root; replies when done.
    Shutdown(ractor::RpcReplyPort<()>),
}

// Local only, like every actor message but the cluster router's (see `banter_actors`' `messages`).
impl ractor::Message for RootMessage {}

impl Actor for Root {
    type Msg = RootMessage;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let (rooms, _) =
            Actor::spawn_linked(None, Directory::new(args.rooms), (), myself.get_cell()).await?;
        let accounts = match args.accounts {
            Some(accounts) => Some(
                Actor::spawn_linked(None, Directory::new(accounts), (), myself.get_cell())
                    .await?
                    .0,
            ),
            None => None,
        };
        Ok(RootState {
            directories: Directories { rooms, accounts },
            failed: args.failed,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: RootMessage,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMessage::Directories(reply) => {
                let _ = reply.send(state.directories.clone());
            }
            RootMessage::Shutdown(reply) => self.on_shutdown(myself, state, reply).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let why = match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                format!("the {} failed: {err}", state.name(&cell))
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => format!(
                "the {} stopped ({})",
                state.name(&cell),
                reason.as_deref().unwrap_or("no reason")
            ),
            _ => return Ok(()),
        };
        self.on_child_gone(myself, state, why);
        Ok(())
    }
}

impl Root {
    async fn on_shutdown(
        &self,
        myself: ActorRef<RootMessage>,
        state: &mut RootState,
        reply: ractor::RpcReplyPort<()>,
    ) {
        state.stopping = true;
        myself
            .stop_children_and_wait(Some("node stopping".into()), Some(STOP_WAIT))
            .await;
        info!("actors stopped");
        let _ = reply.send(());
        myself.stop(None);
    }

    fn on_child_gone(&self, myself: ActorRef<RootMessage>, state: &mut RootState, why: String) {
        if state.stopping {
            return;
        }
        error!(reason = %why, "an actor directory died: the node stops");
        state.stopping = true;
        let _ = state.failed.send(Some(why));
        myself.stop_children(Some("a sibling directory died".into()));
        myself.stop(None);
    }
}

impl RootState {
    fn name(&self, cell: &ractor::ActorCell) -> String {
        if cell.get_id() == self.directories.rooms.get_id() {
            "room directory".into()
        } else if self
            .directories
            .accounts
            .as_ref()
            .is_some_and(|a| a.get_id() == cell.get_id())
        {
            "directory of users' actors".into()
        } else {
            format!("actor {}", cell.get_id())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use banter_actors::account::AccountPorts;
    use banter_actors::ports::{Clock, Journal, Ports, Store, SystemClock};
    use banter_actors::room::RoomConfig;

    use super::*;

    async fn start() -> (
        tempfile::TempDir,
        ActorRef<RootMessage>,
        Directories,
        watch::Receiver<Option<String>>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("banter.db");
        let store: Arc<dyn Store> = Arc::new(
            banter_store::SqliteStore::open(path.to_str().expect("utf-8 path"))
                .await
                .expect("store"),
        );
        let journal: Arc<dyn Journal> =
            Arc::new(banter_store::LocalJournal::start(store.clone(), 64, 64));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let blobs = banter_media::LocalBlobs::open(dir.path().join("blobs")).expect("blobs");
        let accounts = crate::app::accounts(
            &banter_media::MediaConfig::default(),
            AccountPorts {
                store: store.clone(),
                blobs: Arc::new(blobs),
                clock: clock.clone(),
                inspections: Arc::new(tokio::sync::Semaphore::new(1)),
            },
        );
        let ports = Ports {
            ownership: Arc::new(banter_actors::ports::SingleNode),
            spans: Arc::new(banter_actors::trace::NoSpans),
            store,
            journal,
            clock,
        };
        let idle = Duration::from_secs(60);
        let rooms = Rooms {
            ports,
            config: RoomConfig {
                ring_size: 8,
                idle_timeout: idle,
                typing_interval: Duration::from_secs(1),
                max_sessions_per_user: 32,
            },
        };
        let (failed, failures) = watch::channel(None);
        let args = RootArgs {
            rooms,
            accounts: Some(accounts),
            failed,
        };
        let (root, _) = Actor::spawn(None, Root, args).await.expect("root");
        let dirs = ractor::call!(root, RootMessage::Directories).expect("directories");
        (dir, root, dirs, failures)
    }

    #[tokio::test]
    async fn a_dead_directory_is_reported_and_stops_the_root() {
        for (kill_rooms, named) in [(true, "room directory"), (false, "users' actors")] {
            let (_dir, root, dirs, mut failures) = start().await;
            if kill_rooms {
                dirs.rooms.kill();
            } else {
                dirs.accounts.expect("uploads on").kill();
            }
            let reason =
                tokio::time::timeout(Duration::from_secs(5), failures.wait_for(Option::is_some))
                    .await
                    .expect("reported in time")
                    .expect("channel open")
                    .clone()
                    .expect("a reason");
            assert!(reason.contains(named), "{reason}");
            tokio::time::timeout(Duration::from_secs(5), root.wait(None))
                .await
                .expect("the root stops")
                .expect("wait");
        }
    }

    #[tokio::test]
    async fn a_shutdown_stops_the_directories_without_a_failure() {
        let (_dir, root, dirs, failures) = start().await;
        ractor::call!(root, RootMessage::Shutdown).expect("shutdown answered");
        let accounts = dirs.accounts.expect("uploads on").get_cell();
        for dir in [dirs.rooms.get_cell(), accounts] {
            tokio::time::timeout(Duration::from_secs(5), dir.wait(None))
                .await
                .expect("stopped")
                .expect("wait");
        }
        tokio::time::timeout(Duration::from_secs(5), root.wait(None))
            .await
            .expect("the root stops")
            .expect("wait");
        assert!(failures.borrow().is_none(), "a shutdown is no failure");
    }
}
