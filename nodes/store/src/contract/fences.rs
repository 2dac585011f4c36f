//! Contract cases: journal fences (per partition and shard, the highest epoch raised).

use std::sync::Arc;

use banter_actors::ports::{JournalFence, Store};
use banter_actors::shard::{Epoch, ShardId};

fn fence(partition: i32, shard: u32, epoch: u64) -> JournalFence {
    JournalFence {
        partition,
        shard: ShardId(shard),
        epoch: Epoch(epoch),
    }
}

pub(crate) async fn journal_fences_keep_the_highest_epoch(store: Arc<dyn Store>) {
    assert!(store.journal_fences(0).await.unwrap().is_empty());
    store.raise_journal_fences(&[]).await.unwrap();
    // One call may name a (partition, shard) twice: the higher epoch counts.
    store
        .raise_journal_fences(&[
            fence(0, 7, 3),
            fence(1, 7, 2),
            fence(0, 7, 5),
            fence(0, 2, 1),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.journal_fences(0).await.unwrap(),
        [(ShardId(2), Epoch(1)), (ShardId(7), Epoch(5))]
    );
    assert_eq!(
        store.journal_fences(1).await.unwrap(),
        [(ShardId(7), Epoch(2))]
    );
    // A lower epoch changes nothing; a higher one raises; raising again is idempotent.
    store
        .raise_journal_fences(&[fence(0, 7, 4), fence(1, 7, 9)])
        .await
        .unwrap();
    store.raise_journal_fences(&[fence(1, 7, 9)]).await.unwrap();
    assert_eq!(
        store.journal_fences(0).await.unwrap(),
        [(ShardId(2), Epoch(1)), (ShardId(7), Epoch(5))]
    );
    assert_eq!(
        store.journal_fences(1).await.unwrap(),
        [(ShardId(7), Epoch(9))]
    );
    assert!(store.journal_fences(2).await.unwrap().is_empty());
    // An epoch the database cannot hold is refused, not wrapped.
    assert!(
        store
            .raise_journal_fences(&[fence(0, 1, u64::MAX)])
            .await
            .is_err()
    );
}

pub(crate) async fn journal_fences_of_many_shards_in_one_call(store: Arc<dyn Store>) {
    // A take-over of every shard of a large cluster: more rows than one statement carries.
    let fences: Vec<_> = (0..1200).map(|s| fence(3, s, u64::from(s) + 1)).collect();
    store.raise_journal_fences(&fences).await.unwrap();
    let stored = store.journal_fences(3).await.unwrap();
    assert_eq!(stored.len(), 1200);
    assert!(stored.iter().all(|(s, e)| e.0 == u64::from(s.0) + 1));
}
