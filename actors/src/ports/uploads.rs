//! The uploads a user's actor granted, as the store keeps them: what each may hold, where its
//! object is, and, once checked, what it turned out to be (an attachment).

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;
use crate::model::{RoomId, UserId};

/// What an upload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UploadPurpose {
    /// A file to attach to a message in this room.
    Attachment(RoomId),
    /// The user's avatar.
    Avatar,
}

/// What a checked upload turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFacts {
    /// Its size, in bytes.
    pub size: u64,
    /// Its content type, as its bytes show it (equal to the declared one).
    pub content_type: String,
    /// Width and height in pixels, for an image.
    pub dimensions: Option<(u32, u32)>,
    /// A small preview (JPEG), for an image.
    pub thumbnail: Option<Vec<u8>>,
}

/// An upload a user was granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// Its id (a UUIDv7, so ids sort by time).
    pub id: Uuid,
    /// Who may upload it and attach it.
    pub user_id: UserId,
    /// What it is for.
    pub purpose: UploadPurpose,
    /// Its object's key in the blob store, made by the server.
    pub key: String,
    /// The client's file name, cleaned; metadata only, never a path.
    pub filename: String,
    /// The content type the client declared.
    pub content_type: String,
    /// The size the client declared, in bytes (what the quota counts).
    pub declared_size: u64,
    /// When it was granted (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// What it turned out to be, once checked.
    pub facts: Option<UploadFacts>,
    /// When it was attached to a message or set as an avatar (ms), if it was.
    pub used_at_ms: Option<i64>,
}

/// The uploads of every user. One contract suite runs against every implementation (with the
/// [`Store`](super::Store) of which it is a part).
#[async_trait]
pub trait Uploads: Send + Sync + 'static {
    /// Stores a new grant; [`super::StoreError::Conflict`] when its id exists.
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()>;
    /// Returns the upload with this id.
    async fn upload(&self, id: Uuid) -> StoreResult<Option<Upload>>;
    /// Returns the bytes `user`'s uploads hold: the declared size of each kept upload.
    async fn upload_usage(&self, user: UserId) -> StoreResult<u64>;
    /// Records what the upload turned out to be; [`super::StoreError::NotFound`] when it is gone.
    async fn set_upload_facts(&self, id: Uuid, facts: &UploadFacts) -> StoreResult<()>;
    /// Marks the upload used at `at_ms` (attached or set as avatar), unless it was already;
    /// returns whether it was marked now.
    async fn mark_upload_used(&self, id: Uuid, at_ms: i64) -> StoreResult<bool>;
    /// Makes upload `avatar` (or none) `user`'s avatar; returns the former one, if any.
    /// [`super::StoreError::NotFound`] when there is no such user.
    async fn set_avatar(&self, user: UserId, avatar: Option<Uuid>) -> StoreResult<Option<Uuid>>;
    /// Deletes the upload, used or not (a replaced avatar); returns whether it existed.
    async fn delete_upload(&self, id: Uuid) -> StoreResult<bool>;
    /// Returns up to `limit` uploads that nothing keeps (no stored message holds them, no user
    /// has them as avatar) and that were either never used and granted before `before_ms`, or
    /// used (claimed by an attach whose message never came to be stored) before `before_ms`;
    /// oldest first.
    async fn stale_uploads(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<Upload>>;
    /// Deletes the upload unless something keeps it or it was used at or after `before_ms` (an
    /// attach in flight: housekeeping and an attach cannot both win); returns whether it was
    /// deleted.
    async fn delete_stale_upload(&self, id: Uuid, before_ms: i64) -> StoreResult<bool>;
}
