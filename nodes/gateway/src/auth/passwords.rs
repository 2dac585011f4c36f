//! Password hashing: argon2id at a configured cost, at most a few hashes at once, and the same work
//! for unknown usernames (see the `auth` module doc).

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AuthError;

#[cfg(test)]
mod tests;

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
