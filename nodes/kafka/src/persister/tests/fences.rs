//! A former shard owner's late writes (the zombie of ARCHITECTURE.md section 5), against a real broker
//! and MariaDB: behind the taker's fence they are never read by the tail, never stored, never a dead
//! letter, and the rows the taker wrote under the same seqs are the ones that count.

use banter_actors::ports::{AppendSink, JournalError};
use banter_actors::shard::{Epoch, ShardId, Term};

use super::*;

/// Appends `m` under `term` and waits for the broker's answer.
async fn append_under(journal: &KafkaJournal, m: &ChatMessage, term: Term) {
    struct Once(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Result<(), JournalError>>>>);
    impl AppendSink for Once {
        fn settled(&self, _: Seq, _: Seq, result: Result<(), JournalError>) {
            if let Some(tx) = self.0.lock().expect("lock").take() {
                let _ = tx.send(result);
            }
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink: Arc<dyn AppendSink> = Arc::new(Once(std::sync::Mutex::new(Some(tx))));
    journal.append(m, term, &TraceParent::new_root(), &sink);
    rx.await
        .expect("settled")
        .expect("the broker takes every record");
}

async fn stored(db: &Db, room: RoomId) -> Vec<(Seq, uuid::Uuid)> {
    db.store
        .messages_after(room, 0, 100)
        .await
        .expect("stored")
        .into_iter()
        .map(|m| (m.seq, m.message_id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_owners_late_writes_behind_a_fence_are_never_read_or_stored() {
    let Some((broker, db)) = setup(
        "a_former_owners_late_writes_behind_a_fence_are_never_read_or_stored",
        2,
    )
    .await
    else {
        return;
    };
    let kafka = kafka_config(&broker.brokers, 2);
    let config = persister_config(&kafka);
    let store = db.dyn_store();
    // Two nodes' journals: the former owner of the shard (a zombie once the lease moved) and the taker.
    let former = KafkaJournal::start(&kafka, &config.group_id, store.clone())
        .await
        .expect("journal");
    let taker = KafkaJournal::start(&kafka, &config.group_id, store.clone())
        .await
        .expect("journal");
    let (room, other, user) = (db.rooms[0], db.rooms[1], db.user);
    let shard = ShardId(7);
    let old = Term {
        shard,
        epoch: Epoch(1),
    };
    let new = Term {
        shard,
        epoch: Epoch(2),
    };
    // `other` is of another shard, written by the former owner all along: no fence touches it.
    let unfenced = Term {
        shard: ShardId(8),
        epoch: Epoch(1),
    };
    let first = msg(room, 1, user);
    append_under(&former, &first, old).await;
    append_under(&former, &msg(other, 1, user), unfenced).await;

    taker.fence(&[new]).await.expect("fenced");
    // The former owner's producer wakes up: its write lands after the fence, under the old epoch.
    append_under(&former, &msg(room, 2, user), old).await;
    append_under(&former, &msg(other, 2, user), unfenced).await;
    assert_eq!(taker.last_seq(room).await.expect("last seq"), 1);
    let tail = taker.read_after(room, 0, 10).await.expect("tail");
    assert_eq!(
        tail,
        std::slice::from_ref(&first),
        "the late write is not read"
    );
    assert_eq!(taker.last_seq(other).await.expect("last seq"), 2);
    // The taker gives seq 2 out again, under its own epoch.
    let second = msg(room, 2, user);
    append_under(&taker, &second, new).await;
    assert_eq!(
        taker.read_after(room, 0, 10).await.expect("tail"),
        [first.clone(), second.clone()]
    );

    let persister = start_persister(&kafka, &config, store.clone())
        .await
        .expect("persister");
    let want = vec![(1, first.message_id), (2, second.message_id)];
    eventually(
        Duration::from_secs(30),
        "the taker's rows stored",
        || async { stored(&db, room).await == want && db.seqs(other).await == [1, 2] },
    )
    .await;
    let partition = taker.partition_of(room);
    assert!(
        store
            .journal_fences(partition)
            .await
            .expect("fences")
            .contains(&(shard, Epoch(2))),
        "the persister stored the fence"
    );
    eventually(Duration::from_secs(30), "offsets committed", || async {
        let lag = lag_of(&kafka.topic);
        lag.len() == 2 && lag.values().all(|&l| l == 0.0)
    })
    .await;

    // The fence record is behind the committed offset now: a reader starting there knows it only
    // from the store. Another late write is still shut out, by the tail and by the persister.
    append_under(&former, &msg(room, 3, user), old).await;
    assert_eq!(taker.last_seq(room).await.expect("last seq"), 2);
    let third = msg(room, 3, user);
    append_under(&taker, &third, new).await;
    eventually(Duration::from_secs(30), "the taker's third row", || async {
        stored(&db, room).await.last() == Some(&(3, third.message_id))
    })
    .await;
    assert_eq!(stored(&db, room).await.len(), 3);
    assert_eq!(
        dead_letter_count(&kafka),
        0,
        "late writes are no dead letters"
    );
    persister.stop().await;
    db.drop().await;
}
