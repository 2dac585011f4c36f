//! Periodic chores of a node, off every request path: deleting expired refresh tokens and forgetting
//! the per-IP login limiter's state for addresses that have been quiet (its memory would otherwise grow
//! with every address that ever tried).

use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::app::AppState;

/// Runs the chores every `period` until `shutdown` turns true.
pub async fn run(state: AppState, period: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => once(&state).await,
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
    match state.store().purge_refresh_tokens(state.now_ms()).await {
        Ok(n) => debug!(purged = n, "expired refresh tokens purged"),
        Err(e) => warn!(error = %e, "refresh token purge failed"),
    }
    // The per-user room budgets grow with every user who created, opened or joined lately.
    state.room_budgets.retain_recent();
    state.auth_limiter.retain_recent();
    state.auth_limiter.shrink_to_fit();
}
