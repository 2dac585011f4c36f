//! Contract cases: cluster placement — node incarnations and shard leases fenced by epochs.
//!
//! Leases live on the database's clock, so these cases wait for real: ttls are tens of milliseconds
//! and every sleep leaves a margin of at least 50 ms on either side of the instant it waits for.

use std::sync::Arc;
use std::time::Duration;

use banter_actors::delivery::NodeId;
use banter_actors::ports::{Lease, MAX_ADVERTISE_LEN, Store, StoreError};
use banter_actors::shard::{Epoch, MAX_SHARDS, ShardId};

/// A ttl no case outlives.
const LONG: Duration = Duration::from_secs(30);

/// A ttl that runs out within a case.
const SHORT: Duration = Duration::from_millis(50);

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn lease(store: &Arc<dyn Store>, shard: u32) -> Lease {
    let all = store.leases().await.unwrap();
    *all.iter()
        .find(|l| l.shard == ShardId(shard))
        .unwrap_or_else(|| panic!("no lease row for shard {shard} in {all:?}"))
}

async fn register(store: &Arc<dyn Store>, n: usize) -> Vec<NodeId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .register_node(&format!("10.0.0.{i}:7946"))
                .await
                .unwrap(),
        );
    }
    ids
}

pub(crate) async fn cluster_nodes_register_with_increasing_ids(store: Arc<dyn Store>) {
    let ids = register(&store, 3).await;
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    assert!(ids[0] > NodeId::SINGLE, "{ids:?}");
    // The same address again is a new incarnation.
    let again = store.register_node("10.0.0.0:7946").await.unwrap();
    assert!(again > ids[2]);
    let live = store.live_nodes(LONG).await.unwrap();
    let listed: Vec<(NodeId, &str)> = live.iter().map(|n| (n.id, n.advertise.as_str())).collect();
    assert_eq!(
        listed,
        [
            (ids[0], "10.0.0.0:7946"),
            (ids[1], "10.0.0.1:7946"),
            (ids[2], "10.0.0.2:7946"),
            (again, "10.0.0.0:7946"),
        ]
    );
    for node in &live {
        assert!(node.heartbeat_age < Duration::from_secs(5), "{node:?}");
        assert!(node.started_at_ms > 1_600_000_000_000, "{node:?}");
    }
    store.node_heartbeat(ids[1]).await.unwrap();
    let gone = NodeId(again.0 + 1000);
    assert!(matches!(
        store.node_heartbeat(gone).await,
        Err(StoreError::NotFound)
    ));
    for bad in [String::new(), "x".repeat(MAX_ADVERTISE_LEN + 1)] {
        let err = store.register_node(&bad).await;
        assert!(matches!(err, Err(StoreError::Other(_))), "{err:?}");
    }
    let longest = "y".repeat(MAX_ADVERTISE_LEN);
    let id = store.register_node(&longest).await.unwrap();
    let live = store.live_nodes(LONG).await.unwrap();
    assert_eq!(
        live.last().map(|n| (n.id, n.advertise.as_str())),
        Some((id, longest.as_str()))
    );
}

pub(crate) async fn cluster_nodes_that_stop_heartbeating_drop_out(store: Arc<dyn Store>) {
    let ids = register(&store, 3).await;
    sleep_ms(250).await;
    store.node_heartbeat(ids[0]).await.unwrap();
    store.node_heartbeat(ids[1]).await.unwrap();
    let live = store.live_nodes(Duration::from_millis(150)).await.unwrap();
    assert_eq!(
        live.iter().map(|n| n.id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );
    assert!(
        live.iter()
            .all(|n| n.heartbeat_age < Duration::from_millis(150))
    );
    assert_eq!(store.live_nodes(LONG).await.unwrap().len(), 3);
    // The row of the highest id goes: its id is still never given out again.
    assert_eq!(
        store
            .delete_dead_nodes(Duration::from_millis(150))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_dead_nodes(Duration::from_millis(150))
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        store.node_heartbeat(ids[2]).await,
        Err(StoreError::NotFound)
    ));
    let next = store.register_node("10.0.0.9:7946").await.unwrap();
    assert!(
        next > ids[2],
        "{next} reuses a deleted id (last {})",
        ids[2]
    );
    assert_eq!(store.live_nodes(LONG).await.unwrap().len(), 3);
}

