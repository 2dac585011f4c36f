//! The user's actor: the one place in the cluster that holds what a user may still do with
//! uploads — the grants it hands out, the rate at which it hands them, and the storage quota its
//! uploads count against. A placed entity like a room (a [`crate::directory::Directory`] spawns
//! it on demand, it passivates when idle), never held by a connection: an idle user costs
//! nothing.
//!
//! A grant ([`AccountMessage::GrantUpload`]) is checked in the handler (type, size, rate, quota),
//! which reserves its declared size at once so that concurrent grants cannot pass the quota
//! together; storing the grant and signing its upload form run in a task that answers the caller
//! and tells the actor when it failed (the reservation is then released). Attaching uploads to a
//! message ([`AccountMessage::Attach`]) checks each object (`attach`, `inspect`) in a task too: the
//! handler never waits on the store or the blob store.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::directory::DirectoryMessage;
use crate::model::{Attachment, RoomId, UserId};
use crate::ports::{BlobKey, Blobs, Clock, Store, Upload, UploadForm, UploadPolicy, UploadPurpose};

mod attach;
mod avatar;
mod download;
mod entity;
mod inspect;
mod routes;
mod rules;

pub use attach::{AttachError, MAX_ATTACHMENTS};
pub use download::{Download, DownloadError};
pub use entity::Accounts;
pub use inspect::{InspectError, THUMBNAIL_SIDE, inspect};
pub use routes::{ACCOUNT_WAIT, AccountRoutes, LocalAccounts};
pub use rules::{MAX_FILENAME_BYTES, MAX_REQUEST_FILENAME_CHARS, clean_filename};

/// What an upload may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRules {
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Content types an upload may declare (lowercase).
    pub allowed_types: Arc<[String]>,
}

/// Settings of users' actors.
#[derive(Clone, Debug)]
pub struct AccountConfig {
    /// What an upload may be.
    pub rules: UploadRules,
    /// How long an upload form is good for.
    pub upload_ttl: Duration,
    /// How long a download URL is good for.
    pub download_ttl: Duration,
    /// Grants per minute.
    pub uploads_per_minute: NonZeroU32,
    /// Bytes a user's uploads may hold in all.
    pub quota_bytes: u64,
    /// Largest image an attachment may be, in pixels.
    pub max_image_pixels: u64,
    /// How long an actor with nothing to do lives before it passivates.
    pub idle_timeout: Duration,
}

/// What a client asks to upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRequest {
    /// The file's name on the client (kept, cleaned, as metadata only).
    pub filename: String,
    /// The content type it declares.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A granted upload: where and how to send the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadGrant {
    /// The upload's id, to name it in an attachment.
    pub upload_id: Uuid,
    /// The form to post the file with.
    pub form: UploadForm,
    /// When the form stops working (ms since the Unix epoch).
    pub expires_at_ms: i64,
    /// The largest file the store takes through the form.
    pub max_bytes: u64,
}

/// Why an upload was not granted. Each has a stable code ([`UploadError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum UploadError {
    /// The content type is not one uploads may have.
    #[error("content type {0:?} is not allowed")]
    TypeNotAllowed(String),
    /// Larger than uploads may be (the limit).
    #[error("files may be at most {0} bytes")]
    TooLarge(u64),
    /// Nothing to upload.
    #[error("the file is empty")]
    Empty,
    /// The file name is longer than [`MAX_REQUEST_FILENAME_CHARS`].
    #[error("file names may be at most {MAX_REQUEST_FILENAME_CHARS} characters")]
    FilenameTooLong,
    /// Too many grants lately; the wait before the next.
    #[error("too many uploads: try again in {}s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The user's uploads would hold more than the quota (the quota).
    #[error("the storage quota of {0} bytes is used up")]
    QuotaExceeded(u64),
    /// The store or the blob store failed; worth retrying later.
    #[error("uploads are unavailable: {0}")]
    Unavailable(String),
}

