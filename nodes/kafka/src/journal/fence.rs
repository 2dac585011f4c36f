//! Fences: how the journal keeps a former owner's late writes out of every reader's view.
//!
//! A node that takes shards writes one fence record to every partition of the topic (header
//! [`FENCE_HEADER`], value `banter.v1.JournalFence`: the shards and their new epochs) before its first
//! append under them, and waits until the broker acknowledged each. From there on in that partition,
//! a record of one of those shards under a lower epoch was written by a former owner after it lost
//! the shard (a paused process whose producer woke up): every reader ignores it. Readers agree on each
//! record because they judge it by the fences *before it in the log*:
//! - the persister reads the log in order; it starts a partition from the fences stored for it
//!   ([`Store::journal_fences`]) and stores the fences it reads ([`Store::raise_journal_fences`])
//!   before it commits offsets past them, so the stored fences always cover the committed offset;
//! - a room's tail reader starts at the committed offset from the stored fences, read after the
//!   offset, and applies the fence records it scans.
//!
//! A record never carries an epoch above its shard's last fence in its partition (its writer fenced
//! every partition before its first append), so the fences alone are the highest epoch seen.
//!
//! [`Store::journal_fences`]: banter_actors::ports::Store::journal_fences
//! [`Store::raise_journal_fences`]: banter_actors::ports::Store::raise_journal_fences

use std::collections::HashMap;

use banter_actors::ports::JournalFence;
use banter_actors::shard::{Epoch, ShardId, Term};
use prost::Message as _;
use rdkafka::message::Headers;

use super::record::RecordError;

/// Header that marks a fence record (its value is ignored).
pub(crate) const FENCE_HEADER: &str = "banter-fence";

/// Key of fence records (they belong to no room).
pub(crate) const FENCE_KEY: &[u8] = b"fence";

/// Most terms one fence record carries: more than any shard count allows.
const MAX_TERMS: usize = banter_actors::shard::MAX_SHARDS as usize;

/// Tells whether a record with these headers is a fence.
pub(crate) fn is_fence(headers: Option<&impl Headers>) -> bool {
    headers.is_some_and(|h| h.iter().any(|h| h.key == FENCE_HEADER))
}

