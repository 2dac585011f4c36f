//! The source supervisor: one per node, it runs the configured sources whose shard this node
//! serves. Every second it looks at each source: it resolves the source in the store (created with
//! its user on first sight), and starts its actor, linked, when this node serves the source's shard
//! and it is not running. A source whose shard went elsewhere stops by itself (its own check); one
//! that crashed is started again at the next look, so at most once a second.

use std::collections::HashMap;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::warn;

use super::{IngestSource, SourceArgs, SourceDeps, SourceMessage, SourceSpec};
use crate::ports::Source;

/// The username of a source's user: `feed.<name>` (registration refuses the `feed.` prefix).
pub fn source_username(name: &str) -> String {
    format!("feed.{name}")
}

/// Messages of a [`SourceSupervisor`].
pub enum SupervisorMessage {
    /// Looks at every source.
    Check,
    /// Returns the names of the sources running on this node.
    Running(ractor::RpcReplyPort<Vec<String>>),
}

impl ractor::Message for SupervisorMessage {}

/// The supervisor (see the module doc).
pub struct SourceSupervisor;

/// Arguments of a [`SourceSupervisor`].
pub struct SupervisorArgs {
    /// The configured sources.
    pub specs: Vec<SourceSpec>,
    /// What their actors need.
    pub deps: SourceDeps,
    /// Time between two looks.
    pub check_every: Duration,
}

/// State of a [`SourceSupervisor`].
pub struct SupervisorState {
    specs: Vec<SourceSpec>,
    deps: SourceDeps,
    sources: HashMap<String, Source>,
    running: HashMap<String, ActorRef<SourceMessage>>,
    names: HashMap<ActorId, String>,
}

impl Actor for SourceSupervisor {
    type Msg = SupervisorMessage;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMessage>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        myself.send_interval(args.check_every, || SupervisorMessage::Check);
        let _ = myself.cast(SupervisorMessage::Check);
        Ok(SupervisorState {
            specs: args.specs,
            deps: args.deps,
            sources: HashMap::new(),
            running: HashMap::new(),
            names: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMessage>,
        message: SupervisorMessage,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::Check => state.on_check(&myself).await,
            SupervisorMessage::Running(reply) => {
                let mut names: Vec<String> = state.running.keys().cloned().collect();
                names.sort();
                let _ = reply.send(names);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMessage>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => state.forget(cell.get_id()),
            SupervisionEvent::ActorFailed(cell, error) => {
                let id = cell.get_id();
                warn!(source = ?state.names.get(&id), %error, "ingest source crashed; it starts again");
                state.forget(id);
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupervisorState {
    fn forget(&mut self, id: ActorId) {
        if let Some(name) = self.names.remove(&id) {
            self.running.remove(&name);
        }
    }

    async fn on_check(&mut self, myself: &ActorRef<SupervisorMessage>) {
        for spec in self.specs.clone() {
            if self.running.contains_key(&spec.name) {
                continue;
            }
            let source = match self.sources.get(&spec.name) {
                Some(s) => s.clone(),
                None => {
                    let now = self.deps.ports.clock.now_ms();
                    let username = source_username(&spec.name);
                    match self
                        .deps
                        .ports
                        .store
                        .ensure_source(&spec.name, &username, &spec.name, now)
                        .await
                    {
                        Ok(s) => {
                            self.sources.insert(spec.name.clone(), s.clone());
                            s
                        }
                        Err(e) => {
                            warn!(source = %spec.name, error = %e, "cannot load the source; trying again");
                            continue;
                        }
                    }
                }
            };
            if self
                .deps
                .ports
                .ownership
                .serving_source(source.id)
                .is_none()
            {
                continue;
            }
            let args = SourceArgs {
                source,
                spec: spec.clone(),
                deps: self.deps.clone(),
            };
            match Actor::spawn_linked(None, IngestSource, args, myself.get_cell()).await {
                Ok((actor, _)) => {
                    self.names.insert(actor.get_id(), spec.name.clone());
                    self.running.insert(spec.name.clone(), actor);
                }
                Err(e) => {
                    warn!(source = %spec.name, error = %e, "ingest source did not start; trying again")
                }
            }
        }
    }
}
