//! What the transport tests share: the node in the test process, the peer process, raw frames.
//!
//! ractor's actor registry and process groups are per process, and ractor_cluster numbers a node
//! server's sessions from 0, so two nodes in one process would see each other's actors as their own
//! and mirror peers under colliding ids. Each test therefore runs one node here ([`Local`]) against
//! peers in their own processes ([`Peer`], the `banter-cluster-peer` binary), and the tests of one
//! binary take turns ([`exclusive`]).

#![allow(dead_code, unreachable_pub)]

pub mod frames;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use banter_cluster::router::router_of;
use banter_cluster::{
    ClusterNode, Handler, NodeConfig, NodeEvent, NodeEventKind, Router, RouterHandle,
    RouterMessage, Wire,
};
use banter_proto::v1::{Envelope, envelope};
use ractor::ActorRef;
use ractor_cluster::NodeId;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, MutexGuard, broadcast, mpsc};

/// The cookie of the test cluster.
pub const COOKIE: &str = "banter-test-cookie";
/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

static TURN: Mutex<()> = Mutex::const_new(());
static PANICS: AtomicUsize = AtomicUsize::new(0);
static COUNT_PANICS: Once = Once::new();

/// Takes this binary's turn to run a node (see the module doc), and counts panics from then on.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    let turn = TURN.lock().await;
    COUNT_PANICS.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::Relaxed);
            default_hook(info);
        }));
    });
    PANICS.store(0, Ordering::Relaxed);
    turn
}

/// Panics anywhere in this process since [`exclusive`] (ractor catches an actor's panic, so only
/// this hook sees one).
pub fn panics() -> usize {
    PANICS.load(Ordering::Relaxed)
}

/// A handler that drops what it gets and answers with an empty envelope.
pub struct Sink;

impl Handler for Sink {
    fn deliver(&self, _envelope: Envelope) {}

    fn ask(&self, _envelope: Envelope) -> Envelope {
        Envelope::default()
    }
}

/// A probe envelope of `len` bytes.
pub fn probe(len: usize) -> Envelope {
    Envelope {
        body: Some(envelope::Body::Probe(vec![0x5a; len].into())),
        ..Envelope::default()
    }
}

/// The node of the test process, with its router.
pub struct Local {
    pub node: ClusterNode,
    pub router: RouterHandle,
    pub events: broadcast::Receiver<NodeEvent>,
}

impl Local {
    /// Starts a node named `name` with `config` adjusted by `tune`.
    pub async fn start(name: &str, tune: impl FnOnce(&mut NodeConfig)) -> Local {
        let mut config = NodeConfig::new(name, COOKIE);
        tune(&mut config);
        let node = ClusterNode::start(config).await.expect("node starts");
        let events = node.subscribe();
        let router = Router::spawn(name, Arc::new(Sink))
            .await
            .expect("router starts");
        Local {
            node,
            router,
            events,
        }
    }

    /// Waits for the next event of `kind` (skipping others); fails the test after [`WAIT`].
    pub async fn event(&mut self, kind: NodeEventKind) -> NodeEvent {
        self.event_where(|event| event.kind == kind).await
    }

    /// Waits for the next event that `wanted` accepts; fails the test after [`WAIT`].
    pub async fn event_where(&mut self, wanted: impl Fn(&NodeEvent) -> bool) -> NodeEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(event)) if wanted(&event) => return event,
                Ok(Ok(_)) => {}
                Ok(Err(error)) => panic!("node events: {error}"),
                Err(_) => panic!("no such node event within {WAIT:?}"),
            }
        }
    }

    /// The events already received, without waiting.
    pub fn drain_events(&mut self) -> Vec<NodeEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }

    /// Stops the router, then the node, and waits for both.
    pub async fn stop(self) {
        self.router.actor.stop(None);
        let _ = self.router.join.await;
        self.node.stop().await;
    }
}

