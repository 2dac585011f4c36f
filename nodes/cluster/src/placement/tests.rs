use super::*;
use banter_store::SqliteStore;

const S: u32 = 64;

fn free(shard: u32) -> Lease {
    Lease {
        shard: ShardId(shard),
        owner: None,
        epoch: Epoch(0),
        expires_at_ms: 0,
        remaining_ms: -1,
    }
}

fn held_by(shard: u32, owner: u32, remaining_ms: i64) -> Lease {
    Lease {
        shard: ShardId(shard),
        owner: Some(NodeId(owner)),
        epoch: Epoch(3),
        expires_at_ms: 0,
        remaining_ms,
    }
}

fn nodes(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().map(|&i| NodeId(i)).collect()
}

fn mine(shards: &[u32]) -> HashMap<ShardId, Held> {
    shards
        .iter()
        .map(|&s| {
            let held = Held {
                epoch: Epoch(1),
                deadline: Instant::now() + Duration::from_secs(60),
            };
            (ShardId(s), held)
        })
        .collect()
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn free_shards_go_to_their_preferred_owner_only() {
    let members = nodes(&[1, 2, 3]);
    let leases: Vec<_> = (0..S).map(free).collect();
    let mut taken = Vec::new();
    for &me in &members {
        let plan = plan(me, &members, &leases, &HashMap::new(), SEC, SEC);
        assert!(plan.release.is_empty());
        for shard in &plan.take {
            assert_eq!(preferred_owners(*shard, &members)[0], me);
        }
        taken.extend(plan.take);
    }
    taken.sort_unstable();
    assert_eq!(
        taken,
        (0..S).map(ShardId).collect::<Vec<_>>(),
        "each shard once"
    );
}

#[test]
fn a_held_shard_is_handed_to_a_live_member_that_is_preferred() {
    let members = nodes(&[1, 2]);
    let shard = (0..S)
        .find(|&s| preferred_owners(ShardId(s), &members)[0] == NodeId(2))
        .expect("some shard prefers node 2");
    let leases = vec![held_by(shard, 1, 5_000)];
    let plan_1 = plan(NodeId(1), &members, &leases, &mine(&[shard]), SEC, SEC);
    assert_eq!(plan_1.release, vec![ShardId(shard)]);
    // Node 2 waits for the release: the lease runs.
    let plan_2 = plan(NodeId(2), &members, &leases, &HashMap::new(), SEC, SEC);
    assert!(plan_2.take.is_empty());
}

#[test]
fn an_expired_lease_waits_for_the_delivery_timeout_then_goes_by_rank() {
    let members = nodes(&[1, 2]);
    let shard = ShardId(5);
    let ranked = preferred_owners(shard, &members);
    let (first, second) = (ranked[0], ranked[1]);
    let dead = 9;
    for (expired_ms, first_takes, second_takes) in [
        (500, false, false),
        (1_000, true, false),
        (1_999, true, false),
        (2_000, true, true),
    ] {
        let leases = vec![held_by(shard.0, dead, -expired_ms)];
        let p1 = plan(first, &members, &leases, &HashMap::new(), SEC, SEC);
        let p2 = plan(second, &members, &leases, &HashMap::new(), SEC, SEC);
        assert_eq!(
            !p1.take.is_empty(),
            first_takes,
            "expired {expired_ms} ms, first"
        );
        assert_eq!(
            !p2.take.is_empty(),
            second_takes,
            "expired {expired_ms} ms, second"
        );
    }
}

#[test]
fn a_running_lease_of_another_node_is_never_taken() {
    let members = nodes(&[1, 2]);
    let leases: Vec<_> = (0..S).map(|s| held_by(s, 7, 1)).collect();
    for me in [1, 2] {
        assert!(
            plan(NodeId(me), &members, &leases, &HashMap::new(), SEC, SEC)
                .take
                .is_empty()
        );
    }
}

fn keeper_config(ttl_ms: u64) -> KeeperConfig {
    KeeperConfig {
        ttl: Duration::from_millis(ttl_ms),
        margin: Duration::from_millis(ttl_ms / 5),
        expired_for: Duration::from_millis(50),
        live_within: Duration::from_millis(ttl_ms),
        dead_for: Duration::from_secs(3600),
    }
}

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("banter.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8"))
        .await
        .expect("open sqlite");
    store.ensure_shards(S).await.expect("shards");
    (Arc::new(store), dir)
}

