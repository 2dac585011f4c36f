//! Avatars: a user sets one through the same grant flow as attachments (an upload granted as an
//! avatar, which must be an image), and anyone who can see the user gets a short-lived URL of it.
//!
//! Setting one checks the upload as an attachment is checked (the user's, granted as an avatar,
//! uploaded, of its declared size and type by its bytes, within the pixel limit), marks it used,
//! records it on the user, and deletes the avatar it replaces (row and object). The user's actor
//! runs one change of avatar at a time, so two cannot both see the same former avatar.

use std::time::Duration;

use tracing::warn;
use uuid::Uuid;

use super::attach::check_upload;
use super::{AccountConfig, AccountPorts, AttachError, Download, DownloadError};
use crate::model::{Attachment, UserId};
use crate::ports::{BlobKey, UploadPurpose};

/// Makes upload `upload` (or none) `user`'s avatar at `now_ms`; returns what it is.
pub(super) async fn set_avatar(
    ports: &AccountPorts,
    config: &AccountConfig,
    user: UserId,
    upload: Option<Uuid>,
    now_ms: i64,
) -> Result<Option<Attachment>, AttachError> {
    let unavailable = |e: &dyn std::fmt::Display| AttachError::Unavailable(e.to_string());
    let avatar = match upload {
        Some(id) => {
            let avatar = check_upload(ports, config, user, UploadPurpose::Avatar, id).await?;
            if !ports
                .store
                .mark_upload_used(id, now_ms)
                .await
                .map_err(|e| unavailable(&e))?
            {
                return Err(AttachError::AlreadyUsed(id));
            }
            Some(avatar)
        }
        None => None,
    };
    let former = ports
        .store
        .set_avatar(user, avatar.as_ref().map(|a| a.id))
        .await
        .map_err(|e| unavailable(&e))?;
    if let Some(former) = former.filter(|f| Some(*f) != upload) {
        discard(ports, former).await;
    }
    Ok(avatar)
}

/// Deletes a replaced avatar's object, then its row; a failure leaves it behind, logged.
async fn discard(ports: &AccountPorts, id: Uuid) {
    let upload = match ports.store.upload(id).await {
        Ok(Some(upload)) => upload,
        Ok(None) => return,
        Err(e) => {
            warn!(upload = %id, error = %e, "a replaced avatar is left behind");
            return;
        }
    };
    let deleted = match BlobKey::new(upload.key.clone()) {
        Ok(key) => ports.blobs.delete(&key).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match deleted {
        Ok(()) => {
            if let Err(e) = ports.store.delete_upload(id).await {
                warn!(upload = %id, error = %e, "a replaced avatar's row is left behind");
            }
        }
        Err(error) => {
            warn!(upload = %id, key = %upload.key, %error, "a replaced avatar is left behind")
        }
    }
}

/// Signs a URL of `of`'s avatar, good for `ttl` from `now_ms`.
pub(super) async fn avatar_url(
    ports: &AccountPorts,
    of: UserId,
    ttl: Duration,
    now_ms: i64,
) -> Result<Download, DownloadError> {
    let unavailable = |e: &dyn std::fmt::Display| DownloadError::Unavailable(e.to_string());
    let user = match ports.store.user_by_id(of).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(DownloadError::NoAvatar(of)),
        Err(e) => return Err(unavailable(&e)),
    };
    let Some(id) = user.avatar_ref.and_then(|r| Uuid::parse_str(&r).ok()) else {
        return Err(DownloadError::NoAvatar(of));
    };
    let upload = match ports.store.upload(id).await {
        Ok(Some(upload)) => upload,
        // Replaced meanwhile: the caller asks again and finds the new one.
        Ok(None) => return Err(DownloadError::NoAvatar(of)),
        Err(e) => return Err(unavailable(&e)),
    };
    super::download::sign(ports, &upload.key, ttl, now_ms).await
}
