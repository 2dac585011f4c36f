//! The user's-actor entity kind: how the [`crate::directory::Directory`] of users' actors spawns
//! one (after reading what its uploads hold), stops it, and answers what it could not deliver.

use ractor::{Actor, ActorRef};

use super::{
    Account, AccountArguments, AccountConfig, AccountMessage, AccountPorts, AttachError,
    DownloadError, UploadError,
};
use crate::directory::{Entity, RouteError};
use crate::model::UserId;

/// The user's-actor entity kind.
pub struct Accounts {
    /// Ports handed to every user's actor.
    pub ports: AccountPorts,
    /// Settings handed to every user's actor.
    pub config: AccountConfig,
}

impl Entity for Accounts {
    type Key = UserId;
    type Msg = AccountMessage;

    fn spawn(
        &self,
        user: UserId,
        supervisor: ractor::ActorCell,
    ) -> futures::future::BoxFuture<'static, Result<ActorRef<AccountMessage>, RouteError>> {
        let (ports, config) = (self.ports.clone(), self.config.clone());
        Box::pin(async move {
            let used_bytes = ports
                .store
                .upload_usage(user)
                .await
                .map_err(|e| RouteError::Unavailable(e.to_string()))?;
            let args = AccountArguments {
                user,
                used_bytes,
                ports,
                config,
                directory: ActorRef::from(supervisor.clone()),
            };
            Actor::spawn_linked(None, Account, args, supervisor)
                .await
                .map(|(actor, _)| actor)
                .map_err(|e| RouteError::Unavailable(e.to_string()))
        })
    }

    fn stop_message(&self) -> AccountMessage {
        AccountMessage::Stop
    }

    fn undeliverable(&self, _user: UserId, msg: AccountMessage, error: RouteError) {
        match msg {
            AccountMessage::GrantUpload { reply, .. } => {
                let _ = reply.send(Err(UploadError::Unavailable(error.to_string())));
            }
            AccountMessage::Attach { reply, .. } => {
                let _ = reply.send(Err(AttachError::Unavailable(error.to_string())));
            }
            AccountMessage::Download { reply, .. } => {
                let _ = reply.send(Err(DownloadError::Unavailable(error.to_string())));
            }
            AccountMessage::SetAvatar { reply, .. } => {
                let _ = reply.send(Err(AttachError::Unavailable(error.to_string())));
            }
            AccountMessage::AvatarUrl { reply, .. } => {
                let _ = reply.send(Err(DownloadError::Unavailable(error.to_string())));
            }
            AccountMessage::GrantFailed { .. }
            | AccountMessage::IdleCheck
            | AccountMessage::Stop => {}
        }
    }
}