pub(crate) async fn lease_on_a_free_shard_has_epoch_1(store: Arc<dyn Store>) {
    store.ensure_shards(4).await.unwrap();
    let all = store.leases().await.unwrap();
    assert_eq!(
        all.iter().map(|l| l.shard.0).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    for l in &all {
        assert_eq!(
            (l.owner, l.epoch, l.holder()),
            (None, Epoch(0), None),
            "{l:?}"
        );
        assert_eq!(l.takeable_in(LONG), Duration::ZERO);
    }
    let node = NodeId(7);
    let epoch = store
        .take_lease(ShardId(2), node, LONG, LONG)
        .await
        .unwrap();
    assert_eq!(epoch, Some(Epoch(1)), "a free shard needs no wait");
    let taken = lease(&store, 2).await;
    assert_eq!(
        (taken.owner, taken.epoch, taken.holder()),
        (Some(node), Epoch(1), Some(node))
    );
    assert!(
        taken.remaining_ms > 25_000 && taken.remaining_ms <= 30_000,
        "{taken:?}"
    );
    assert!(taken.takeable_in(Duration::ZERO) > Duration::from_secs(25));
    assert_eq!(lease(&store, 1).await.owner, None, "one row changed");
    let missing = store.take_lease(ShardId(4), node, LONG, LONG).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

pub(crate) async fn live_lease_is_not_taken(store: Arc<dyn Store>) {
    store.ensure_shards(2).await.unwrap();
    let (a, b) = (NodeId(1), NodeId(2));
    assert_eq!(
        store
            .take_lease(ShardId(0), a, LONG, Duration::ZERO)
            .await
            .unwrap(),
        Some(Epoch(1))
    );
    for taker in [b, a] {
        let r = store
            .take_lease(ShardId(0), taker, LONG, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(r, None, "{taker} took a live lease");
    }
    let held = lease(&store, 0).await;
    assert_eq!(
        (held.owner, held.epoch),
        (Some(a), Epoch(1)),
        "the failed takes changed nothing"
    );
}

pub(crate) async fn expired_lease_is_taken_after_expired_for(store: Arc<dyn Store>) {
    store.ensure_shards(1).await.unwrap();
    let (a, b) = (NodeId(1), NodeId(2));
    let shard = ShardId(0);
    assert_eq!(
        store.take_lease(shard, a, SHORT, LONG).await.unwrap(),
        Some(Epoch(1))
    );
    // Expired (50 ms) but not for LONG yet.
    sleep_ms(150).await;
    let expired = lease(&store, 0).await;
    assert!(expired.remaining_ms <= -50, "{expired:?}");
    assert_eq!(expired.holder(), None);
    assert!(expired.takeable_in(LONG) > Duration::ZERO);
    let early = LONG;
    assert_eq!(store.take_lease(shard, b, LONG, early).await.unwrap(), None);
    // Expired for at least 100 ms now.
    let after = Duration::from_millis(50);
    assert_eq!(
        store.take_lease(shard, b, LONG, after).await.unwrap(),
        Some(Epoch(2))
    );
    let taken = lease(&store, 0).await;
    assert_eq!((taken.owner, taken.epoch), (Some(b), Epoch(2)));
    // The zombie's renewal names the old epoch.
    assert!(
        store
            .renew_leases(a, &[(shard, Epoch(1))], LONG)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn renewal_keeps_a_lease_for_its_owner_at_its_epoch(store: Arc<dyn Store>) {
    store.ensure_shards(4).await.unwrap();
    let (a, b) = (NodeId(1), NodeId(2));
    // Takes run for 1 s; renewals for LONG, so that a slow machine cannot let a renewed lease
    // run out before it is checked.
    let ttl = Duration::from_secs(1);
    for shard in [0, 1] {
        assert_eq!(
            store
                .take_lease(ShardId(shard), a, ttl, LONG)
                .await
                .unwrap(),
            Some(Epoch(1))
        );
    }
    assert_eq!(
        store.take_lease(ShardId(2), b, ttl, LONG).await.unwrap(),
        Some(Epoch(1))
    );
    sleep_ms(150).await;
    let asked = [
        (ShardId(1), Epoch(1)),
        (ShardId(0), Epoch(1)),
        (ShardId(2), Epoch(1)), // b's
        (ShardId(3), Epoch(0)), // nobody's
        (ShardId(9), Epoch(1)), // no such shard
        (ShardId(0), Epoch(1)), // twice
    ];
    let renewed = store.renew_leases(a, &asked, LONG).await.unwrap();
    assert_eq!(renewed, [ShardId(0), ShardId(1)]);
    assert!(
        store
            .renew_leases(a, &[(ShardId(0), Epoch(2))], ttl)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .renew_leases(b, &[(ShardId(0), Epoch(1))], ttl)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.renew_leases(a, &[], ttl).await.unwrap().is_empty());
    // At least 1.05 s after the takes: the first ttl is over, the renewed one runs on.
    sleep_ms(900).await;
    for shard in [0, 1] {
        assert_eq!(
            store
                .take_lease(ShardId(shard), b, ttl, Duration::ZERO)
                .await
                .unwrap(),
            None
        );
        assert_eq!(lease(&store, shard).await.holder(), Some(a));
    }
    // b's lease, not renewed, has expired.
    assert_eq!(lease(&store, 2).await.holder(), None);
}

pub(crate) async fn renewal_after_expiry_loses_the_lease(store: Arc<dyn Store>) {
    store.ensure_shards(1).await.unwrap();
    let a = NodeId(1);
    let shard = ShardId(0);
    assert_eq!(
        store.take_lease(shard, a, SHORT, LONG).await.unwrap(),
        Some(Epoch(1))
    );
    sleep_ms(120).await;
    // Nobody took it, yet it is lost: the owner's own deadline ended before the expiry.
    assert!(
        store
            .renew_leases(a, &[(shard, Epoch(1))], LONG)
            .await
            .unwrap()
            .is_empty()
    );
    let lost = lease(&store, 0).await;
    assert_eq!(
        (lost.owner, lost.epoch, lost.holder()),
        (Some(a), Epoch(1), None)
    );
    // Taken again, it has a new epoch, and renews at that one.
    let again = store
        .take_lease(shard, a, LONG, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again, Some(Epoch(2)));
    let renewed = store
        .renew_leases(a, &[(shard, Epoch(2))], LONG)
        .await
        .unwrap();
    assert_eq!(renewed, [shard]);
    assert!(lease(&store, 0).await.remaining_ms > 25_000);
}

pub(crate) async fn released_lease_is_taken_at_once(store: Arc<dyn Store>) {
    store.ensure_shards(3).await.unwrap();
    let (a, b) = (NodeId(1), NodeId(2));
    for shard in [0, 1] {
        assert_eq!(
            store
                .take_lease(ShardId(shard), a, LONG, LONG)
                .await
                .unwrap(),
            Some(Epoch(1))
        );
    }
    let held = [(ShardId(0), Epoch(1)), (ShardId(1), Epoch(1))];
    assert_eq!(store.release_leases(b, &held).await.unwrap(), 0, "not b's");
    let stale = [(ShardId(0), Epoch(2))];
    assert_eq!(
        store.release_leases(a, &stale).await.unwrap(),
        0,
        "not that epoch"
    );
    assert_eq!(store.release_leases(a, &[]).await.unwrap(), 0);
    let with_a_free_one = [held[0], held[1], (ShardId(2), Epoch(0))];
    assert_eq!(store.release_leases(a, &with_a_free_one).await.unwrap(), 2);
    for shard in [0, 1] {
        let free = lease(&store, shard).await;
        assert_eq!(
            (free.owner, free.epoch),
            (None, Epoch(1)),
            "the epoch stays"
        );
        assert!(free.remaining_ms <= 0, "{free:?}");
        assert_eq!(free.takeable_in(LONG), Duration::ZERO);
    }
    // No wait for expiry nor for `expired_for`; the taker raises the epoch.
    assert_eq!(
        store.take_lease(ShardId(0), b, LONG, LONG).await.unwrap(),
        Some(Epoch(2))
    );
    assert!(store.renew_leases(a, &held, LONG).await.unwrap().is_empty());
    assert_eq!(
        store.release_leases(a, &held).await.unwrap(),
        0,
        "released once"
    );
    assert_eq!(lease(&store, 0).await.owner, Some(b));
}

pub(crate) async fn racing_takers_have_one_winner(store: Arc<dyn Store>) {
    store.ensure_shards(1).await.unwrap();
    let shard = ShardId(0);
    let mut epoch = Epoch(0);
    // Round 0 races on a free shard, round 1 on a released one, round 2 on an expired one.
    for round in 0..3u32 {
        let racers: Vec<_> = (1..=8u32)
            .map(|i| {
                let store = store.clone();
                let node = NodeId(round * 100 + i);
                tokio::spawn(async move {
                    (
                        node,
                        store.take_lease(shard, node, LONG, Duration::ZERO).await,
                    )
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            let (node, r) = racer.await.expect("task panicked");
            if let Some(e) = r.unwrap_or_else(|e| panic!("round {round}: {node}: {e}")) {
                winners.push((node, e));
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let (winner, won) = winners[0];
        assert_eq!(won, Epoch(epoch.0 + 1), "round {round}");
        epoch = won;
        let held = lease(&store, 0).await;
        assert_eq!(
            (held.owner, held.epoch),
            (Some(winner), won),
            "round {round}"
        );
        match round {
            0 => assert_eq!(
                store.release_leases(winner, &[(shard, won)]).await.unwrap(),
                1
            ),
            1 => {
                // Shortened only after the race, so that a slow machine cannot let one racer's
                // lease run out before the next racer tries (which is a fair second win).
                let renewed = store.renew_leases(winner, &[(shard, won)], SHORT).await;
                assert_eq!(renewed.unwrap(), vec![shard], "round {round}");
                sleep_ms(100).await; // the SHORT lease expires
            }
            _ => {}
        }
    }
}

pub(crate) async fn ensure_shards_is_idempotent(store: Arc<dyn Store>) {
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ensure_shards(16).await })
        })
        .collect();
    for racer in racers {
        racer.await.expect("task panicked").unwrap();
    }
    assert_eq!(store.leases().await.unwrap().len(), 16);
    assert_eq!(
        store
            .take_lease(ShardId(5), NodeId(3), LONG, LONG)
            .await
            .unwrap(),
        Some(Epoch(1))
    );
    store.ensure_shards(16).await.unwrap();
    let all = store.leases().await.unwrap();
    assert_eq!(all.len(), 16);
    assert_eq!(
        (all[5].owner, all[5].epoch),
        (Some(NodeId(3)), Epoch(1)),
        "a lease survives"
    );
    for other in [8, 32] {
        let err = store.ensure_shards(other).await;
        assert!(
            matches!(err, Err(StoreError::Conflict(_))),
            "{other}: {err:?}"
        );
    }
    for bad in [0, MAX_SHARDS + 1] {
        let err = store.ensure_shards(bad).await;
        assert!(matches!(err, Err(StoreError::Other(_))), "{bad}: {err:?}");
    }
    assert_eq!(
        store.leases().await.unwrap().len(),
        16,
        "refusals add no rows"
    );
}

/// A larger table fills in chunks, in one transaction.
pub(crate) async fn ensure_shards_fills_a_large_table(store: Arc<dyn Store>) {
    store.ensure_shards(2500).await.unwrap();
    let all = store.leases().await.unwrap();
    assert_eq!(all.len(), 2500);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, l)| l.shard.0 as usize == i && l.owner.is_none())
    );
    // Renewing and releasing many leases at once crosses statement chunks too.
    let node = NodeId(4);
    let mut held = Vec::new();
    for shard in (0..2500).step_by(2).map(ShardId) {
        held.push((
            shard,
            store
                .take_lease(shard, node, LONG, LONG)
                .await
                .unwrap()
                .unwrap(),
        ));
    }
    let renewed = store.renew_leases(node, &held, LONG).await.unwrap();
    assert_eq!(renewed, held.iter().map(|h| h.0).collect::<Vec<_>>());
    assert_eq!(store.release_leases(node, &held).await.unwrap(), 1250);
}

/// Two owners renewing their halves while a third node keeps trying to take every shard: no statement
/// fails (no deadlock escapes the store), the owners keep everything, the taker gets nothing.
pub(crate) async fn renewals_and_takes_run_side_by_side(store: Arc<dyn Store>) {
    store.ensure_shards(32).await.unwrap();
    let (a, b, c) = (NodeId(1), NodeId(2), NodeId(3));
    let mut halves = [Vec::new(), Vec::new()];
    for shard in (0..32).map(ShardId) {
        let (owner, half) = if shard.0 % 2 == 0 { (a, 0) } else { (b, 1) };
        let epoch = store
            .take_lease(shard, owner, LONG, LONG)
            .await
            .unwrap()
            .unwrap();
        halves[half].push((shard, epoch));
    }
    let renewers: Vec<_> = [(a, halves[0].clone()), (b, halves[1].clone())]
        .into_iter()
        .map(|(node, held)| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let renewed = store.renew_leases(node, &held, LONG).await.unwrap();
                    assert_eq!(renewed.len(), held.len(), "{node}");
                }
            })
        })
        .collect();
    let taker = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                for shard in (0..32).map(ShardId) {
                    let r = store
                        .take_lease(shard, c, LONG, Duration::ZERO)
                        .await
                        .unwrap();
                    assert_eq!(r, None, "{shard}");
                }
            }
        })
    };
    for task in renewers.into_iter().chain([taker]) {
        task.await.expect("task panicked");
    }
    let all = store.leases().await.unwrap();
    assert!(
        all.iter()
            .all(|l| l.epoch == Epoch(1) && l.holder() != Some(c))
    );
}
