//! How the gateway reaches users' actors. A single node's are [`LocalAccounts`], over its
//! directory of users' actors.

use std::time::Duration;

use async_trait::async_trait;
use ractor::ActorRef;
use uuid::Uuid;

use super::{
    AccountMessage, Accounts, AttachError, Download, DownloadError, UploadError, UploadGrant,
    UploadRequest, UploadRules,
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

    /// Asks `user`'s actor, a member of `room`, for a URL of attachment `upload` of that room.
    async fn download(
        &self,
        user: UserId,
        room: RoomId,
        upload: Uuid,
    ) -> Result<Download, DownloadError>;

    /// Asks `user`'s actor to make `upload` (or none) its avatar.
    async fn set_avatar(
        &self,
        user: UserId,
        upload: Option<Uuid>,
    ) -> Result<Option<Attachment>, AttachError>;

    /// Asks `user`'s actor for a URL of `of`'s avatar.
    async fn avatar_url(&self, user: UserId, of: UserId) -> Result<Download, DownloadError>;

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

    /// Sends `user`'s actor the message `ask` makes around a reply port and waits (at most
    /// [`ACCOUNT_WAIT`]) for the answer; `unavailable` makes the error when none comes.
    async fn ask<T: Send + 'static, E>(
        &self,
        user: UserId,
        ask: impl FnOnce(ractor::RpcReplyPort<Result<T, E>>) -> AccountMessage,
        unavailable: impl Fn(&str) -> E,
    ) -> Result<T, E>
    where
        E: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .directory
            .cast(DirectoryMessage::Route(user, ask(tx.into())))
            .is_err()
        {
            return Err(unavailable("the node is stopping"));
        }
        match tokio::time::timeout(ACCOUNT_WAIT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(unavailable("the user's actor stopped")),
            Err(_) => Err(unavailable("the user's actor did not answer")),
        }
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
        let ask = |reply| AccountMessage::GrantUpload {
            purpose,
            request,
            reply,
        };
        self.ask(user, ask, |why| UploadError::Unavailable(why.into()))
            .await
    }

    async fn attach(
        &self,
        user: UserId,
        room: RoomId,
        uploads: Vec<Uuid>,
    ) -> Result<Vec<Attachment>, AttachError> {
        let ask = |reply| AccountMessage::Attach {
            room,
            uploads,
            reply,
        };
        self.ask(user, ask, |why| AttachError::Unavailable(why.into()))
            .await
    }

    async fn download(
        &self,
        user: UserId,
        room: RoomId,
        upload: Uuid,
    ) -> Result<Download, DownloadError> {
        let ask = |reply| AccountMessage::Download {
            room,
            upload,
            reply,
        };
        self.ask(user, ask, |why| DownloadError::Unavailable(why.into()))
            .await
    }

    async fn set_avatar(
        &self,
        user: UserId,
        upload: Option<Uuid>,
    ) -> Result<Option<Attachment>, AttachError> {
        let ask = |reply| AccountMessage::SetAvatar { upload, reply };
        self.ask(user, ask, |why| AttachError::Unavailable(why.into()))
            .await
    }

    async fn avatar_url(&self, user: UserId, of: UserId) -> Result<Download, DownloadError> {
        let ask = |reply| AccountMessage::AvatarUrl { of, reply };
        self.ask(user, ask, |why| DownloadError::Unavailable(why.into()))
            .await
    }

    fn rules(&self) -> &UploadRules {
        &self.rules
    }
}