/// What the journal port's methods return (`futures::future::BoxFuture`).
type Answer<T> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<T, banter_actors::ports::JournalError>>
            + Send
            + 'static,
    >,
>;

/// A journal that records the fences asked of it, fails them while `failing` and never answers them
/// while `hanging`.
#[derive(Default)]
struct Fencer {
    fenced: std::sync::Mutex<Vec<Term>>,
    failing: std::sync::atomic::AtomicBool,
    hanging: std::sync::atomic::AtomicBool,
}

impl Fencer {
    fn fenced(&self) -> Vec<Term> {
        self.fenced.lock().expect("lock").clone()
    }
}

impl Journal for Fencer {
    fn append(
        &self,
        message: &banter_actors::model::ChatMessage,
        _term: Term,
        _trace: &banter_actors::trace::TraceParent,
        sink: &Arc<dyn banter_actors::ports::AppendSink>,
    ) {
        let e = banter_actors::ports::JournalError::Unavailable("no appends here".into());
        sink.settled(message.seq, message.seq, Err(e));
    }

    fn last_seq(&self, _room: RoomId) -> Answer<u64> {
        Box::pin(async { Ok(0) })
    }

    fn read_after(
        &self,
        _room: RoomId,
        _after: u64,
        _limit: u32,
    ) -> Answer<Vec<banter_actors::model::ChatMessage>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn fence(&self, terms: &[Term]) -> Answer<()> {
        let failing = self.failing.load(std::sync::atomic::Ordering::SeqCst);
        if self.hanging.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        if !failing {
            self.fenced.lock().expect("lock").extend_from_slice(terms);
        }
        Box::pin(async move {
            if failing {
                Err(banter_actors::ports::JournalError::Unknown(
                    "broker away".into(),
                ))
            } else {
                Ok(())
            }
        })
    }
}

async fn keeper(store: &Arc<dyn Store>, addr: &str, ttl_ms: u64) -> LeaseKeeper {
    keeper_with(store, addr, ttl_ms, Arc::new(Fencer::default())).await
}

async fn keeper_with(
    store: &Arc<dyn Store>,
    addr: &str,
    ttl_ms: u64,
    journal: Arc<Fencer>,
) -> LeaseKeeper {
    let me = store.register_node(addr).await.expect("register");
    LeaseKeeper::new(
        store.clone(),
        journal,
        Placement::new(me, S),
        keeper_config(ttl_ms),
    )
}

