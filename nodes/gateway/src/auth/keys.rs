//! [`AuthKeys`]: the node's snapshot of the signing key set the store keeps for the cluster, how it
//! is loaded, rotated and pruned, and how tokens are signed and verified with it (see the `auth`
//! module doc for the timeline).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use banter_actors::ports::{Clock, SigningKey, Store, StoreError, SystemClock};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::key::{KeyPair, generate_pkcs8, is_kid_shaped, read_key_file};
use super::schedule::{KeyPolicy, signer};
use super::{AuthError, Claims, ISSUER, IssuedTokens, KEY_FILE, TokenType};

#[cfg(test)]
mod tests;

/// Longest token [`AuthKeys::verify`] reads; ours are about 400 bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Shortest time between two reloads of the key set for tokens of an unknown kid, in ms: however
/// many such tokens arrive (a client sending random kids), the store is asked at most this often.
pub const MISS_RELOAD_EVERY_MS: i64 = 5_000;

/// The node's view of the token signing key set: which key signs, which verify. Cheap to clone;
/// clones share the snapshot.
#[derive(Clone)]
pub struct AuthKeys {
    inner: Arc<Inner>,
}

struct Inner {
    /// The keys as last loaded; replaced whole, read without waiting on anything but the swap.
    snapshot: RwLock<Arc<KeySet>>,
    policy: KeyPolicy,
    clock: Arc<dyn Clock>,
    validation: Validation,
    /// Where the set comes from; `None` for a fixed in-memory set ([`AuthKeys::generate`]).
    source: Option<Source>,
    /// Ticket of the latest load started: a load replaces the snapshot only with a newer one, so a
    /// slow load never undoes a faster, later one.
    tickets: AtomicU64,
    /// When (clock ms) the latest reload for an unknown kid started.
    last_miss_reload_ms: AtomicI64,
}

/// The store the set lives in, and the key file an empty store imports.
struct Source {
    store: Arc<dyn Store>,
    key_file: PathBuf,
}

/// One loaded key set: never empty, ordered by generation.
struct KeySet {
    ticket: u64,
    keys: Vec<ScheduledKey>,
}

/// A key of the set with its schedule.
pub(crate) struct ScheduledKey {
    pub(crate) generation: i64,
    pub(crate) signs_from_ms: i64,
    /// `None` for the newest key.
    pub(crate) verify_until_ms: Option<i64>,
    pub(crate) pair: KeyPair,
}

impl ScheduledKey {
    fn verifies_at(&self, now_ms: i64) -> bool {
        self.verify_until_ms.is_none_or(|until| now_ms < until)
    }
}

impl KeySet {
    /// Builds the set from the store's rows (ordered by generation). A row whose private key does
    /// not parse, or does not match its public key and kid, is skipped with a warning; its
    /// generation still counts in the schedule.
    fn build(rows: &[SigningKey], policy: &KeyPolicy, ticket: u64) -> Result<KeySet, AuthError> {
        let mut keys = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let next_signs_from = rows.get(i + 1).map(|r| r.signs_from_ms);
            match KeyPair::from_pkcs8(&row.private_key) {
                Some(pair) if pair.public_key == row.public_key && pair.kid == row.kid => {
                    keys.push(ScheduledKey {
                        generation: row.generation,
                        signs_from_ms: row.signs_from_ms,
                        verify_until_ms: policy.verify_until(next_signs_from),
                        pair,
                    });
                }
                _ => warn!(
                    generation = row.generation,
                    kid = %row.kid,
                    "unusable token signing key in the store skipped"
                ),
            }
        }
        if keys.is_empty() {
            return Err(AuthError::NoUsableKey);
        }
        Ok(KeySet { ticket, keys })
    }

    fn signer(&self, now_ms: i64) -> &ScheduledKey {
        &self.keys[signer(&self.keys, |k| k.signs_from_ms, now_ms)]
    }

    fn find(&self, kid: &str) -> Option<&ScheduledKey> {
        self.keys.iter().find(|k| k.pair.kid == kid)
    }

    fn verifying(&self, now_ms: i64) -> impl Iterator<Item = &ScheduledKey> {
        self.keys.iter().filter(move |k| k.verifies_at(now_ms))
    }
}

