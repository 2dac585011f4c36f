//! How the gateway reaches users' actors. A single node's are [`LocalAccounts`], over its
//! directory of users' actors.

use std::time::Duration;

use async_trait::async_trait;
use ractor::ActorRef;
use uuid::Uuid;

use super::{
    AccountMessage, Accounts, AttachError, UploadError, UploadGrant, UploadRequest, UploadRules,
};
use crate::directory::DirectoryMessage;
use crate::model::{Attachment, RoomId, UserId};
use crate::ports::UploadPurpose;

/// How long a request waits for a user's actor (its activation included).
pub const ACCOUNT_WAIT: Duration = Duration::from_secs(10);

/// How the gateway reaches users' actors.
#[async_trait]
pub trait AccountRoutes: Send + Sync + 'static {
    /// Asks `user`'s actor for an upload grant.
    async fn grant_upload(
        &self,
        user: UserId,
        purpose: UploadPurpose,
        request: UploadRequest,
    ) -> Result<UploadGrant, UploadError>;

    /// Asks `user`'s actor to check `uploads` for a message in `room` (and mark them used).
    async fn attach(
        &self,
        user: UserId,
        room: RoomId,
        uploads: Vec<Uuid>,
    ) -> Result<Vec<Attachment>, AttachError>;

    /// What an upload may be, as the users' actors check it (for the API's documentation).
    fn rules(&self) -> &UploadRules;
}

/// The users' actors of this node's directory.
#[derive(Clone)]
pub struct LocalAccounts {
    directory: ActorRef<DirectoryMessage<Accounts>>,
    rules: UploadRules,
}

impl LocalAccounts {
    /// Routes through `directory`, whose actors check `rules`.
    pub fn new(
        directory: ActorRef<DirectoryMessage<Accounts>>,
        rules: UploadRules,
    ) -> LocalAccounts {
        LocalAccounts { directory, rules }
    }
}

#[async_trait]
impl AccountRoutes for LocalAccounts {
    async fn grant_upload(
        &self,
        user: UserId,
        purpose: UploadPurpose,
        request: UploadRequest,
    ) -> Result<UploadGrant, UploadError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = AccountMessage::GrantUpload {
            purpose,
            request,
            reply: tx.into(),
        };
        self.directory
            .cast(DirectoryMessage::Route(user, msg))
            .map_err(|_| UploadError::Unavailable("the node is stopping".into()))?;
        match tokio::time::timeout(ACCOUNT_WAIT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(UploadError::Unavailable("the user's actor stopped".into())),
            Err(_) => Err(UploadError::Unavailable(
                "the user's actor did not answer".into(),
            )),
        }
    }
    async fn attach(
        &self,
        user: UserId,
        room: RoomId,
        uploads: Vec<Uuid>,
    ) -> Result<Vec<Attachment>, AttachError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let msg = AccountMessage::Attach {
            room,
            uploads,
            reply: tx.into(),
        };
        self.directory
            .cast(DirectoryMessage::Route(user, msg))
            .map_err(|_| AttachError::Unavailable("the node is stopping".into()))?;
        match tokio::time::timeout(ACCOUNT_WAIT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(AttachError::Unavailable("the user's actor stopped".into())),
            Err(_) => Err(AttachError::Unavailable(
                "the user's actor did not answer".into(),
            )),
        }
    }

    fn rules(&self) -> &UploadRules {
        &self.rules
    }
}