/// Returns the value of a fence record for `terms`.
pub(crate) fn encode(terms: &[Term]) -> Vec<u8> {
    banter_proto::v1::JournalFence {
        terms: terms
            .iter()
            .map(|t| banter_proto::v1::FenceTerm {
                shard: t.shard.0,
                epoch: t.epoch.0,
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes the value of a fence record.
pub(crate) fn decode(value: Option<&[u8]>) -> Result<Vec<Term>, RecordError> {
    let value = value.ok_or_else(|| RecordError::Undecodable("fence has no value".into()))?;
    let fence = banter_proto::v1::JournalFence::decode(value)
        .map_err(|e| RecordError::Undecodable(format!("fence: {e}")))?;
    if fence.terms.len() > MAX_TERMS {
        return Err(RecordError::Invalid(format!(
            "fence of {} shards",
            fence.terms.len()
        )));
    }
    Ok(fence
        .terms
        .into_iter()
        .map(|t| Term {
            shard: ShardId(t.shard),
            epoch: Epoch(t.epoch),
        })
        .collect())
}

/// The fences of some partitions: per (partition, shard), the highest epoch fenced so far.
#[derive(Debug, Default)]
pub(crate) struct Fences {
    epochs: HashMap<(i32, u32), u64>,
    /// Partitions whose stored fences were loaded.
    loaded: std::collections::HashSet<i32>,
}

impl Fences {
    /// Tells whether `partition`'s stored fences were loaded (see [`Fences::load`]).
    pub(crate) fn loaded(&self, partition: i32) -> bool {
        self.loaded.contains(&partition)
    }

    /// Starts `partition` from its stored fences.
    pub(crate) fn load(&mut self, partition: i32, stored: &[(ShardId, Epoch)]) {
        for &(shard, epoch) in stored {
            self.raise(partition, Term { shard, epoch });
        }
        self.loaded.insert(partition);
    }

    /// Forgets `partition` (revoked: whoever reads it next starts from the store).
    pub(crate) fn forget(&mut self, partition: i32) {
        self.epochs.retain(|(p, _), _| *p != partition);
        self.loaded.remove(&partition);
    }

    /// Tells whether a record of `term` at this point of `partition` counts: its epoch is not below
    /// its shard's fence.
    pub(crate) fn admits(&self, partition: i32, term: Term) -> bool {
        self.epochs
            .get(&(partition, term.shard.0))
            .is_none_or(|&fenced| term.epoch.0 >= fenced)
    }

    /// Applies a fence at this point of `partition`; returns it when it raised the shard's fence.
    pub(crate) fn raise(&mut self, partition: i32, term: Term) -> Option<JournalFence> {
        let fenced = self.epochs.entry((partition, term.shard.0)).or_insert(0);
        if term.epoch.0 <= *fenced {
            return None;
        }
        *fenced = term.epoch.0;
        Some(JournalFence {
            partition,
            shard: term.shard,
            epoch: term.epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(shard: u32, epoch: u64) -> Term {
        Term {
            shard: ShardId(shard),
            epoch: Epoch(epoch),
        }
    }

    #[test]
    fn a_fence_shuts_out_lower_epochs_of_its_shard_in_its_partition_only() {
        let mut f = Fences::default();
        assert!(f.admits(0, term(5, 1)) && f.admits(0, Term::SINGLE));
        assert_eq!(
            f.raise(0, term(5, 3)),
            Some(JournalFence {
                partition: 0,
                shard: ShardId(5),
                epoch: Epoch(3)
            })
        );
        assert!(!f.admits(0, term(5, 2)), "the former owner's late write");
        assert!(f.admits(0, term(5, 3)) && f.admits(0, term(5, 4)));
        assert!(f.admits(0, term(6, 1)), "another shard");
        assert!(f.admits(1, term(5, 2)), "another partition");
        // Lower or equal fences change nothing and are not raises.
        assert_eq!(f.raise(0, term(5, 2)), None);
        assert_eq!(f.raise(0, term(5, 3)), None);
        assert_eq!(f.raise(0, Term::SINGLE), None);
        assert!(
            !f.admits(0, term(5, 0)),
            "a single node's records under a fence"
        );
    }

    #[test]
    fn load_and_forget_per_partition() {
        let mut f = Fences::default();
        assert!(!f.loaded(2));
        f.load(2, &[(ShardId(1), Epoch(4)), (ShardId(9), Epoch(2))]);
        f.load(3, &[]);
        assert!(f.loaded(2) && f.loaded(3));
        assert!(!f.admits(2, term(1, 3)) && f.admits(2, term(9, 2)));
        f.raise(3, term(1, 8));
        f.forget(2);
        assert!(!f.loaded(2) && f.admits(2, term(1, 3)));
        assert!(f.loaded(3) && !f.admits(3, term(1, 7)));
    }

    #[test]
    fn fence_values_round_trip_and_bad_ones_are_refused() {
        let terms = vec![term(0, 1), term(255, u64::MAX)];
        assert_eq!(decode(Some(&encode(&terms))).expect("decodes"), terms);
        assert_eq!(decode(Some(&encode(&[]))).expect("decodes"), []);
        assert!(matches!(decode(None), Err(RecordError::Undecodable(_))));
        assert!(matches!(
            decode(Some(b"\xff\xff")),
            Err(RecordError::Undecodable(_))
        ));
        let many: Vec<_> = (0..=MAX_TERMS as u32).map(|s| term(s, 1)).collect();
        assert!(matches!(
            decode(Some(&encode(&many))),
            Err(RecordError::Invalid(_))
        ));
    }
}
