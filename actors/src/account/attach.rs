//! Attaching uploads to a message: each must be the sender's, granted for this room, uploaded,
//! of the size declared, and of its declared type by its bytes (an image's pixels counted before
//! it is decoded, and a thumbnail made). Checked uploads are marked used, so that one is attached
//! once and housekeeping leaves it alone. Runs in a task off the user's actor; reading and
//! inspecting take a node-wide permit ([`super::AccountPorts::inspections`]), so the node holds at
//! most that many objects in memory at once.

use std::collections::HashSet;

use uuid::Uuid;

use super::{AccountConfig, AccountPorts, InspectError, inspect};
use crate::model::{Attachment, RoomId, UserId};
use crate::ports::{BlobError, BlobKey, UploadPurpose};

/// Attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// Why uploads could not be attached. Each has a stable code ([`AttachError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum AttachError {
    /// More than [`MAX_ATTACHMENTS`], or one named twice.
    #[error("a message carries at most {MAX_ATTACHMENTS} attachments, each once")]
    TooMany,
    /// No upload of the sender's has this id (someone else's is not told apart).
    #[error("no upload {0} of yours")]
    Unknown(Uuid),
    /// The upload was granted for another room, or as an avatar.
    #[error("upload {0} is not for this room")]
    WrongRoom(Uuid),
    /// The upload was granted as an attachment, not as an avatar.
    #[error("upload {0} was not granted as an avatar")]
    NotAnAvatar(Uuid),
    /// Nothing was uploaded under the grant.
    #[error("upload {0} has no file yet")]
    NotUploaded(Uuid),
    /// The file's size is not the declared one.
    #[error("upload {0} is {1} bytes, not the {2} declared")]
    SizeMismatch(Uuid, u64, u64),
    /// The file is not what it was declared to be.
    #[error("upload {0}: {1}")]
    Content(Uuid, InspectError),
    /// Already attached to a message (or set as an avatar).
    #[error("upload {0} is already attached")]
    AlreadyUsed(Uuid),
    /// The store or the blob store failed; worth retrying later.
    #[error("attachments are unavailable: {0}")]
    Unavailable(String),
}

impl AttachError {
    /// The error's stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AttachError::TooMany => "too_many_attachments",
            AttachError::Unknown(_) => "unknown_upload",
            AttachError::WrongRoom(_) => "wrong_room",
            AttachError::NotAnAvatar(_) => "not_an_avatar",
            AttachError::NotUploaded(_) => "not_uploaded",
            AttachError::SizeMismatch(..) => "size_mismatch",
            AttachError::Content(_, InspectError::Mismatch { .. }) => "type_mismatch",
            AttachError::Content(_, InspectError::TooManyPixels(..)) => "too_many_pixels",
            AttachError::Content(_, InspectError::Undecodable(_)) => "undecodable",
            AttachError::AlreadyUsed(_) => "already_attached",
            AttachError::Unavailable(_) => "unavailable",
        }
    }
}

/// Checks that `uploads` may be attached (at most [`MAX_ATTACHMENTS`], each once).
pub(super) fn check_count(uploads: &[Uuid]) -> Result<(), AttachError> {
    let distinct: HashSet<&Uuid> = uploads.iter().collect();
    if uploads.len() > MAX_ATTACHMENTS || distinct.len() != uploads.len() {
        return Err(AttachError::TooMany);
    }
    Ok(())
}

/// Checks each of `uploads` for `user`'s message in `room`, then marks them used at `now_ms`.
pub(super) async fn attach_all(
    ports: &AccountPorts,
    config: &AccountConfig,
    user: UserId,
    room: RoomId,
    uploads: &[Uuid],
    now_ms: i64,
) -> Result<Vec<Attachment>, AttachError> {
    let mut attachments = Vec::with_capacity(uploads.len());
    for &id in uploads {
        let purpose = UploadPurpose::Attachment(room);
        attachments.push(check_upload(ports, config, user, purpose, id).await?);
    }
    for attachment in &attachments {
        let marked = ports
            .store
            .mark_upload_used(attachment.id, now_ms)
            .await
            .map_err(|e| AttachError::Unavailable(e.to_string()))?;
        if !marked {
            return Err(AttachError::AlreadyUsed(attachment.id));
        }
    }
    Ok(attachments)
}

/// Checks upload `id` of `user` for `purpose` (granted for it, uploaded, of its declared size and
/// type, unused) and returns what it is; marks nothing.
pub(super) async fn check_upload(
    ports: &AccountPorts,
    config: &AccountConfig,
    user: UserId,
    purpose: UploadPurpose,
    id: Uuid,
) -> Result<Attachment, AttachError> {
    let unavailable = |e: &dyn std::fmt::Display| AttachError::Unavailable(e.to_string());
    let upload = match ports.store.upload(id).await {
        Ok(Some(upload)) if upload.user_id == user => upload,
        Ok(_) => return Err(AttachError::Unknown(id)),
        Err(e) => return Err(unavailable(&e)),
    };
    if upload.purpose != purpose {
        return Err(match purpose {
            UploadPurpose::Attachment(_) => AttachError::WrongRoom(id),
            UploadPurpose::Avatar => AttachError::NotAnAvatar(id),
        });
    }
    if upload.used_at_ms.is_some() {
        return Err(AttachError::AlreadyUsed(id));
    }
    let facts = match upload.facts {
        // Checked before (an attach that failed later): the object is the same.
        Some(facts) => facts,
        None => {
            let key = BlobKey::new(upload.key.clone()).map_err(|e| unavailable(&e))?;
            let _permit = ports
                .inspections
                .acquire()
                .await
                .map_err(|e| unavailable(&e))?;
            let bytes = match ports.blobs.read(&key, upload.declared_size).await {
                Ok(bytes) => bytes,
                Err(BlobError::NotFound) => return Err(AttachError::NotUploaded(id)),
                Err(BlobError::TooLarge(size)) => {
                    return Err(AttachError::SizeMismatch(id, size, upload.declared_size));
                }
                Err(e) => return Err(unavailable(&e)),
            };
            let size = bytes.len() as u64;
            if size != upload.declared_size {
                return Err(AttachError::SizeMismatch(id, size, upload.declared_size));
            }
            let declared = upload.content_type.clone();
            let max_pixels = config.max_image_pixels;
            let facts =
                tokio::task::spawn_blocking(move || inspect(&bytes, size, &declared, max_pixels))
                    .await
                    .map_err(|e| unavailable(&e))?
                    .map_err(|e| AttachError::Content(id, e))?;
            ports
                .store
                .set_upload_facts(id, &facts)
                .await
                .map_err(|e| unavailable(&e))?;
            facts
        }
    };
    Ok(Attachment {
        id,
        name: upload.filename,
        content_type: facts.content_type,
        size: facts.size,
        dimensions: facts.dimensions,
        thumbnail: facts.thumbnail.map(bytes::Bytes::from),
    })
}
