//! Tests of the placement arithmetic.
//!
//! Tolerances come from the binomial distribution an ideal random hash gives (computed exactly, not
//! with a normal approximation): with `n` nodes each of `S` shards prefers a given node with
//! probability `1/n`, so a node's count is Binomial(S, 1/n). For S = 256 and 3 nodes that is mean
//! 85.3, standard deviation 7.54: a node holding 65 or 105 shards is normal, and a test tighter than
//! about ±4σ would fail on correct code. Each bound below says how likely an ideal hash is to fall
//! outside it.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::model::{RoomId, UserId};

fn nodes(ids: &[u32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// How many of shards `0..shards` each node prefers, in the order of `nodes`.
fn shares(nodes: &[NodeId], shards: u32) -> Vec<usize> {
    let mut counts = vec![0; nodes.len()];
    for s in 0..shards {
        let owner = preferred_owner(ShardId(s), nodes).expect("nodes is not empty");
        let i = nodes
            .iter()
            .position(|&n| n == owner)
            .expect("owner is one of the nodes");
        counts[i] += 1;
    }
    counts
}

/// The shards whose preferred owner differs between two node sets.
fn moved(before: &[NodeId], after: &[NodeId], shards: u32) -> Vec<(ShardId, NodeId, NodeId)> {
    (0..shards)
        .map(ShardId)
        .filter_map(|s| {
            let (a, b) = (preferred_owner(s, before)?, preferred_owner(s, after)?);
            (a != b).then_some((s, a, b))
        })
        .collect()
}

#[test]
fn hash_steps_match_their_published_vectors() {
    // FNV-1a 64 reference values (the FNV authors' test suite).
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    // MurmurHash3 fmix64.
    assert_eq!(fmix64(0), 0);
    assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    assert_eq!(stable_hash(b""), 0xefd0_1f60_ba99_2926);
    assert_eq!(stable_hash(b"banter"), 0x65e2_e8eb_0aee_2ba2);
}

/// Values computed by an independent implementation (Python, from the definition in the module doc):
/// a change here moves live entities between nodes of a running cluster mid-upgrade.
#[test]
fn shard_of_is_pinned() {
    let cases = [
        (EntityKey::room(RoomId(1)), 101, 933),
        (EntityKey::room(RoomId(2)), 164, 620),
        (EntityKey::room(RoomId(42)), 187, 571),
        (EntityKey::user(UserId(1)), 176, 408),
        (EntityKey::source(7), 10, 714),
        (EntityKey::room(RoomId(-1)), 243, 483),
        (EntityKey::room(RoomId(i64::MAX)), 42, 178),
        (EntityKey::user(UserId(i64::MIN)), 144, 976),
    ];
    for (key, of_256, of_1000) in cases {
        assert_eq!(shard_of(key, 256), ShardId(of_256), "{key:?}");
        assert_eq!(shard_of(key, 1000), ShardId(of_1000), "{key:?}");
    }
}

#[test]
fn preferred_owners_are_pinned() {
    let all = nodes(&[1, 2, 3, 4]);
    let cases: [(u32, [u32; 4]); 4] = [
        (0, [4, 2, 1, 3]),
        (1, [3, 4, 1, 2]),
        (7, [3, 2, 1, 4]),
        (255, [4, 2, 3, 1]),
    ];
    for (shard, order) in cases {
        assert_eq!(
            preferred_owners(ShardId(shard), &all),
            nodes(&order),
            "shard {shard}"
        );
    }
}

#[test]
fn degenerate_inputs() {
    let key = EntityKey::room(RoomId(5));
    assert_eq!(shard_of(key, 0), ShardId(0));
    assert_eq!(shard_of(key, 1), ShardId(0));
    assert!(preferred_owners(ShardId(3), &[]).is_empty());
    assert_eq!(preferred_owner(ShardId(3), &[]), None);
    // Duplicates count once.
    assert_eq!(
        preferred_owners(ShardId(3), &nodes(&[9, 9, 9])),
        nodes(&[9])
    );
    let twice = preferred_owners(ShardId(3), &nodes(&[1, 2, 1, 3, 2]));
    assert_eq!(twice, preferred_owners(ShardId(3), &nodes(&[1, 2, 3])));
}

/// Entity kinds hash apart: room 1 and user 1 are different keys.
#[test]
fn kinds_are_part_of_the_key() {
    let differ = (1..=64)
        .filter(|&id| {
            shard_of(EntityKey::room(RoomId(id)), 256) != shard_of(EntityKey::user(UserId(id)), 256)
        })
        .count();
    // Equal by chance for about 1 in 256 ids.
    assert!(differ >= 60, "{differ} of 64");
}

/// Sequential ids (how rooms and users are numbered) spread evenly: 25,600 ids over 256 shards give
/// each shard Binomial(25600, 1/256), mean 100, σ 9.98; an ideal hash falls outside [50, 150] with
/// probability 1.2e-6 per shard.
#[test]
fn sequential_ids_spread_over_the_shards() {
    for kind in [EntityKind::Room, EntityKind::User, EntityKind::Source] {
        let mut counts = [0u32; 256];
        for id in 1..=25_600 {
            counts[shard_of(EntityKey { kind, id }, 256).0 as usize] += 1;
        }
        let (min, max) = (counts.iter().min(), counts.iter().max());
        assert!(
            counts.iter().all(|&c| (50..=150).contains(&c)),
            "{kind:?}: min {min:?} max {max:?}"
        );
    }
}

/// Nodes 1, 2, 3 over 256 shards prefer 96, 95 and 65 shards: within [61, 109] (an ideal hash falls
/// outside with probability 1.2e-3 per node). Over 65,536 shards (mean 21,845, σ 121) they stay within
/// ±5σ = ±604 (2.8 %), which shows the unevenness at 256 is the sampling noise of 256 draws, not a bias.
#[test]
fn three_nodes_share_the_shards() {
    let three = nodes(&[1, 2, 3]);
    assert_eq!(shares(&three, 256), [96, 95, 65]);
    for share in shares(&three, 256) {
        assert!((61..=109).contains(&share), "{share}");
    }
    for share in shares(&three, 65_536) {
        assert!((21_241..=22_450).contains(&share), "{share}");
    }
}

/// A strategy for `n` distinct node ids.
fn distinct_nodes(n: usize) -> impl Strategy<Value = Vec<NodeId>> {
    proptest::collection::btree_set(any::<u32>(), n)
        .prop_map(|ids: BTreeSet<u32>| ids.into_iter().map(NodeId).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shard_of_is_deterministic_and_in_range(id in any::<i64>(), shards in 1u32..=4096) {
        for kind in [EntityKind::Room, EntityKind::User, EntityKind::Source] {
            let key = EntityKey { kind, id };
            let shard = shard_of(key, shards);
            prop_assert!(shard.0 < shards);
            prop_assert_eq!(shard, shard_of(key, shards));
        }
    }

    /// The order is a permutation of the nodes and does not depend on the order they are listed in.
    #[test]
    fn preferred_owners_ignore_the_listing_order(
        set in distinct_nodes(5),
        shard in any::<u32>(),
        rotate in 0usize..5,
    ) {
        let mut listed = set.clone();
        listed.rotate_left(rotate);
        listed.reverse();
        let order = preferred_owners(ShardId(shard), &set);
        prop_assert_eq!(&order, &preferred_owners(ShardId(shard), &listed));
        prop_assert_eq!(order.first().copied(), preferred_owner(ShardId(shard), &listed));
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(sorted, set);
    }

    /// Any 3 nodes share 256 shards within [41, 129]: an ideal hash falls outside with probability
    /// 6.6e-9 per node (±5.8σ), so a run of 64 cases fails by chance about once in 800,000 runs.
    #[test]
    fn any_three_nodes_are_balanced(set in distinct_nodes(3)) {
        for share in shares(&set, 256) {
            prop_assert!((41..=129).contains(&share), "{:?}", shares(&set, 256));
        }
    }

    /// A fourth node takes only shards that move to it, about a quarter of them: the count is
    /// Binomial(256, 1/4), mean 64, σ 6.9, within [24, 104] but with probability 1.4e-8.
    #[test]
    fn a_join_moves_only_the_new_nodes_share(set in distinct_nodes(4)) {
        let (before, joiner) = (&set[..3], set[3]);
        let changes = moved(before, &set, 256);
        for (shard, _, to) in &changes {
            prop_assert_eq!(*to, joiner, "{} moved elsewhere", shard);
        }
        prop_assert!((24..=104).contains(&changes.len()), "{} moved", changes.len());
    }

    /// A node that leaves gives up exactly its own shards, each to its runner-up; nothing else moves.
    #[test]
    fn a_leave_moves_only_the_leavers_shards(set in distinct_nodes(4), leaver in 0usize..4) {
        let gone = set[leaver];
        let rest: Vec<NodeId> = set.iter().copied().filter(|&n| n != gone).collect();
        for (shard, from, to) in moved(&set, &rest, 256) {
            prop_assert_eq!(from, gone, "{} moved from a staying node", shard);
            prop_assert_eq!(Some(to), preferred_owners(shard, &set).get(1).copied());
        }
        for shard in (0..256).map(ShardId) {
            if preferred_owner(shard, &set) == Some(gone) {
                prop_assert_ne!(preferred_owner(shard, &rest), Some(gone));
            }
        }
    }
}