/// Why the snapshot refused a token: a kid it does not know is worth a reload.
enum Refusal {
    UnknownKid,
    Refused(AuthError),
}

impl Refusal {
    fn into_error(self) -> AuthError {
        match self {
            Refusal::UnknownKid => AuthError::BadSignature,
            Refusal::Refused(e) => e,
        }
    }
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        Refusal::Refused(e)
    }
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private keys stay out of logs.
        let set = self.snapshot();
        let kids: Vec<&str> = set.keys.iter().map(|k| k.pair.kid.as_str()).collect();
        f.debug_struct("AuthKeys")
            .field("kids", &kids)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl AuthKeys {
    /// Loads the key set from `store`, first adding the next generation when one is due and
    /// deleting the keys past their verify window. An empty store gets the key file of
    /// `data_dir` (see [`KEY_FILE`]) as generation 1, or a new key when there is none. Fails when
    /// the store cannot be reached, the key file is unreadable, or no key is usable.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
        data_dir: &Path,
    ) -> Result<AuthKeys, AuthError> {
        let source = Source {
            store,
            key_file: data_dir.join(KEY_FILE),
        };
        let rows = source.maintain(&policy, clock.now_ms()).await?;
        let set = KeySet::build(&rows, &policy, 0)?;
        info!(kids = ?kids(&set), "token signing keys loaded");
        Ok(AuthKeys::with_set(set, policy, clock, Some(source)))
    }

    /// Returns a fixed set of one new in-memory key (for tests and throwaway nodes): it never
    /// rotates nor reloads.
    ///
    /// # Panics
    /// Panics if the crypto library cannot generate a key, which only a broken RNG causes.
    pub fn generate() -> AuthKeys {
        let pair = generate_pkcs8()
            .ok()
            .and_then(|pkcs8| KeyPair::from_pkcs8(&pkcs8))
            .expect("Ed25519 key generation failed");
        let set = KeySet {
            ticket: 0,
            keys: vec![ScheduledKey {
                generation: 1,
                signs_from_ms: i64::MIN,
                verify_until_ms: None,
                pair,
            }],
        };
        AuthKeys::with_set(set, KeyPolicy::default(), Arc::new(SystemClock), None)
    }

    fn with_set(
        set: KeySet,
        policy: KeyPolicy,
        clock: Arc<dyn Clock>,
        source: Option<Source>,
    ) -> AuthKeys {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        AuthKeys {
            inner: Arc::new(Inner {
                snapshot: RwLock::new(Arc::new(set)),
                policy,
                clock,
                validation,
                source,
                tickets: AtomicU64::new(0),
                last_miss_reload_ms: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// Returns the rotation policy.
    pub fn policy(&self) -> &KeyPolicy {
        &self.inner.policy
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the key pair that signs now (for tests that forge tokens with it).
    #[cfg(test)]
    pub(crate) fn signing_pair(&self) -> KeyPair {
        let now_ms = self.inner.clock.now_ms();
        self.snapshot().signer(now_ms).pair.clone()
    }

    /// Returns the validation rules every token meets.
    #[cfg(test)]
    pub(crate) fn validation(&self) -> &Validation {
        &self.inner.validation
    }

    /// Returns the kid of the key that signs now.
    pub fn kid(&self) -> String {
        let now_ms = self.inner.clock.now_ms();
        self.snapshot().signer(now_ms).pair.kid.clone()
    }

    /// Returns the kids of the keys that verify now (those [`AuthKeys::jwks`] publishes), oldest
    /// generation first.
    pub fn kids(&self) -> Vec<String> {
        let now_ms = self.inner.clock.now_ms();
        let set = self.snapshot();
        set.verifying(now_ms).map(|k| k.pair.kid.clone()).collect()
    }

    /// Issues an access and a refresh token for a user, as of `now_ms` (milliseconds since the
    /// epoch), starting a new refresh token chain; the key that signs at `now_ms` signs both.
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
        let set = self.snapshot();
        let key = set.signer(now_ms);
        IssuedTokens {
            access_token: key.pair.sign(&access),
            refresh_token: key.pair.sign(&refresh),
            refresh_expires_at_ms: refresh.exp.saturating_mul(1000),
            refresh_jti: refresh.jti,
            chain: chain.to_owned(),
            expires_in: access_ttl_secs,
        }
    }

    /// Verifies a token's signature and claims and returns the claims; `expected` is the token type
    /// the caller accepts. Expiry is checked against the system clock with no leeway. A token whose
    /// kid the node does not know makes it reload the set first, at most once every
    /// [`MISS_RELOAD_EVERY_MS`] (a token of a key another node just added); every other token is
    /// checked against the snapshot alone, without waiting.
    pub async fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, AuthError> {
        match self.check(token, expected) {
            Err(Refusal::UnknownKid) if self.claim_miss_reload() => {
                if let Err(e) = self.load(false).await {
                    warn!(error = %e, "reloading the signing keys for an unknown kid failed");
                }
                self.check(token, expected).map_err(Refusal::into_error)
            }
            checked => checked.map_err(Refusal::into_error),
        }
    }

    /// Verifies a token against the keys loaded, never reloading: an unknown kid is
    /// [`AuthError::BadSignature`]. Otherwise as [`AuthKeys::verify`].
    pub fn verify_loaded(&self, token: &str, expected: TokenType) -> Result<Claims, AuthError> {
        self.check(token, expected).map_err(Refusal::into_error)
    }

    fn check(&self, token: &str, expected: TokenType) -> Result<Claims, Refusal> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing.into());
        }
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return Err(AuthError::Malformed.into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| unreadable_header(token))?;
        // Checked here too, though `decode` would refuse it, so a wrong algorithm is told apart
        // from a malformed token before any work is done.
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::BadSignature.into());
        }
        let Some(kid) = header.kid.as_deref() else {
            return Err(AuthError::BadSignature.into());
        };
        let set = self.snapshot();
        let key = match set.find(kid) {
            Some(key) if key.verifies_at(self.inner.clock.now_ms()) => key,
            // Retired: its tokens have expired.
            Some(_) => return Err(AuthError::BadSignature.into()),
            None if is_kid_shaped(kid) => return Err(Refusal::UnknownKid),
            None => return Err(AuthError::BadSignature.into()),
        };
        let claims =
            jsonwebtoken::decode::<Claims>(token, &key.pair.decoding, &self.inner.validation)
                .map_err(|e| map_jwt_error(e.into_kind()))?
                .claims;
        if claims.typ != expected {
            return Err(AuthError::WrongType.into());
        }
        claims.user_id()?;
        Ok(claims)
    }

    /// Takes the turn of a reload for an unknown kid, unless one started less than
    /// [`MISS_RELOAD_EVERY_MS`] ago (or the set is fixed).
    fn claim_miss_reload(&self) -> bool {
        if self.inner.source.is_none() {
            return false;
        }
        let now_ms = self.inner.clock.now_ms();
        let last = &self.inner.last_miss_reload_ms;
        let previous = last.load(Ordering::Relaxed);
        now_ms.saturating_sub(previous) >= MISS_RELOAD_EVERY_MS
            && last
                .compare_exchange(previous, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Returns the JSON Web Key Set of the keys that verify now, as served at
    /// `/.well-known/jwks.json`: the signing key, the next one once published, and retired ones
    /// until their last token expired.
    pub fn jwks(&self) -> serde_json::Value {
        let now_ms = self.inner.clock.now_ms();
        let set = self.snapshot();
        let keys: Vec<serde_json::Value> = set.verifying(now_ms).map(|k| k.pair.jwk()).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Reloads the set from the store, first adding the next generation when one is due and
    /// deleting the keys past their verify window: the periodic chore of every node (every
    /// `auth.key_refresh_secs`). On an error the snapshot stays as it was.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        self.load(true).await
    }

    async fn load(&self, maintain: bool) -> Result<(), AuthError> {
        let Some(source) = &self.inner.source else {
            return Ok(());
        };
        let reason = if maintain { "refresh" } else { "unknown_kid" };
        let ticket = self.inner.tickets.fetch_add(1, Ordering::Relaxed) + 1;
        let policy = &self.inner.policy;
        let loaded = async {
            let rows = if maintain {
                source.maintain(policy, self.inner.clock.now_ms()).await?
            } else {
                source.list().await?
            };
            KeySet::build(&rows, policy, ticket)
        }
        .await;
        let result = if loaded.is_ok() { "ok" } else { "error" };
        crate::metrics::signing_key_load(reason, result);
        let set = Arc::new(loaded?);
        let mut current = self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if current.ticket < set.ticket {
            let (before, after) = (kids(&current), kids(&set));
            if before != after {
                info!(kids = ?after, reason, "token signing keys changed");
            }
            *current = set;
        }
        Ok(())
    }
}

fn kids(set: &KeySet) -> Vec<(i64, String)> {
    set.keys
        .iter()
        .map(|k| (k.generation, k.pair.kid.clone()))
        .collect()
}

impl Source {
    async fn list(&self) -> Result<Vec<SigningKey>, AuthError> {
        self.store.signing_keys().await.map_err(AuthError::KeyStore)
    }

    /// Lists the keys, adds the next generation when it is due (or the first when there is none)
    /// and deletes the keys past their verify window; returns the keys then in the store.
    async fn maintain(
        &self,
        policy: &KeyPolicy,
        now_ms: i64,
    ) -> Result<Vec<SigningKey>, AuthError> {
        let mut rows = self.list().await?;
        if let Some((next, origin)) = self.next_key(&rows, policy, now_ms)? {
            match self.store.insert_signing_key(&next).await {
                Ok(()) => {
                    info!(
                        generation = next.generation,
                        kid = %next.kid,
                        signs_from_ms = next.signs_from_ms,
                        origin,
                        "token signing key added"
                    );
                    rows.push(next);
                }
                Err(StoreError::Conflict(_)) => {
                    debug!(
                        generation = next.generation,
                        "another node added this key generation first"
                    );
                    rows = self.list().await?;
                }
                Err(e) => return Err(AuthError::KeyStore(e)),
            }
        }
        let signs_from: Vec<i64> = rows.iter().map(|r| r.signs_from_ms).collect();
        let expired = policy.expired(&signs_from, now_ms);
        if expired > 0 {
            let before = rows[expired].generation;
            let deleted = self
                .store
                .delete_signing_keys_before(before)
                .await
                .map_err(AuthError::KeyStore)?;
            info!(
                deleted,
                before_generation = before,
                "retired token signing keys deleted"
            );
            rows.drain(..expired);
        }
        Ok(rows)
    }

    /// Returns the key to add at `now_ms`, if any, and where it comes from: the first key (from the
    /// key file, or new) when the store has none, else the next generation when it is due.
    fn next_key(
        &self,
        rows: &[SigningKey],
        policy: &KeyPolicy,
        now_ms: i64,
    ) -> Result<Option<(SigningKey, &'static str)>, AuthError> {
        let (generation, signs_from_ms, origin, (pkcs8, pair)) = match rows.last() {
            None => match read_key_file(&self.key_file)? {
                Some(imported) => (1, now_ms, "key file", imported),
                None => (1, now_ms, "generated", new_key()?),
            },
            Some(newest) => match policy.next_signs_from(newest.signs_from_ms, now_ms) {
                None => return Ok(None),
                Some(signs_from) => (
                    newest.generation.saturating_add(1),
                    signs_from,
                    "rotation",
                    new_key()?,
                ),
            },
        };
        let key = SigningKey {
            generation,
            kid: pair.kid,
            private_key: pkcs8,
            public_key: pair.public_key,
            created_at_ms: now_ms,
            signs_from_ms,
        };
        Ok(Some((key, origin)))
    }
}

fn new_key() -> Result<(Vec<u8>, KeyPair), AuthError> {
    let pkcs8 = generate_pkcs8()?;
    let pair = KeyPair::from_pkcs8(&pkcs8).ok_or(AuthError::KeyGeneration)?;
    Ok((pkcs8, pair))
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
        // The signature verified, so these are claims a node signed but cannot read.
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            AuthError::Invalid("unreadable claims".to_owned())
        }
        other => AuthError::Invalid(format!("{other:?}").to_lowercase()),
    }
}