/// Returns the router of the peer behind session `node_id`; fails the test after [`WAIT`].
pub async fn router_on(node_id: NodeId) -> ActorRef<RouterMessage> {
    let started = Instant::now();
    loop {
        if let Some(router) = router_of(node_id) {
            return router;
        }
        assert!(started.elapsed() < WAIT, "no router for session {node_id}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asks `router` with `envelope` and returns the answer; fails the test on anything else.
pub async fn ask(router: &ActorRef<RouterMessage>, envelope: Envelope) -> Envelope {
    let answer = ractor::call_t!(
        router,
        RouterMessage::Ask,
        WAIT.as_millis() as u64,
        Wire::from(envelope)
    );
    match answer {
        Ok(wire) => wire.into_result().expect("the answer decodes"),
        Err(error) => panic!("ask failed: {error}"),
    }
}

/// A `banter-cluster-peer` process.
pub struct Peer {
    child: Child,
    /// Where it accepts peers.
    pub addr: SocketAddr,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Peer {
    /// Starts a peer named `name` with `cookie` and extra arguments; returns once it listens.
    pub async fn start(name: &str, cookie: &str, args: &[&str]) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_banter-cluster-peer"))
            .args(["--name", name, "--cookie", cookie])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the peer starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = Peer {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            lines,
        };
        let listening = peer.line_starting("listening ").await;
        peer.addr = listening["listening ".len()..]
            .parse()
            .expect("the peer prints its address");
        peer
    }

    /// Waits for the next output line starting with `prefix` (skipping others).
    pub async fn line_starting(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.starts_with(prefix) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the peer exited before printing '{prefix}'"),
                Err(_) => panic!("the peer printed no '{prefix}' within {WAIT:?}"),
            }
        }
    }

    /// Freezes the peer with SIGSTOP; returns once every one of its threads has stopped (the signal
    /// takes effect asynchronously, and a thread that has not stopped yet may still answer).
    pub async fn freeze(&self) {
        self.signal("STOP");
        let pid = self.child.id().expect("the peer runs");
        let started = Instant::now();
        while !all_threads_stopped(pid) {
            assert!(started.elapsed() < WAIT, "the peer did not stop");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Resumes a frozen peer with SIGCONT.
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the peer runs").to_string();
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Kills the peer with SIGKILL and waits for it to be gone.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }

    /// Lets the peer stop by itself (its stdin closes) and waits for it.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}

/// A change of the router group, as ractor's process groups report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// Routers joined (their ids).
    Join(Vec<ractor::ActorId>),
    /// Routers left (their ids).
    Leave(Vec<ractor::ActorId>),
}

/// Watches the router group ([`banter_cluster::router::ROUTER_SCOPE`]) and reports its changes.
pub struct GroupWatch {
    pub changes: mpsc::UnboundedReceiver<GroupChange>,
    actor: ActorRef<NoMessage>,
}

/// The message of an actor that only watches.
pub struct NoMessage;

impl ractor::Message for NoMessage {}

struct Watcher(mpsc::UnboundedSender<GroupChange>);

impl ractor::Actor for Watcher {
    type Msg = NoMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<NoMessage>,
        _args: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        ractor::pg::monitor_scope(
            banter_cluster::router::ROUTER_SCOPE.to_owned(),
            myself.get_cell(),
        );
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<NoMessage>,
        event: ractor::SupervisionEvent,
        _state: &mut (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        use ractor::pg::GroupChangeMessage;
        let ids = |cells: Vec<ractor::ActorCell>| cells.iter().map(|c| c.get_id()).collect();
        if let ractor::SupervisionEvent::ProcessGroupChanged(change) = event {
            let _ = self.0.send(match change {
                GroupChangeMessage::Join(_, _, cells) => GroupChange::Join(ids(cells)),
                GroupChangeMessage::Leave(_, _, cells) => GroupChange::Leave(ids(cells)),
            });
        }
        Ok(())
    }
}

impl GroupWatch {
    /// Starts watching.
    pub async fn start() -> GroupWatch {
        let (tx, changes) = mpsc::unbounded_channel();
        let (actor, _) = ractor::Actor::spawn(None, Watcher(tx), ())
            .await
            .expect("the watcher starts");
        GroupWatch { changes, actor }
    }

    /// Waits for the next change; fails the test after [`WAIT`].
    pub async fn next(&mut self) -> GroupChange {
        tokio::time::timeout(WAIT, self.changes.recv())
            .await
            .expect("a router group change in time")
            .expect("the watcher runs")
    }

    /// Stops watching.
    pub fn stop(self) {
        self.actor.stop(None);
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in `/proc/PID/task/TID/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
    })
}
