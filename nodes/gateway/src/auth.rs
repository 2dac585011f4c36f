//! Tokens and passwords.
//!
//! # Tokens
//! Sessions are two JWTs signed with an Ed25519 key (`alg: EdDSA`, the key id in the `kid`
//! header): a short-lived **access** token for REST calls and STOMP `CONNECT`, and a long-lived
//! **refresh** token accepted only by `/api/auth/refresh`. The `typ` claim tells them apart, so
//! neither can stand in for the other; `jti` is a fresh UUID, which lets the store keep refresh
//! tokens single-use. `sid` names the session's refresh token chain: a login or a registration
//! starts one, each refresh carries it on, and both tokens of a session carry it, so a logout with
//! either token revokes the chain and a replayed refresh token revokes it too (see `Store::
//! rotate_refresh_token`).
//!
//! # Signing keys
//! [`AuthKeys`] (in `keys`) is the node's view of the **key set** that the store keeps for every
//! node of a cluster (`Store::signing_keys`), so a token signed on one node verifies on all. Each
//! key has a generation; `schedule` ([`KeyPolicy`], from `auth.key_rotation_secs` and
//! `auth.key_refresh_secs`) says which key signs, which verify and when the next one is due:
//!
//! ```text
//! generation n     ══ signs ══════════════╪── verifies (max token ttl + lead) ──┤ deleted
//! generation n+1            published ─ lead ─╪══ signs ═══════════════ …
//!                           ▲ due: signs_from(n) + rotation − lead
//! ```
//! - The next generation is added by whichever node notices first that it is due, `lead` (3 ×
//!   `key_refresh_secs`) before it signs, so every node has loaded it before any token carries its
//!   kid; the generation is unique in the store, so nodes racing to rotate create one key and the
//!   losers reload.
//! - A key signs from its `signs_from_ms` until the next generation's; it keeps verifying (and
//!   stays in the JWKS) until the longest-lived token it signed has expired — refresh tokens too,
//!   so `max(access_ttl_secs, refresh_ttl_secs)` — plus the lead for clock skew; then any node
//!   deletes it.
//! - Each node keeps a snapshot of the set in memory, reloaded every `key_refresh_secs`
//!   ([`crate::housekeeping::refresh_keys`], which also rotates and deletes), and on a token whose
//!   `kid` it does not know, at most once every 5 s however many such tokens arrive. Verification
//!   reads the snapshot: no store access, no await, no lock held across one.
//! - Upgrade: when the store holds no key and `<data_dir>/keys/jwt-ed25519.pk8` (the single key of
//!   nodes before key sets) exists, it becomes generation 1, so the tokens it signed stay valid;
//!   without it a new key is generated. The file is left in place and read no more.
//!
//! `kid` is the first 16 hex digits of the SHA-256 of the raw public key.
//! [`AuthKeys::verify`] accepts EdDSA only (so `alg: none`, HMAC keyed with the public key and
//! every other algorithm are refused before any signature check), with no clock leeway, and
//! requires a `kid` of the set within its verify window, issuer and audience `banter`, an
//! unexpired `exp` and the expected `typ`.
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

use std::path::PathBuf;

use banter_actors::model::UserId;
use banter_actors::ports::StoreError;
use serde::{Deserialize, Serialize};

mod key;
mod keys;
pub mod limits;
mod passwords;
mod schedule;
#[cfg(test)]
mod tests;

pub use keys::{AuthKeys, MISS_RELOAD_EVERY_MS};
pub use passwords::{DEFAULT_HASH_WAIT, Passwords, default_max_concurrent_hashes};
pub use schedule::{KeyPolicy, PUBLISH_LEAD_REFRESHES};

/// Value of the `iss` and `aud` claims of every token.
pub const ISSUER: &str = "banter";
/// Location, under the data directory, of the signing key of nodes from before key sets: imported
/// into an empty store as generation 1.
pub const KEY_FILE: &str = "keys/jwt-ed25519.pk8";

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
    /// The signature does not verify with a key of the set: forged, signed by another key, unknown
    /// or retired `kid`, or an algorithm other than EdDSA (including `none`).
    #[error("invalid token signature")]
    BadSignature,
    /// An access token was given where a refresh token is expected, or the reverse.
    #[error("invalid token: wrong token type")]
    WrongType,
    /// The token is signed correctly but its claims are not acceptable.
    #[error("invalid token ({0})")]
    Invalid(String),
    /// The legacy signing key file could not be read.
    #[error("cannot access signing key {path}")]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The legacy signing key file does not hold an Ed25519 PKCS#8 key.
    #[error("signing key {path} is not an Ed25519 PKCS#8 key")]
    KeyFormat {
        /// The key file.
        path: PathBuf,
    },
    /// The crypto library could not generate a signing key.
    #[error("cannot generate a signing key")]
    KeyGeneration,
    /// The store could not list, add or delete signing keys.
    #[error("signing keys unavailable: {0}")]
    KeyStore(#[source] StoreError),
    /// The store holds signing keys but none this node can use (every row is corrupt).
    #[error("no usable token signing key in the store")]
    NoUsableKey,
    /// A key rotation setting of `[auth]` is out of range.
    #[error("invalid auth setting: {0}")]
    KeySetting(String),
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
            AuthError::KeyStore(_) => "unavailable",
            AuthError::KeyIo { .. }
            | AuthError::KeyFormat { .. }
            | AuthError::KeyGeneration
            | AuthError::NoUsableKey
            | AuthError::KeySetting(_)
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

/// Returns the token of an `Authorization: Bearer <token>` header value (the scheme is
/// case-insensitive), or `None` for any other scheme or an empty token.
pub fn bearer(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim();
    let well_formed = !token.is_empty() && !token.contains(char::is_whitespace);
    (scheme.eq_ignore_ascii_case("bearer") && well_formed).then_some(token)
}