impl UploadError {
    /// The error's stable code.
    pub fn code(&self) -> &'static str {
        match self {
            UploadError::TypeNotAllowed(_) => "type_not_allowed",
            UploadError::TooLarge(_) => "too_large",
            UploadError::Empty => "empty_file",
            UploadError::FilenameTooLong => "filename_too_long",
            UploadError::RateLimited(_) => "rate_limited",
            UploadError::QuotaExceeded(_) => "quota_exceeded",
            UploadError::Unavailable(_) => "unavailable",
        }
    }
}

/// Messages of a user's actor.
pub enum AccountMessage {
    /// Grants an upload for `purpose` if the rules allow it.
    GrantUpload {
        /// What the upload is for.
        purpose: UploadPurpose,
        /// What the client asks.
        request: UploadRequest,
        /// The grant, or why not.
        reply: RpcReplyPort<Result<UploadGrant, UploadError>>,
    },
    /// Checks `uploads` for a message of this user in `room` and marks them used.
    Attach {
        /// The message's room.
        room: RoomId,
        /// The uploads, in the message's order.
        uploads: Vec<Uuid>,
        /// The attachments, or why not.
        reply: RpcReplyPort<Result<Vec<Attachment>, AttachError>>,
    },
    /// Signs a URL of attachment `upload` of `room` for this user, a member of the room.
    Download {
        /// The room the attachment is in.
        room: RoomId,
        /// The attachment's upload id.
        upload: Uuid,
        /// The URL, or why not.
        reply: RpcReplyPort<Result<Download, DownloadError>>,
    },
    /// Makes `upload` (or none) this user's avatar.
    SetAvatar {
        /// The upload, granted as an avatar; `None` removes the avatar.
        upload: Option<Uuid>,
        /// What the avatar is, or why not.
        reply: RpcReplyPort<Result<Option<Attachment>, AttachError>>,
    },
    /// Signs a URL of user `of`'s avatar for this user.
    AvatarUrl {
        /// Whose avatar.
        of: UserId,
        /// The URL, or why not.
        reply: RpcReplyPort<Result<Download, DownloadError>>,
    },
    /// A grant's task failed: its reserved bytes are free again.
    GrantFailed {
        /// The bytes it had reserved.
        declared_size: u64,
    },
    /// Passivates once idle long enough.
    IdleCheck,
    /// Stops (the directory's answer to a passivation request).
    Stop,
}

/// What a user's actor needs from outside.
#[derive(Clone)]
pub struct AccountPorts {
    /// Where grants are kept.
    pub store: Arc<dyn Store>,
    /// Where uploads go.
    pub blobs: Arc<dyn Blobs>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Permits to read and inspect an object, shared by the node's users' actors: at most this
    /// many objects are in memory at once.
    pub inspections: Arc<tokio::sync::Semaphore>,
}

/// Arguments of a user's actor.
pub struct AccountArguments {
    /// Whose actor.
    pub user: UserId,
    /// Bytes its uploads hold, read from the store at activation.
    pub used_bytes: u64,
    /// Its ports.
    pub ports: AccountPorts,
    /// Its settings.
    pub config: AccountConfig,
    /// The directory that spawned it.
    pub directory: ActorRef<DirectoryMessage<Accounts>>,
}

/// State of a user's actor.
pub struct AccountState {
    user: UserId,
    used_bytes: u64,
    rate: DefaultDirectRateLimiter,
    ports: AccountPorts,
    config: AccountConfig,
    directory: ActorRef<DirectoryMessage<Accounts>>,
    last_activity: Instant,
    passivation_requested: bool,
    /// Held by the task changing the avatar: one change at a time.
    avatar_turn: Arc<tokio::sync::Mutex<()>>,
}

/// The user's actor.
pub struct Account;

