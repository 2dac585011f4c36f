//! Periodic chores of a node, off every request path: deleting expired refresh tokens (hourly),
//! forgetting the login limiters' state for addresses and accounts that have been quiet, and the
//! send budgets of users who have not sent lately (every minute: the login budgets are per minute, and their memory would otherwise grow with every address and
//! username that ever tried), and, in a loop of its own ([`refresh_keys`]), reloading the token
//! signing keys from the store every `auth.key_refresh_secs`, rotating and pruning them on the way.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::auth::AuthKeys;
use crate::state::AppState;

/// How often expired refresh tokens are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// How often the login limiters forget quiet keys.
pub const TRIM_EVERY: Duration = Duration::from_secs(60);

/// Purges expired refresh tokens every `purge_every` and trims the login limiters every `trim_every`
/// until `shutdown` turns true.
pub async fn run(
    state: AppState,
    purge_every: Duration,
    trim_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut purge = tokio::time::interval(purge_every);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim = tokio::time::interval(trim_every);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = purge.tick() => purge_tokens(&state).await,
            _ = trim.tick() => trim_limiters(&state),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

/// Runs each chore once.
pub async fn once(state: &AppState) {
    purge_tokens(state).await;
    trim_limiters(state);
}

async fn purge_tokens(state: &AppState) {
    match state.store().purge_refresh_tokens(state.now_ms()).await {
        Ok(n) => debug!(purged = n, "expired refresh tokens purged"),
        Err(e) => warn!(error = %e, "refresh token purge failed"),
    }
}

fn trim_limiters(state: &AppState) {
    // The per-user room budgets grow with every user who created, opened or joined lately.
    state.room_budgets.retain_recent();
    // So do the send budgets of users who sent lately.
    state.users.trim();
    state.login_limits.trim();
    let (addresses, accounts) = state.login_limits.tracked();
    debug!(addresses, accounts, "login limiters trimmed");
}

/// Reloads the token signing keys every `auth.key_refresh_secs` until `shutdown` turns true,
/// adding the next generation when it is due and deleting retired keys (see `auth`). A failed
/// refresh leaves the node on the keys it has and is tried again at the next tick.
pub async fn refresh_keys(keys: AuthKeys, mut shutdown: watch::Receiver<bool>) {
    let every = keys.policy().refresh_every();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = keys.refresh().await {
                    warn!(error = %e, "token signing key refresh failed");
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
