//! The `[media]` section: which blob store, and what an upload may be.

use serde::{Deserialize, Serialize};

/// Which blob store holds uploads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A folder under the data directory; the node signs and serves its own upload and download
    /// routes (`/api/blobs`). A single node only.
    #[default]
    Local,
    /// An S3 bucket (MinIO or any S3 endpoint): browsers upload with a presigned POST policy and
    /// download with presigned GETs.
    S3,
}

/// The `[media]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// `local` or `s3`. Default: `local`.
    pub kind: MediaKind,
    /// Largest upload, in bytes: the grant checks the declared size and the store refuses a
    /// larger file. Default: 26214400 (25 MiB).
    pub max_upload_bytes: u64,
    /// Content types an upload may declare. Default: PNG, JPEG, GIF and WebP images, PDF, plain
    /// text, MP4 video, MP3 and Ogg audio.
    pub allowed_types: Vec<String>,
    /// Seconds an upload form is good for (at most 900: S3 servers refuse older POST policies).
    /// Default: 600.
    pub upload_ttl_secs: u64,
    /// Seconds a download URL is good for. Default: 300.
    pub download_ttl_secs: u64,
    /// Uploads a user may be granted per minute. Default: 30.
    pub uploads_per_minute: u32,
    /// Bytes a user's uploads may hold in all (granted and not yet cleaned up included). Default:
    /// 1073741824 (1 GiB).
    pub quota_bytes: u64,
    /// Seconds after which a grant never attached to a message is deleted with its object.
    /// Default: 86400.
    pub unattached_ttl_secs: u64,
    /// Seconds between two sweeps of such grants. Default: 600.
    pub sweep_interval_secs: u64,
    /// Largest image an attachment may be, in pixels (width × height), against decompression
    /// bombs. Default: 40000000.
    pub max_image_pixels: u64,
    /// The local folder's settings (`kind = "local"`).
    pub local: LocalConfig,
    /// The S3 bucket's settings (`kind = "s3"`).
    pub s3: S3Config,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            kind: MediaKind::Local,
            max_upload_bytes: 25 * 1024 * 1024,
            allowed_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
                "video/mp4",
                "audio/mpeg",
                "audio/ogg",
            ]
            .map(String::from)
            .to_vec(),
            upload_ttl_secs: 600,
            download_ttl_secs: 300,
            uploads_per_minute: 30,
            quota_bytes: 1 << 30,
            unattached_ttl_secs: 86_400,
            sweep_interval_secs: 600,
            max_image_pixels: 40_000_000,
            local: LocalConfig::default(),
            s3: S3Config::default(),
        }
    }
}

/// The `[media.local]` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// The folder; empty: `blobs` under the node's data directory. Default: empty.
    pub dir: String,
}

/// The `[media.s3]` section. Credentials come from here or, when empty, from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The endpoint the node talks to, e.g. `http://minio:9000`. Default: `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The endpoint browsers reach, which signed forms and URLs name (a signature covers the
    /// host); empty: `endpoint`. Default: empty.
    pub public_endpoint: String,
    /// The bucket. Default: `banter`.
    pub bucket: String,
    /// The region signatures are scoped to. Default: `us-east-1`.
    pub region: String,
    /// Path-style URLs (`endpoint/bucket/key`, as MinIO expects) rather than virtual-hosted ones.
    /// Default: true.
    pub path_style: bool,
    /// Access key id; empty: `AWS_ACCESS_KEY_ID`. Default: empty.
    pub access_key_id: String,
    /// Secret access key; empty: `AWS_SECRET_ACCESS_KEY`. Default: empty.
    pub secret_access_key: String,
    /// Creates the bucket at start-up when it is missing. Default: true.
    pub create_bucket: bool,
    /// Origins whose pages may upload to and read from the bucket (the web app's, e.g.
    /// `https://chat.example.com`): the node sets the bucket's CORS rules for them at start-up.
    /// Empty: left as they are. MinIO has no bucket CORS API (its `MINIO_API_CORS_ALLOW_ORIGIN`
    /// setting applies instead): there the node logs that it could not. Default: empty.
    pub cors_origins: Vec<String>,
    /// The account that must own the bucket for the CORS request (S3's
    /// `x-amz-expected-bucket-owner`); empty: sent empty. Default: empty.
    pub expected_bucket_owner: String,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            public_endpoint: String::new(),
            bucket: "banter".into(),
            region: "us-east-1".into(),
            path_style: true,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            create_bucket: true,
            cors_origins: Vec::new(),
            expected_bucket_owner: String::new(),
        }
    }
}
