//! Banter's blob stores, behind the actors' [`Blobs`](banter_actors::ports::Blobs) port.
//!
//! - [`s3`]: [`S3Blobs`], an S3 bucket (MinIO or any S3 endpoint) for the full stack: browsers
//!   upload with presigned POST policies (the store refuses a file larger than the grant) and
//!   download with presigned GETs;
//! - [`local`]: [`LocalBlobs`], the embedded node's folder, whose forms and URLs the node signs
//!   and serves itself ([`local::routes`]);
//! - [`config`]: the `[media]` section; [`open`] makes the store it names;
//! - [`sweep`]: housekeeping, deleting grants never attached, with their objects.
//!
//! The bytes never pass through a room or a user's actor: actors sign forms and URLs, and read an
//! object only to check an attachment.

pub mod config;
pub mod local;
pub mod s3;
pub mod sweep;

use std::path::Path;
use std::sync::Arc;

use banter_actors::ports::Blobs;

pub use config::{MediaConfig, MediaKind};
pub use local::LocalBlobs;
pub use s3::S3Blobs;

/// Why the blob store could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The S3 store could not start.
    #[error(transparent)]
    S3(#[from] s3::S3Error),
    /// The local folder could not be opened.
    #[error("[media.local] {dir}: {error}")]
    Local {
        /// The folder.
        dir: String,
        /// Why.
        error: std::io::Error,
    },
}

/// A running blob store, with the HTTP routes it serves itself (the local folder's).
pub struct Media {
    /// The store.
    pub blobs: Arc<dyn Blobs>,
    /// The routes the node must serve for it, if any.
    pub routes: Option<axum::Router>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("routes", &self.routes.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens the store `config` names; a local folder defaults to `blobs` under `data_dir`.
pub async fn open(config: &MediaConfig, data_dir: &Path) -> Result<Media, MediaError> {
    match config.kind {
        MediaKind::S3 => Ok(Media {
            blobs: Arc::new(S3Blobs::open(&config.s3).await?),
            routes: None,
        }),
        MediaKind::Local => {
            let dir = match config.local.dir.trim() {
                "" => data_dir.join("blobs"),
                dir => dir.into(),
            };
            let blobs = LocalBlobs::open(&dir).map_err(|error| MediaError::Local {
                dir: dir.display().to_string(),
                error,
            })?;
            Ok(Media {
                routes: Some(local::routes(blobs.clone(), config.max_upload_bytes)),
                blobs: Arc::new(blobs),
            })
        }
    }
}
