//! The blob store on S3 or MinIO.
//!
//! Two clients, each for what it does best: object_store (`AmazonS3`) reads, deletes and signs
//! GET URLs; rust-s3 signs POST policies, which object_store cannot (a presigned PUT cannot cap
//! the size: object_store does not sign `Content-Length`), and creates the bucket. Neither is
//! ever on a message's path: the node signs a form when a grant is asked, and reads an object
//! when an attachment is checked.
//!
//! Signatures cover the host, so forms and URLs are signed for `public_endpoint`, the address
//! browsers reach, while the node's own requests go to `endpoint`.

use std::time::Duration;

use async_trait::async_trait;
use banter_actors::ports::{BlobError, BlobKey, Blobs, UploadForm, UploadPolicy};
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{ObjectStoreExt, PutPayload};
use s3::creds::Credentials;
use s3::{Bucket, BucketConfiguration, PostPolicy, PostPolicyField, PostPolicyValue, Region};
use tracing::{info, warn};

use crate::config::S3Config;

/// The longest an S3 POST policy may be good for: S3 servers refuse a form whose signing date
/// is older than 15 minutes, whatever its policy's expiry says.
pub const MAX_FORM_TTL: Duration = Duration::from_secs(900);

/// Why the S3 store could not start.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// A setting is missing or malformed.
    #[error("[media.s3] {0}")]
    Config(String),
    /// The bucket could not be created or reached.
    #[error("[media.s3] bucket {bucket} at {endpoint}: {reason}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// An S3 bucket as the blob store.
pub struct S3Blobs {
    /// Reads and deletes, at `endpoint`.
    store: AmazonS3,
    /// Signs GET URLs for `public_endpoint`.
    signer: AmazonS3,
    /// Signs POST policies for `public_endpoint`.
    forms: Box<Bucket>,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs").finish_non_exhaustive()
    }
}

impl S3Blobs {
    /// Connects to the bucket `config` names, creating it when asked and missing.
    pub async fn open(config: &S3Config) -> Result<S3Blobs, S3Error> {
        let endpoint = config.endpoint.trim().trim_end_matches('/').to_owned();
        let public = match config.public_endpoint.trim() {
            "" => endpoint.clone(),
            p => p.trim_end_matches('/').to_owned(),
        };
        let from_env = |value: &str, var: &str| match value {
            "" => std::env::var(var).ok().filter(|v| !v.is_empty()),
            v => Some(v.to_owned()),
        };
        let access = from_env(&config.access_key_id, "AWS_ACCESS_KEY_ID")
            .ok_or_else(|| S3Error::Config("no access_key_id (nor AWS_ACCESS_KEY_ID)".into()))?;
        let secret =
            from_env(&config.secret_access_key, "AWS_SECRET_ACCESS_KEY").ok_or_else(|| {
                S3Error::Config("no secret_access_key (nor AWS_SECRET_ACCESS_KEY)".into())
            })?;
        let client = |at: &str| {
            AmazonS3Builder::new()
                .with_endpoint(at)
                .with_bucket_name(&config.bucket)
                .with_region(&config.region)
                .with_access_key_id(&access)
                .with_secret_access_key(&secret)
                .with_allow_http(at.starts_with("http://"))
                .with_virtual_hosted_style_request(!config.path_style)
                .build()
                .map_err(|e| S3Error::Config(format!("{at}: {e}")))
        };
        let (store, signer) = (client(&endpoint)?, client(&public)?);
        let credentials = Credentials::new(Some(&access), Some(&secret), None, None, None)
            .map_err(|e| S3Error::Config(e.to_string()))?;
        let region = |at: &str| Region::Custom {
            region: config.region.clone(),
            endpoint: at.to_owned(),
        };
        let bucket = |at: &str| {
            Bucket::new(&config.bucket, region(at), credentials.clone())
                .map(|b| {
                    if config.path_style {
                        b.with_path_style()
                    } else {
                        b
                    }
                })
                .map_err(|e| S3Error::Config(e.to_string()))
        };
        let forms = bucket(&public)?;
        let blobs = S3Blobs {
            store,
            signer,
            forms,
        };
        let failed = |reason: String| S3Error::Bucket {
            bucket: config.bucket.clone(),
            endpoint: endpoint.clone(),
            reason,
        };
        if config.create_bucket && !blobs.bucket_exists().await.map_err(failed)? {
            let created = if config.path_style {
                Bucket::create_with_path_style(
                    &config.bucket,
                    region(&endpoint),
                    credentials.clone(),
                    BucketConfiguration::default(),
                )
                .await
            } else {
                Bucket::create(
                    &config.bucket,
                    region(&endpoint),
                    credentials.clone(),
                    BucketConfiguration::default(),
                )
                .await
            }
            .map_err(|e| failed(e.to_string()))?;
            // 409: created meanwhile by another node.
            if !matches!(created.response_code, 200 | 409) {
                return Err(failed(format!(
                    "create: {} {}",
                    created.response_code, created.response_text
                )));
            }
            info!(bucket = %config.bucket, "blob store: bucket created");
        }
        if !config.cors_origins.is_empty() {
            let cors = cors_rules(&config.cors_origins);
            let set = bucket(&endpoint)?
                .put_bucket_cors(&config.expected_bucket_owner, &cors)
                .await;
            match set {
                Ok(r) if (200..300).contains(&r.status_code()) => {
                    info!(bucket = %config.bucket, origins = ?config.cors_origins, "blob store: bucket CORS set");
                }
                Ok(r) => warn!(
                    bucket = %config.bucket,
                    status = r.status_code(),
                    answer = %String::from_utf8_lossy(r.as_slice()).chars().take(300).collect::<String>(),
                    "blob store: the bucket's CORS rules could not be set (MinIO takes \
                     MINIO_API_CORS_ALLOW_ORIGIN instead); browsers of other origins cannot upload"
                ),
                Err(e) => {
                    warn!(bucket = %config.bucket, error = %e, "blob store: the bucket's CORS rules could not be set")
                }
            }
        }
        Ok(blobs)
    }

