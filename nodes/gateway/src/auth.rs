//! Tokens and passwords.
//!
//! # Tokens
//! Sessions are two JWTs signed with one Ed25519 key (`alg: EdDSA`, the key id in the `kid`
//! header): a short-lived **access** token for REST calls and STOMP `CONNECT`, and a long-lived
//! **refresh** token accepted only by `/api/auth/refresh`. The `typ` claim tells them apart, so
//! neither can stand in for the other; `jti` is a fresh UUID, which lets the store keep refresh
//! tokens single-use. `sid` names the session's refresh token chain: a login or a registration
//! starts one, each refresh carries it on, and both tokens of a session carry it, so a logout with
//! either token revokes the chain and a replayed refresh token revokes it too (see `Store::
//! rotate_refresh_token`).
//!
//! The key pair lives as PKCS#8 DER in `<data_dir>/keys/jwt-ed25519.pk8` (mode 0600), created on
//! first start, so tokens outlive a restart. `kid` is the first 16 hex digits of the SHA-256 of the
//! raw public key, and [`AuthKeys::jwks`] publishes that public key for external verifiers.
//!
//! [`AuthKeys::verify`] accepts EdDSA only (so `alg: none`, HMAC keyed with the public key and
//! every other algorithm are refused before any signature check), with no clock leeway, and
//! requires the node's `kid`, issuer and audience `banter`, an unexpired `exp` and the expected
//! `typ`.
//!
//! # Passwords
//! argon2id with the OWASP parameters (m = 19456 KiB, t = 2, p = 1, the argon2 crate's defaults),
//! a 16-byte salt from the OS RNG, stored as a PHC string ([`Passwords`]; `auth.password_memory_kib`
//! and `auth.password_iterations` change the cost of new hashes, for small machines and load tests).
//! Hashing takes tens of milliseconds and ~19 MiB, so it runs on tokio's blocking pool, at most
//! `auth.max_concurrent_hashes` at once: a request that finds them all busy waits up to
//! `auth.hash_wait_ms` for a turn, then fails with [`AuthError::Busy`] (503 `busy`), so a flood of
//! logins queues neither memory nor blocking threads. [`Passwords::verify_dummy`] spends the same
//! work when the username is unknown, so a login's timing does not tell whether an account exists.
//!
//! # Login limits
//! [`limits::LoginLimits`]: attempts per client address (behind trusted proxies, the address they
//! forwarded) and login attempts per account.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use banter_actors::model::UserId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

pub mod limits;
#[cfg(test)]
mod tests;

/// Value of the `iss` and `aud` claims of every token.
pub const ISSUER: &str = "banter";
/// Location of the signing key under the data directory.
pub const KEY_FILE: &str = "keys/jwt-ed25519.pk8";
/// Longest token [`AuthKeys::verify`] reads; ours are about 400 bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token, a signing key or a password hash was refused or could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token was given.
    #[error("missing token")]
    Missing,
    /// The token is not a well-formed JWT.
    #[error("invalid token: malformed")]
    Malformed,
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The signature does not verify with this node's key: forged, signed by another key, unknown
    /// `kid`, or an algorithm other than EdDSA (including `none`).
    #[error("invalid token signature")]
    BadSignature,
    /// An access token was given where a refresh token is expected, or the reverse.
    #[error("invalid token: wrong token type")]
    WrongType,
    /// The token is signed correctly but its claims are not acceptable.
    #[error("invalid token ({0})")]
    Invalid(String),
    /// The signing key file could not be read or written.
    #[error("cannot access signing key {path}")]
    KeyIo {
        /// The key file or its directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The signing key file does not hold an Ed25519 PKCS#8 key.
    #[error("signing key {path} is not an Ed25519 PKCS#8 key")]
    KeyFormat {
        /// The key file.
        path: PathBuf,
    },
    /// The crypto library could not generate a signing key.
    #[error("cannot generate a signing key")]
    KeyGeneration,
    /// Hashing a password failed (an argon2 error, or the blocking task died).
    #[error("password hashing failed ({0})")]
    Hash(String),
    /// Every password hashing slot stayed busy for `auth.hash_wait_ms`; worth retrying shortly.
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    /// A refresh token was presented again after it had been rotated: it was stolen, or a client
    /// replayed it. Its whole chain is revoked; the user must log in again.
    #[error("refresh token was already used; the session is revoked, log in again")]
    Reused,
}