impl Account {
    fn on_grant_upload(
        myself: &ActorRef<AccountMessage>,
        state: &mut AccountState,
        purpose: UploadPurpose,
        request: UploadRequest,
        reply: RpcReplyPort<Result<UploadGrant, UploadError>>,
    ) {
        state.last_activity = Instant::now();
        let content_type = match Self::check(state, purpose, &request) {
            Ok(content_type) => content_type,
            Err(refused) => {
                let _ = reply.send(Err(refused));
                return;
            }
        };
        state.used_bytes += request.size;
        let id = Uuid::now_v7();
        let now_ms = state.ports.clock.now_ms();
        let folder = match purpose {
            UploadPurpose::Attachment(room) => format!("rooms/{}/{}", room.0, state.user.0),
            UploadPurpose::Avatar => format!("avatars/{}", state.user.0),
        };
        let upload = Upload {
            id,
            user_id: state.user,
            purpose,
            key: format!("{folder}/{id}"),
            filename: clean_filename(&request.filename),
            content_type,
            declared_size: request.size,
            created_at_ms: now_ms,
            facts: None,
            used_at_ms: None,
        };
        let (ports, config, me) = (state.ports.clone(), state.config.clone(), myself.clone());
        tokio::spawn(async move {
            let granted = grant(&ports, &config, &upload, now_ms).await;
            if granted.is_err() {
                let _ = me.cast(AccountMessage::GrantFailed {
                    declared_size: upload.declared_size,
                });
            }
            let _ = reply.send(granted);
        });
    }

    /// Checks a request against the rules; returns its content type as it will be kept.
    fn check(
        state: &AccountState,
        purpose: UploadPurpose,
        request: &UploadRequest,
    ) -> Result<String, UploadError> {
        // Exactly as listed (lowercase, as browsers send them): what the API documents.
        let content_type = request.content_type.clone();
        let avatar_ok = purpose != UploadPurpose::Avatar || content_type.starts_with("image/");
        if !avatar_ok || !state.config.rules.allowed_types.contains(&content_type) {
            return Err(UploadError::TypeNotAllowed(request.content_type.clone()));
        }
        if request.size == 0 {
            return Err(UploadError::Empty);
        }
        if request.filename.chars().count() > MAX_REQUEST_FILENAME_CHARS {
            return Err(UploadError::FilenameTooLong);
        }
        if request.size > state.config.rules.max_upload_bytes {
            return Err(UploadError::TooLarge(state.config.rules.max_upload_bytes));
        }
        if state.used_bytes.saturating_add(request.size) > state.config.quota_bytes {
            return Err(UploadError::QuotaExceeded(state.config.quota_bytes));
        }
        state.rate.check().map_err(|not_until| {
            use governor::clock::Clock as _;
            let now = governor::clock::DefaultClock::default().now();
            UploadError::RateLimited(not_until.wait_time_from(now))
        })?;
        Ok(content_type)
    }

    fn on_attach(
        state: &mut AccountState,
        room: RoomId,
        uploads: Vec<Uuid>,
        reply: RpcReplyPort<Result<Vec<Attachment>, AttachError>>,
    ) {
        state.last_activity = Instant::now();
        if let Err(e) = attach::check_count(&uploads) {
            let _ = reply.send(Err(e));
            return;
        }
        let (ports, config, user) = (state.ports.clone(), state.config.clone(), state.user);
        let now_ms = ports.clock.now_ms();
        tokio::spawn(async move {
            let attached = attach::attach_all(&ports, &config, user, room, &uploads, now_ms).await;
            let _ = reply.send(attached);
        });
    }

    fn on_download(
        state: &mut AccountState,
        room: RoomId,
        upload: Uuid,
        reply: RpcReplyPort<Result<Download, DownloadError>>,
    ) {
        state.last_activity = Instant::now();
        let (ports, user, ttl) = (state.ports.clone(), state.user, state.config.download_ttl);
        let now_ms = ports.clock.now_ms();
        tokio::spawn(async move {
            let signed = download::download_url(&ports, user, room, upload, ttl, now_ms).await;
            let _ = reply.send(signed);
        });
    }

    fn on_set_avatar(
        state: &mut AccountState,
        upload: Option<Uuid>,
        reply: RpcReplyPort<Result<Option<Attachment>, AttachError>>,
    ) {
        state.last_activity = Instant::now();
        let (ports, config, user) = (state.ports.clone(), state.config.clone(), state.user);
        let turn = state.avatar_turn.clone();
        tokio::spawn(async move {
            let _turn = turn.lock().await;
            let now_ms = ports.clock.now_ms();
            let _ = reply.send(avatar::set_avatar(&ports, &config, user, upload, now_ms).await);
        });
    }