    /// Whether the bucket answers (a missing object in it is fine).
    async fn bucket_exists(&self) -> Result<bool, String> {
        match self.store.head(&Path::from(".banter-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) if e.to_string().contains("NoSuchBucket") => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Stores `bytes` under `key` (for tests and tools: browsers upload through forms).
    pub async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        self.store
            .put(&Path::from(key.as_str()), PutPayload::from_bytes(bytes))
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

/// The bucket's CORS rules for pages of `origins`: they post upload forms (`POST`) and read
/// objects through signed URLs (`GET`, `HEAD`), with any request header; the answer's `ETag`
/// is readable; a preflight is cached for an hour.
fn cors_rules(origins: &[String]) -> s3::serde_types::CorsConfiguration {
    let methods = ["POST", "GET", "HEAD"].map(String::from).to_vec();
    s3::serde_types::CorsConfiguration::new(vec![s3::serde_types::CorsRule::new(
        Some(vec!["*".into()]),
        methods,
        origins.to_vec(),
        Some(vec!["ETag".into()]),
        Some("banter-uploads".into()),
        Some(3600),
    )])
}

fn unavailable(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        e => BlobError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn upload_form(&self, policy: &UploadPolicy) -> Result<UploadForm, BlobError> {
        let ttl = policy.expires_in.min(MAX_FORM_TTL).as_secs().max(1);
        let max = u32::try_from(policy.max_bytes).map_err(|_| {
            BlobError::Invalid(format!(
                "{} bytes: a form allows at most 4 GiB",
                policy.max_bytes
            ))
        })?;
        let invalid = |e: s3::error::S3Error| BlobError::Invalid(e.to_string());
        let form = PostPolicy::new(ttl as u32)
            .condition(
                PostPolicyField::Key,
                PostPolicyValue::Exact(policy.key.as_str().to_owned().into()),
            )
            .map_err(invalid)?
            .condition(
                PostPolicyField::ContentLengthRange,
                PostPolicyValue::Range(1, max),
            )
            .map_err(invalid)?
            .condition(
                PostPolicyField::ContentType,
                PostPolicyValue::Exact(policy.content_type.clone().into()),
            )
            .map_err(invalid)?
            .condition(
                PostPolicyField::SuccessActionStatus,
                PostPolicyValue::Exact("201".into()),
            )
            .map_err(invalid)?;
        let post = self
            .forms
            .presign_post(form)
            .await
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        // Every signed field (the policy, its signature, and each exact condition); the range is
        // a condition only, never a field.
        let mut fields: Vec<(String, String)> = post.fields.into_iter().collect();
        fields.sort();
        Ok(UploadForm {
            url: post.url,
            fields,
        })
    }

    async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<String, BlobError> {
        self.signer
            .signed_url(Method::GET, &Path::from(key.as_str()), expires_in)
            .await
            .map(|url| url.to_string())
            .map_err(unavailable)
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        match self.store.head(&Path::from(key.as_str())).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn read(&self, key: &BlobKey, max_bytes: u64) -> Result<Bytes, BlobError> {
        let got = self
            .store
            .get(&Path::from(key.as_str()))
            .await
            .map_err(unavailable)?;
        if got.meta.size > max_bytes {
            return Err(BlobError::TooLarge(got.meta.size));
        }
        got.bytes().await.map_err(unavailable)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&Path::from(key.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cors_rules_let_the_apps_origins_post_forms_and_read() {
        let origins = ["https://chat.example.com".to_owned()];
        let xml = super::cors_rules(&origins).to_string();
        for part in [
            "<AllowedOrigin>https://chat.example.com</AllowedOrigin>",
            "<AllowedMethod>POST</AllowedMethod>",
            "<AllowedMethod>GET</AllowedMethod>",
            "<AllowedMethod>HEAD</AllowedMethod>",
            "<AllowedHeader>*</AllowedHeader>",
            "<ExposeHeader>ETag</ExposeHeader>",
            "<MaxAgeSeconds>3600</MaxAgeSeconds>",
        ] {
            assert!(xml.contains(part), "{part} in {xml}");
        }
    }
}