impl AuthError {
    /// Returns the stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Expired => "token_expired",
            AuthError::Malformed
            | AuthError::BadSignature
            | AuthError::WrongType
            | AuthError::Invalid(_) => "invalid_token",
            AuthError::Reused => "refresh_token_reused",
            AuthError::Busy => "busy",
            AuthError::KeyIo { .. }
            | AuthError::KeyFormat { .. }
            | AuthError::KeyGeneration
            | AuthError::Hash(_) => "internal_error",
        }
    }
}

/// Kind of a token, carried in the `typ` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived; authenticates REST calls and STOMP sessions.
    Access,
    /// Long-lived and single-use; only buys a new session at `/api/auth/refresh`.
    Refresh,
}

/// Claims of a Banter token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id, in decimal.
    pub sub: String,
    /// Username at issue time.
    pub name: String,
    /// Access or refresh.
    pub typ: TokenType,
    /// Unique token id (UUIDv7).
    pub jti: String,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry time, seconds since the Unix epoch.
    pub exp: i64,
    /// Always `banter`.
    pub iss: String,
    /// Always `banter`.
    pub aud: String,
    /// Session: the refresh token chain both tokens belong to. Absent from tokens issued before
    /// chains existed (a refresh token's chain is then its own `jti`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    /// Returns the refresh token chain of the session: `sid`, or for a token issued before chains
    /// existed its own `jti`.
    pub fn chain(&self) -> &str {
        self.sid.as_deref().unwrap_or(&self.jti)
    }

    /// Returns the user id in `sub`; fails with [`AuthError::Invalid`] when it is not a number.
    pub fn user_id(&self) -> Result<UserId, AuthError> {
        self.sub
            .parse()
            .map(UserId)
            .map_err(|_| AuthError::Invalid("bad subject".to_owned()))
    }
}

/// A freshly issued pair of tokens.
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    /// The access JWT.
    pub access_token: String,
    /// The refresh JWT.
    pub refresh_token: String,
    /// `jti` of the refresh token, for the store to record and rotate.
    pub refresh_jti: String,
    /// Expiry of the refresh token, milliseconds since the Unix epoch.
    pub refresh_expires_at_ms: i64,
    /// The refresh token chain (`sid`) both tokens carry.
    pub chain: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

/// The node's token signing key, with what it takes to verify and publish it.
#[derive(Clone)]
pub struct AuthKeys {
    kid: String,
    public_key: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("AuthKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AuthKeys {
    /// Loads the key pair from `<data_dir>/keys/jwt-ed25519.pk8`, creating it (mode 0600) when
    /// absent.
    pub fn load_or_create(data_dir: &Path) -> Result<AuthKeys, AuthError> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(pkcs8) => return AuthKeys::from_pkcs8(&pkcs8).ok_or(AuthError::KeyFormat { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(AuthError::KeyIo { path, source }),
        }
        let pkcs8 = generate_pkcs8()?;
        let stored = write_new_key(&path, &pkcs8)?;
        tracing::info!(path = %path.display(), "token signing key created");
        AuthKeys::from_pkcs8(&stored).ok_or(AuthError::KeyFormat { path })
    }

    /// Returns a new in-memory key pair (for tests and throwaway nodes).
    ///
    /// # Panics
    /// Panics if the crypto library cannot generate a key, which only a broken RNG causes.
    pub fn generate() -> AuthKeys {
        generate_pkcs8()
            .ok()
            .and_then(|pkcs8| AuthKeys::from_pkcs8(&pkcs8))
            .expect("Ed25519 key generation failed")
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Option<AuthKeys> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).ok()?;
        let public_key = pair.public_key().as_ref().to_vec();
        let hash = digest(&SHA256, &public_key);
        let kid: String = hash.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let decoding =
            DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&public_key)).ok()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Some(AuthKeys {
            kid,
            public_key,
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding,
            validation,
        })
    }

    /// Returns the key id carried in the `kid` header of every token this node signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Issues an access and a refresh token for a user, as of `now_ms` (milliseconds since the
    /// epoch), starting a new refresh token chain.
    ///
    /// # Panics
    /// Panics only if signing with the validated key fails, which the crypto library never does.
    pub fn issue(
        &self,
        user_id: i64,
        username: &str,
        now_ms: i64,
        access_ttl_secs: u64,
        refresh_ttl_secs: u64,
    ) -> IssuedTokens {
        let chain = Uuid::now_v7().to_string();
        self.issue_in_chain(
            user_id,
            username,
            &chain,
            now_ms,
            access_ttl_secs,
            refresh_ttl_secs,
        )
    }

    /// Issues an access and a refresh token in an existing refresh token chain (a refresh).
    ///
    /// # Panics
    /// Panics only if signing with the validated key fails, which the crypto library never does.
    pub fn issue_in_chain(
        &self,
        user_id: i64,
        username: &str,
        chain: &str,
        now_ms: i64,
        access_ttl_secs: u64,
        refresh_ttl_secs: u64,
    ) -> IssuedTokens {
        let iat = now_ms.div_euclid(1000);
        let claims = |typ, ttl: u64| Claims {
            sub: user_id.to_string(),
            name: username.to_owned(),
            typ,
            jti: Uuid::now_v7().to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iss: ISSUER.to_owned(),
            aud: ISSUER.to_owned(),
            sid: Some(chain.to_owned()),
        };
        let access = claims(TokenType::Access, access_ttl_secs);
        let refresh = claims(TokenType::Refresh, refresh_ttl_secs);
        IssuedTokens {
            access_token: self.sign(&access),
            refresh_token: self.sign(&refresh),
            refresh_expires_at_ms: refresh.exp.saturating_mul(1000),
            refresh_jti: refresh.jti,
            chain: chain.to_owned(),
            expires_in: access_ttl_secs,
        }
    }

    fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("signing claims with a validated Ed25519 key cannot fail")
    }

    /// Verifies a token's signature and claims and returns the claims; `expected` is the token type
    /// the caller accepts. Expiry is checked against the system clock with no leeway.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return Err(AuthError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| unreadable_header(token))?;
        // Checked here too, though `decode` would refuse them, so a wrong key or algorithm is told
        // apart from a malformed token before any work is done.
        if header.alg != Algorithm::EdDSA || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(AuthError::BadSignature);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| map_jwt_error(e.into_kind()))?
            .claims;
        if claims.typ != expected {
            return Err(AuthError::WrongType);
        }
        claims.user_id()?;
        Ok(claims)
    }

    /// Returns the JSON Web Key Set of the public key, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(&self.public_key),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
    }
}