    fn on_avatar_url(
        state: &mut AccountState,
        of: UserId,
        reply: RpcReplyPort<Result<Download, DownloadError>>,
    ) {
        state.last_activity = Instant::now();
        let (ports, ttl) = (state.ports.clone(), state.config.download_ttl);
        let now_ms = ports.clock.now_ms();
        tokio::spawn(async move {
            let _ = reply.send(avatar::avatar_url(&ports, of, ttl, now_ms).await);
        });
    }

    fn on_grant_failed(state: &mut AccountState, declared_size: u64) {
        state.used_bytes = state.used_bytes.saturating_sub(declared_size);
    }

    fn on_idle_check(myself: &ActorRef<AccountMessage>, state: &mut AccountState) {
        if !state.passivation_requested
            && state.last_activity.elapsed() >= state.config.idle_timeout
        {
            state.passivation_requested = true;
            let _ = state
                .directory
                .cast(DirectoryMessage::Passivate(state.user, myself.clone()));
        }
    }
}

/// Stores the grant and signs its form.
async fn grant(
    ports: &AccountPorts,
    config: &AccountConfig,
    upload: &Upload,
    now_ms: i64,
) -> Result<UploadGrant, UploadError> {
    let key =
        BlobKey::new(upload.key.clone()).map_err(|e| UploadError::Unavailable(e.to_string()))?;
    ports
        .store
        .insert_upload(upload)
        .await
        .map_err(|e| UploadError::Unavailable(e.to_string()))?;
    let policy = UploadPolicy {
        key,
        content_type: upload.content_type.clone(),
        max_bytes: upload.declared_size,
        expires_in: config.upload_ttl,
    };
    let form = match ports.blobs.upload_form(&policy).await {
        Ok(form) => form,
        Err(e) => {
            warn!(upload = %upload.id, error = %e, "upload form not signed");
            let _ = ports
                .store
                .delete_stale_upload(upload.id, upload.created_at_ms)
                .await;
            return Err(UploadError::Unavailable(e.to_string()));
        }
    };
    let ttl_ms = i64::try_from(config.upload_ttl.as_millis()).unwrap_or(i64::MAX);
    Ok(UploadGrant {
        upload_id: upload.id,
        form,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
        max_bytes: upload.declared_size,
    })
}

impl Actor for Account {
    type Msg = AccountMessage;
    type State = AccountState;
    type Arguments = AccountArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<AccountMessage>,
        args: AccountArguments,
    ) -> Result<AccountState, ActorProcessingErr> {
        let period = (args.config.idle_timeout / 4).max(Duration::from_millis(50));
        myself.send_interval(period, || AccountMessage::IdleCheck);
        debug!(
            user_id = args.user.0,
            used = args.used_bytes,
            "user's actor active"
        );
        Ok(AccountState {
            user: args.user,
            used_bytes: args.used_bytes,
            rate: RateLimiter::direct(Quota::per_minute(args.config.uploads_per_minute)),
            ports: args.ports,
            config: args.config,
            directory: args.directory,
            last_activity: Instant::now(),
            passivation_requested: false,
            avatar_turn: Arc::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AccountMessage>,
        message: AccountMessage,
        state: &mut AccountState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AccountMessage::GrantUpload {
                purpose,
                request,
                reply,
            } => Self::on_grant_upload(&myself, state, purpose, request, reply),
            AccountMessage::Attach {
                room,
                uploads,
                reply,
            } => Self::on_attach(state, room, uploads, reply),
            AccountMessage::Download {
                room,
                upload,
                reply,
            } => Self::on_download(state, room, upload, reply),
            AccountMessage::SetAvatar { upload, reply } => {
                Self::on_set_avatar(state, upload, reply);
            }
            AccountMessage::AvatarUrl { of, reply } => Self::on_avatar_url(state, of, reply),
            AccountMessage::GrantFailed { declared_size } => {
                Self::on_grant_failed(state, declared_size);
            }
            AccountMessage::IdleCheck => Self::on_idle_check(&myself, state),
            AccountMessage::Stop => myself.stop(None),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