/// Runs rounds of `keepers` until `done` holds, at most `rounds` times.
async fn rounds(keepers: &[&LeaseKeeper], rounds: usize, done: impl Fn() -> bool) {
    for _ in 0..rounds {
        for k in keepers {
            k.round().await.expect("round");
        }
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("placement did not settle in {rounds} rounds");
}

fn owned(k: &LeaseKeeper) -> Vec<ShardId> {
    k.placement.held().into_iter().map(|(s, _)| s).collect()
}

#[tokio::test]
async fn two_keepers_split_the_shards_and_a_survivor_takes_a_dead_ones_share() {
    let (store, _dir) = sqlite().await;
    let a = keeper(&store, "a:1", 600).await;
    let b = keeper(&store, "b:1", 600).await;
    let total = || owned(&a).len() + owned(&b).len() == S as usize;
    rounds(&[&a, &b], 50, total).await;
    // One more round each: both views have read the other's takes.
    rounds(&[&a, &b], 1, || true).await;
    let members = vec![a.placement.me(), b.placement.me()];
    for (k, other) in [(&a, &b), (&b, &a)] {
        for shard in owned(k) {
            assert_eq!(preferred_owners(shard, &members)[0], k.placement.me());
            assert!(!owned(other).contains(&shard), "{shard:?} held twice");
            assert!(k.placement.serving(shard).is_some());
            assert_eq!(other.placement.owner(shard), Some(k.placement.me()));
        }
    }
    let b_share = owned(&b);
    assert!(!b_share.is_empty());
    // b stops renewing (a crash): its deadline passes before its lease ends, then a takes over.
    rounds(&[&a], 200, || owned(&a).len() == S as usize).await;
    for shard in &b_share {
        assert_eq!(
            b.placement.serving(*shard),
            None,
            "b must not serve {shard:?}"
        );
        let epoch = a.placement.serving(*shard).expect("a serves it");
        assert!(epoch.0 >= 2, "a new epoch after b's: {epoch:?}");
    }
    // b wakes up: its renewal finds the shards gone and it holds nothing.
    b.round().await.expect("round");
    assert!(owned(&b).iter().all(|s| !b_share.contains(s)));
}

#[tokio::test]
async fn a_joining_node_gets_its_share_handed_over() {
    let (store, _dir) = sqlite().await;
    let a = keeper(&store, "a:1", 600).await;
    rounds(&[&a], 10, || owned(&a).len() == S as usize).await;
    let b = keeper(&store, "b:1", 600).await;
    let members = vec![a.placement.me(), b.placement.me()];
    let b_pref = (0..S)
        .filter(|&s| preferred_owners(ShardId(s), &members)[0] == b.placement.me())
        .count();
    rounds(&[&a, &b], 50, || {
        owned(&b).len() == b_pref && owned(&a).len() == S as usize - b_pref
    })
    .await;
}

#[tokio::test]
async fn stopping_hands_every_lease_back() {
    let (store, _dir) = sqlite().await;
    let a = keeper(&store, "a:1", 600).await;
    let placement = a.placement.clone();
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(a.run(stopped));
    for _ in 0..100 {
        if placement.held().len() == S as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(placement.held().len(), S as usize);
    stop.send(true).expect("stop");
    run.await.expect("join").expect("clean stop");
    assert!(placement.held().is_empty());
    let leases = store.leases().await.expect("leases");
    assert!(leases.iter().all(|l| l.owner.is_none()), "all released");
}

#[tokio::test]
async fn a_node_deleted_as_dead_is_evicted() {
    let (store, _dir) = sqlite().await;
    let a = keeper(&store, "a:1", 600).await;
    a.round().await.expect("round");
    tokio::time::sleep(Duration::from_millis(30)).await;
    store
        .delete_dead_nodes(Duration::from_millis(10))
        .await
        .expect("sweep");
    assert!(matches!(a.round().await, Err(RoundError::Evicted)));
}

#[tokio::test]
async fn a_room_is_served_under_its_shards_term_while_the_lease_holds() {
    let (store, _dir) = sqlite().await;
    let a = keeper(&store, "a:1", 600).await;
    rounds(&[&a], 10, || owned(&a).len() == S as usize).await;
    let room = RoomId(1234);
    let shard = a.placement.shard_of_room(room);
    let held = a
        .placement
        .held()
        .into_iter()
        .find(|(s, _)| *s == shard)
        .expect("held");
    let term = Ownership::serving(a.placement.as_ref(), room).expect("served");
    assert_eq!(
        term,
        Term {
            shard,
            epoch: held.1.epoch
        }
    );
    // Past the deadline (no renewal), the room is not served, under any term.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(Ownership::serving(a.placement.as_ref(), room), None);
}

#[tokio::test]
async fn a_take_is_served_only_once_fenced_and_handed_back_when_the_fence_fails() {
    let (store, _dir) = sqlite().await;
    let journal = Arc::new(Fencer::default());
    journal
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = keeper_with(&store, "a:1", 600, journal.clone()).await;
    a.round().await.expect("round");
    // Taken in the store, not fenced: not served, and handed back at once (epoch raised).
    assert!(owned(&a).is_empty());
    let leases = store.leases().await.expect("leases");
    assert!(
        leases
            .iter()
            .all(|l| l.owner.is_none() && l.epoch == Epoch(1))
    );
    // The journal is back: the next take fences every shard at its new epoch, then serves it.
    journal
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    rounds(&[&a], 10, || owned(&a).len() == S as usize).await;
    let mut fenced = journal.fenced();
    fenced.sort_by_key(|t| t.shard);
    let held: Vec<Term> = a
        .placement
        .held()
        .into_iter()
        .map(|(shard, h)| Term {
            shard,
            epoch: h.epoch,
        })
        .collect();
    assert_eq!(fenced, held);
    assert!(held.iter().all(|t| t.epoch == Epoch(2)));
}

#[tokio::test]
async fn a_fence_that_hangs_is_handed_back_within_a_round() {
    let (store, _dir) = sqlite().await;
    let journal = Arc::new(Fencer::default());
    journal
        .hanging
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = keeper_with(&store, "a:1", 600, journal.clone()).await;
    // The round ends (a hanging fence would hold it forever without the allowance).
    tokio::time::timeout(Duration::from_secs(30), a.round())
        .await
        .expect("the round ends")
        .expect("round");
    assert!(owned(&a).is_empty());
    let leases = store.leases().await.expect("leases");
    assert!(leases.iter().all(|l| l.owner.is_none()), "handed back");
}