/// Classifies a token whose header jsonwebtoken cannot read: a readable JSON header naming an
/// algorithm it does not know (`none`, say) is a signature problem; anything else is malformed.
fn unreadable_header(token: &str) -> AuthError {
    let names_alg = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .is_some_and(|h| h.get("alg").is_some_and(serde_json::Value::is_string));
    if names_alg {
        AuthError::BadSignature
    } else {
        AuthError::Malformed
    }
}

fn map_jwt_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidToken | ErrorKind::Base64(_) => AuthError::Malformed,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".to_owned()),
        ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".to_owned()),
        ErrorKind::ImmatureSignature => AuthError::Invalid("not yet valid".to_owned()),
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Invalid(format!("missing {claim}")),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::Invalid(format!("bad {claim}")),
        // The signature verified, so these are claims this node signed but cannot read.
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            AuthError::Invalid("unreadable claims".to_owned())
        }
        other => AuthError::Invalid(format!("{other:?}").to_lowercase()),
    }
}

fn generate_pkcs8() -> Result<Vec<u8>, AuthError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| AuthError::KeyGeneration)
}

/// Writes a new key file without ever exposing a partial or world-readable one: the key goes to a
/// private temporary file that is then hard-linked into place, which fails if another process won
/// the race. Returns the key that ended up in the file, ours or the winner's.
fn write_new_key(path: &Path, pkcs8: &[u8]) -> Result<Vec<u8>, AuthError> {
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| AuthError::KeyIo { path: p, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_err(dir))?;

    let tmp = dir.join(format!(
        ".jwt-ed25519.{}.{}.tmp",
        std::process::id(),
        Uuid::now_v7()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(pkcs8)?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    // Best effort: a leftover temporary file is harmless and private.
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(pkcs8.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(io_err(path))
        }
        Err(source) => Err(AuthError::KeyIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Longest wait for a password hashing slot by default ([`Passwords::with_limits`]).
pub const DEFAULT_HASH_WAIT: Duration = Duration::from_secs(2);

/// Returns how many password hashes run at once by default: the number of CPUs, or 2 when it is
/// unknown.
pub fn default_max_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Password hashing with one set of argon2id parameters: hashes new passwords, checks stored ones
/// (whose own parameters are read from their PHC string, so changing the cost never locks anyone out)
/// and spends the same work on unknown usernames. At most a fixed number of hashes run at once (each
/// holds a permit while it runs on the blocking pool); a caller waits a bounded time for one. Cheap
/// to clone; clones share the permits.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    dummy: Arc<str>,
    permits: Arc<Semaphore>,
    max_wait: Duration,
}

impl Default for Passwords {
    /// The OWASP parameters: m = 19456 KiB, t = 2, p = 1.
    fn default() -> Self {
        Passwords::with_argon(Argon2::default()).expect("the default argon2 parameters hash")
    }
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", self.argon.params())
            .field("free_permits", &self.permits.available_permits())
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl Passwords {
    /// Argon2id with `memory_kib` KiB of memory and `iterations` passes, one lane, and the default
    /// limits. Fails when argon2 refuses the parameters (memory under 8 KiB, no iteration).
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Passwords, AuthError> {
        let params = argon2::Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| AuthError::Hash(format!("argon2 parameters: {e}")))?;
        Passwords::with_argon(Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// Returns these parameters with at most `max_concurrent` hashes at once (at least 1) and callers
    /// waiting at most `max_wait` for a turn. The permits are new, not shared with `self`'s clones.
    pub fn with_limits(self, max_concurrent: usize, max_wait: Duration) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            max_wait,
            ..self
        }
    }

    fn with_argon(argon: Argon2<'static>) -> Result<Passwords, AuthError> {
        // Fixed salt: the dummy is never compared with anything real, only its work counts. Without
        // it an unknown username would cost nothing, so failing to make it is an error.
        let dummy = argon
            .hash_password_with_salt(DUMMY_PASSWORD, b"banter-dummy-salt")
            .map_err(|e| AuthError::Hash(format!("dummy hash: {e}")))?
            .to_string();
        Ok(Passwords {
            argon,
            dummy: dummy.into(),
            permits: Arc::new(Semaphore::new(default_max_concurrent_hashes())),
            max_wait: DEFAULT_HASH_WAIT,
        })
    }

    /// Waits up to `max_wait` for a hashing slot.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, AuthError> {
        match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(AuthError::Hash(closed.to_string())),
            Err(_elapsed) => {
                tracing::warn!(wait = ?self.max_wait, "every password hashing slot is busy");
                Err(AuthError::Busy)
            }
        }
    }

    /// Runs `work` on the blocking pool once a slot is free; the slot is held until `work` ends,
    /// even if the caller stops waiting, so the count of running hashes never exceeds the limit.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = self.permit().await?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&argon)
        })
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))
    }

    /// Hashes a password with a random salt on the blocking pool; returns the PHC string to store.
    /// Fails with [`AuthError::Busy`] when no slot frees up in time.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.run(move |argon| {
            argon
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| AuthError::Hash(e.to_string()))
        })
        .await?
    }

    /// Tells whether `password` matches the stored PHC string `hash`; an unreadable hash never
    /// matches. Fails with [`AuthError::Busy`] when no slot frees up in time.
    pub async fn verify(&self, hash: String, password: String) -> Result<bool, AuthError> {
        self.run(move |argon| verify_blocking(argon, &hash, &password))
            .await
    }

    /// Spends the work of a password check against a fixed hash made with this instance's
    /// parameters, so that a login for an unknown username takes about as long as one with a wrong
    /// password. Returns whether `password` matched the dummy, which callers ignore (it shows tests
    /// that the check really ran). Fails with [`AuthError::Busy`] like [`Passwords::verify`].
    pub async fn verify_dummy(&self, password: String) -> Result<bool, AuthError> {
        let dummy = self.dummy.clone();
        self.run(move |argon| verify_blocking(argon, &dummy, &password))
            .await
    }

    /// Returns the dummy hash (for tests of its parameters).
    #[cfg(test)]
    fn dummy_hash(&self) -> &str {
        &self.dummy
    }
}

/// Password of the dummy hash; only tests ever present it.
const DUMMY_PASSWORD: &[u8] = b"banter-dummy-password";

fn verify_blocking(argon: &Argon2<'_>, hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash unreadable");
            false
        }
    }
}

/// Returns the token of an `Authorization: Bearer <token>` header value (the scheme is
/// case-insensitive), or `None` for any other scheme or an empty token.
pub fn bearer(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim();
    let well_formed = !token.is_empty() && !token.contains(char::is_whitespace);
    (scheme.eq_ignore_ascii_case("bearer") && well_formed).then_some(token)
}
