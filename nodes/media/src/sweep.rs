//! Housekeeping of uploads: a grant that nothing keeps — no stored message holds it, no user has
//! it as avatar — within `media.unattached_ttl_secs` of its grant (or of its claim by an attach
//! whose message was then refused) is deleted, its row first and then its object.
//!
//! Every node sweeps (every `media.sweep_interval_secs`); they cannot harm each other or an
//! attach in flight, because a row is deleted only while it is still stale
//! ([`Uploads::delete_stale_upload`]) and its object only by whoever deleted the row: an attach
//! that claims the upload first keeps it, one that comes after finds it gone and is refused. A
//! message's uploads are kept once the store holds the message: with the persister stopped for
//! longer than the ttl, an acknowledged message's attachment could be swept.
//! An object whose delete fails after its row went is left behind (counted and logged): nothing
//! refers to it any more.
//!
//! The bytes a user's actor counts against its quota are read when it activates, so a live actor
//! goes on counting swept uploads until it passivates (an idle one does within minutes).

use std::sync::Arc;
use std::time::Duration;

use banter_actors::ports::{BlobKey, Blobs, Clock, StoreError, Uploads};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Counter: stale uploads swept, by `outcome` (`deleted`: row and object; `object_left`: the
/// object's delete failed after its row was deleted).
pub const SWEPT: &str = "banter_uploads_swept_total";

/// Describes this module's metrics to the recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        SWEPT,
        "Uploads never attached that housekeeping deleted, by outcome (deleted, object_left)"
    );
}

/// Rows read per query.
const BATCH: u32 = 100;

/// Most uploads one sweep deletes; the next sweep goes on.
const MOST_PER_SWEEP: usize = 10_000;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Uploads whose row and object were deleted.
    pub deleted: usize,
    /// Uploads whose row was deleted but whose object's delete failed.
    pub objects_left: usize,
}

/// Deletes the uploads never used and granted before `before_ms`, at most [`MOST_PER_SWEEP`].
pub async fn sweep(
    store: &dyn Uploads,
    blobs: &dyn Blobs,
    before_ms: i64,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    while swept.deleted + swept.objects_left < MOST_PER_SWEEP {
        let stale = store.stale_uploads(before_ms, BATCH).await?;
        let last = stale.len() < BATCH as usize;
        for upload in stale {
            if !store.delete_stale_upload(upload.id, before_ms).await? {
                continue; // attached meanwhile, or another node's sweep was first
            }
            let deleted = match BlobKey::new(upload.key.clone()) {
                Ok(key) => blobs.delete(&key).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match deleted {
                Ok(()) => {
                    swept.deleted += 1;
                    metrics::counter!(SWEPT, "outcome" => "deleted").increment(1);
                }
                Err(error) => {
                    swept.objects_left += 1;
                    metrics::counter!(SWEPT, "outcome" => "object_left").increment(1);
                    warn!(upload = %upload.id, key = %upload.key, %error, "a swept upload's object is left behind");
                }
            }
        }
        if last {
            break;
        }
    }
    Ok(swept)
}

/// Sweeps every `every`, uploads unused for `ttl`, until `shutdown` turns true.
pub async fn run(
    store: Arc<dyn Uploads>,
    blobs: Arc<dyn Blobs>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let before_ms = clock.now_ms().saturating_sub(ttl_ms);
                match sweep(store.as_ref(), blobs.as_ref(), before_ms).await {
                    Ok(s) if s == Swept::default() => debug!("no stale uploads"),
                    Ok(s) => info!(deleted = s.deleted, objects_left = s.objects_left, "stale uploads swept"),
                    Err(e) => warn!(error = %e, "the upload sweep failed; the next one tries again"),
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
