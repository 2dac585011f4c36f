//! Placement arithmetic: which virtual shard an entity lives in, and which nodes a shard prefers.
//!
//! A cluster splits its entities (rooms, users, ingest sources) into a fixed number `S` of virtual
//! shards, `S` much larger than the number of nodes (256 by default, [`DEFAULT_SHARDS`]); a shard is
//! the unit a node leases from the store (`Store::take_lease`) and serves. Two functions, both pure:
//!
//! - [`shard_of`]: entity → shard, `stable_hash(key) mod S`. Every node of every version must agree on
//!   it forever (a disagreement puts one room on two nodes), so the hash is a fixed, documented
//!   algorithm over explicit little-endian bytes, never `std`'s `DefaultHasher` (randomly keyed per
//!   process, and free to change between Rust versions). Changing `S` moves almost every entity: `S`
//!   is fixed for the life of a cluster's database.
//! - [`preferred_owners`]: shard → nodes in order of preference, by rendezvous (highest random weight)
//!   hashing: each node scores `stable_hash(shard, node)` and the highest score wins. A node that joins
//!   takes the shards where it scores highest (about `1/n` of them, each from whichever node had it)
//!   and nothing else moves; a node that leaves gives up exactly its own shards, each to its runner-up.
//!   Preference is advice for who should try to lease a shard; the lease decides who owns it.
//!
//! The hash, [`stable_hash`], is 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`) followed by the 64-bit finaliser of MurmurHash3 (`fmix64`). FNV-1a alone mixes its
//! last bytes poorly into the low bits that `mod S` keeps; `fmix64` is a bijection that spreads every
//! input bit over the whole word. The test vectors in this module's tests pin both steps.

use crate::delivery::NodeId;

/// Shards of a cluster unless configured otherwise: many per node (a node's share of load moves in
/// steps of 1/256), few enough that a node renews all of its leases in one statement.
pub const DEFAULT_SHARDS: u32 = 256;

/// Most shards a cluster may have: each is a lease row every node reads.
pub const MAX_SHARDS: u32 = 1 << 16;

/// A virtual shard: `0..S`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u32);

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard{}", self.0)
    }
}

/// A shard's placement epoch: 0 before any node took it, one more at every change of owner. Records
/// written under a lease carry its epoch, and readers ignore records below the highest epoch they saw
/// for the shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(pub u64);

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// The lease under which a node serves a room: the room's shard and the epoch of the node's lease
/// on it. Every journal record carries the term it was written under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Term {
    /// The room's shard.
    pub shard: ShardId,
    /// The epoch of the lease.
    pub epoch: Epoch,
}

impl Term {
    /// A single node's term: shard 0, epoch 0 (no lease, nothing to fence).
    pub const SINGLE: Term = Term {
        shard: ShardId(0),
        epoch: Epoch(0),
    };
}

/// The kinds of placed entities. The tag of each is part of the hash: never renumber them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// A room (group, DM or feed): its id is the room id.
    Room,
    /// A user: its id is the user id.
    User,
    /// An ingest source (an external feed): its id is the source's configured number.
    Source,
}

impl EntityKind {
    /// The byte that stands for the kind in the hashed key.
    fn tag(self) -> u8 {
        match self {
            EntityKind::Room => 1,
            EntityKind::User => 2,
            EntityKind::Source => 3,
        }
    }
}

/// An entity that lives on one node of the cluster at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntityKey {
    /// What it is.
    pub kind: EntityKind,
    /// Its id among entities of its kind.
    pub id: i64,
}

impl EntityKey {
    /// The room `id`.
    pub fn room(id: crate::model::RoomId) -> EntityKey {
        EntityKey {
            kind: EntityKind::Room,
            id: id.0,
        }
    }

    /// The user `id`.
    pub fn user(id: crate::model::UserId) -> EntityKey {
        EntityKey {
            kind: EntityKind::User,
            id: id.0,
        }
    }

    /// The ingest source `id`.
    pub fn source(id: i64) -> EntityKey {
        EntityKey {
            kind: EntityKind::Source,
            id,
        }
    }
}

/// FNV-1a, 64 bits: offset basis and prime.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// MurmurHash3's 64-bit finaliser: a bijection with full avalanche.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The placement hash: `fmix64(fnv1a64(bytes))`. The same on every platform, version and process.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    fmix64(fnv1a64(bytes))
}

/// Returns the shard of an entity among `shards` shards: `stable_hash(kind tag ‖ id as 8 little-endian
/// bytes) mod shards`. `shards` of 0 counts as 1 (everything in shard 0).
pub fn shard_of(key: EntityKey, shards: u32) -> ShardId {
    let mut bytes = [0u8; 9];
    bytes[0] = key.kind.tag();
    bytes[1..].copy_from_slice(&key.id.to_le_bytes());
    let shard = stable_hash(&bytes) % u64::from(shards.max(1));
    // The remainder is below `shards`, a u32.
    ShardId(u32::try_from(shard).unwrap_or(0))
}

/// Returns the rendezvous weight of `node` for `shard`: `stable_hash(shard as 4 little-endian bytes ‖
/// node as 4 little-endian bytes)`.
fn weight(shard: ShardId, node: NodeId) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&shard.0.to_le_bytes());
    bytes[4..].copy_from_slice(&node.0.to_le_bytes());
    stable_hash(&bytes)
}

/// Returns `nodes` (each once) ordered by preference for `shard`, most preferred first: by
/// rendezvous weight, highest first, ties (all but impossible) by node id. The first is the shard's
/// preferred owner; the next ones take over in that order when it leaves.
pub fn preferred_owners(shard: ShardId, nodes: &[NodeId]) -> Vec<NodeId> {
    let mut scored: Vec<(u64, NodeId)> = nodes.iter().map(|&n| (weight(shard, n), n)).collect();
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.dedup_by_key(|s| s.1);
    scored.into_iter().map(|(_, n)| n).collect()
}

/// Returns the most preferred of `nodes` for `shard` (as [`preferred_owners`] orders them), or `None`
/// when there is none.
pub fn preferred_owner(shard: ShardId, nodes: &[NodeId]) -> Option<NodeId> {
    nodes
        .iter()
        .map(|&n| (weight(shard, n), n))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests;
