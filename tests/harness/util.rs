//! Small helpers: unique names and bounded polling.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Returns `n` random lowercase hex characters (not cryptographic; unique enough to isolate tests).
pub fn random_hex(n: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(n + 16);
    while out.len() < n {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.write_u128(nanos);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(n);
    out
}

/// The `tests/` directory of the checkout being tested: where `cargo test` runs the binary from
/// (its `CARGO_MANIFEST_DIR` at run time), else where it was compiled. A cached test binary built
/// in another clone of the repository would otherwise point into that clone.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    )
}

/// Returns a valid, unique username (and room-name-friendly string): `prefix` (cut to 18 characters,
/// lowercased) + `_` + 12 hex characters. `prefix` must start with a letter.
pub fn unique(prefix: &str) -> String {
    let mut p: String = prefix.to_ascii_lowercase().chars().take(18).collect();
    if p.is_empty() {
        p.push('u');
    }
    format!("{p}_{}", random_hex(12))
}

/// Calls `check` until it returns `Ok(Some(v))`, at most for `within`, every 50 ms; returns the last
/// error or a timeout error. For states reached through another path than the one being awaited
/// (e.g. a read marker visible in REST after a STOMP frame), where no event can be awaited.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    let mut last = String::from("condition never held");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{what}: not reached within {within:?} ({last})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
