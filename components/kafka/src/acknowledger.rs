//! [`Acknowledger`]: the member's table of acknowledged offsets, fenced by generation.
//!
//! After Elsa's `Elsa.Group.Acknowledger`. Each assigned partition has an entry with
//! the generation of its assignment; an ack carries the generation its worker was
//! started in, and an ack from another generation is ignored, which fences off workers
//! of a revoked assignment (a late batch after a rebalance cannot commit over the next
//! owner). Accepted acks are committed to the group by the manager, periodically and
//! at every revocation; a restarted worker resumes from the latest acknowledged offset.
//!
//! It is a shared table rather than a worker: acks are a short critical section, and
//! a restart must read the latest offset even while the manager is busy.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

/// A generation: the member-local number of one assignment, new on each assignment.
///
/// librdkafka does not expose the group's generation id, so the member numbers its own
/// assignments, from 0; it serves the same purpose, fencing acks of earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Generation(pub u64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generation {}", self.0)
    }
}

/// What became of an ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded: the latest offset of the partition moved.
    Accepted,
    /// Ignored: the partition is not assigned to this member in that generation.
    /// `current` is its current generation, if it is assigned at all.
    StaleGeneration {
        /// The partition's current generation here, if it is assigned.
        current: Option<Generation>,
    },
    /// Ignored: the partition's latest offset is already past it (acks never rewind).
    Behind {
        /// The latest offset (the next offset to consume).
        latest: i64,
    },
    /// Refused: the offset was never delivered in this generation (an ack there would
    /// make the next commit skip messages). `delivered_end` is the next offset after
    /// the furthest delivered one, if any was delivered.
    NotDelivered {
        /// The next offset after the furthest delivered one.
        delivered_end: Option<i64>,
    },
    /// Refused: the offset is negative or `i64::MAX` (it has no next offset).
    InvalidOffset,
}

#[derive(Debug)]
struct Entry {
    generation: Generation,
    /// The next offset to consume after the latest accepted ack.
    latest: Option<i64>,
    /// The first offset delivered in this generation.
    first_delivered: Option<i64>,
    /// The next offset after the latest batch the handler finished (whatever it answered).
    consumed: Option<i64>,
    /// The next offset after the furthest batch delivered in this generation.
    delivered_end: Option<i64>,
    /// The latest offset handed to a commit.
    committed: Option<i64>,
}

/// Entries by topic, then partition (so that lookups by `&str` allocate nothing).
type Table = HashMap<Arc<str>, HashMap<i32, Entry>>;

/// The acknowledged offsets of a member's partitions. Cloning gives another handle to
/// the same table.
#[derive(Clone, Default)]
pub struct Acknowledger {
    table: Arc<Mutex<Table>>,
}

impl fmt::Debug for Acknowledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acknowledger")
            .field("table", &*self.table.lock())
            .finish()
    }
}

impl Acknowledger {
    /// Acknowledges `offset` (and all before it) of `topic`/`partition` for a worker of
    /// `generation`: the group's offset for the partition becomes `offset + 1` at the
    /// next commit. Acks of another generation than the partition's current one are
    /// ignored (and logged), as are acks behind the latest one; an offset never
    /// delivered in the generation, or without a next offset (`i64::MAX`, negative),
    /// is refused and changes nothing.
    pub fn ack(
        &self,
        topic: &str,
        partition: i32,
        generation: Generation,
        offset: i64,
    ) -> AckOutcome {
        let mut table = self.table.lock();
        let entry = table.get_mut(topic).and_then(|p| p.get_mut(&partition));
        let Some(entry) = entry.filter(|e| e.generation == generation) else {
            let current = table
                .get(topic)
                .and_then(|p| p.get(&partition))
                .map(|e| e.generation);
            drop(table);
            log::warn!(
                "ignoring ack of {topic}/{partition} offset {offset} from stale {generation} \
                 (current: {current:?})"
            );
            return AckOutcome::StaleGeneration { current };
        };
        let Some(next) = offset.checked_add(1).filter(|_| offset >= 0) else {
            return AckOutcome::InvalidOffset;
        };
        match entry.latest {
            Some(latest) if latest >= next => AckOutcome::Behind { latest },
            _ if entry.delivered_end.is_none_or(|end| next > end) => AckOutcome::NotDelivered {
                delivered_end: entry.delivered_end,
            },
            _ => {
                entry.latest = Some(next);
                AckOutcome::Accepted
            }
        }
    }

    /// The next offset to consume after the latest accepted ack of `topic`/`partition`
    /// (Elsa's `get_latest_offset`), if it is assigned and anything was acknowledged.
    pub fn latest_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.with_entry(topic, partition, |e| e.latest).flatten()
    }

    /// The current generation of `topic`/`partition`, if it is assigned to this member.
    pub fn generation(&self, topic: &str, partition: i32) -> Option<Generation> {
        self.with_entry(topic, partition, |e| e.generation)
    }

    /// The next offset after the latest batch handled, whatever the handler answered.
    pub fn consumed_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.with_entry(topic, partition, |e| e.consumed).flatten()
    }

    /// The group's committed offset as far as this member knows: found at assignment,
    /// then each offset this member committed.
    pub fn committed_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.with_entry(topic, partition, |e| e.committed).flatten()
    }

    fn with_entry<T>(&self, topic: &str, partition: i32, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        self.table
            .lock()
            .get(topic)
            .and_then(|p| p.get(&partition))
            .map(f)
    }

    /// Starts tracking `topic`/`partition` in `generation` (replacing any older entry),
    /// from the group's committed offset if there is one (Elsa's `set_latest_offset` at
    /// assignment): acks behind it are ignored, and a worker restarted before it acked
    /// anything resumes there.
    pub(crate) fn assign(
        &self,
        topic: &Arc<str>,
        partition: i32,
        generation: Generation,
        committed: Option<i64>,
    ) {
        self.table.lock().entry(topic.clone()).or_default().insert(
            partition,
            Entry {
                generation,
                latest: committed,
                first_delivered: None,
                consumed: None,
                delivered_end: None,
                committed,
            },
        );
    }

    /// Stops tracking `topic`/`partition` if it is still in `generation`; returns its
    /// latest offset for the final commit (committed again even if a periodic
    /// asynchronous commit took it already: that one may have failed).
    pub(crate) fn revoke(
        &self,
        topic: &str,
        partition: i32,
        generation: Generation,
    ) -> Option<i64> {
        let mut table = self.table.lock();
        let partitions = table.get_mut(topic)?;
        if partitions.get(&partition)?.generation != generation {
            return None;
        }
        partitions.remove(&partition)?.latest
    }

    /// Records a batch delivered to a worker of `generation`: its first and next offsets.
    pub(crate) fn delivered(
        &self,
        topic: &str,
        partition: i32,
        generation: Generation,
        first: i64,
        next: i64,
    ) {
        let mut table = self.table.lock();
        if let Some(entry) = table.get_mut(topic).and_then(|p| p.get_mut(&partition))
            && entry.generation == generation
        {
            entry.first_delivered.get_or_insert(first);
            entry.consumed = Some(next);
            entry.delivered_end = Some(entry.delivered_end.map_or(next, |end| end.max(next)));
        }
    }

    /// The partition was moved to `offset` (its offset was out of range): the latest
    /// offset becomes `offset`, committed at the next commit, and delivery counts from
    /// there.
    pub(crate) fn reset(&self, topic: &str, partition: i32, generation: Generation, offset: i64) {
        let mut table = self.table.lock();
        if let Some(entry) = table.get_mut(topic).and_then(|p| p.get_mut(&partition))
            && entry.generation == generation
        {
            entry.latest = Some(offset);
            entry.first_delivered = None;
            entry.consumed = None;
            entry.delivered_end = None;
        }
    }

    /// Whether anything of the partition was delivered in `generation`.
    pub(crate) fn has_delivered(
        &self,
        topic: &str,
        partition: i32,
        generation: Generation,
    ) -> bool {
        self.with_entry(topic, partition, |e| {
            e.generation == generation && e.first_delivered.is_some()
        })
        .unwrap_or(false)
    }

    /// Where a restarted worker of `generation` resumes: the latest acknowledged offset,
    /// else the first offset delivered in the generation, else `None` (nothing was
    /// delivered, so nothing needs to be read again).
    pub(crate) fn resume_offset(
        &self,
        topic: &str,
        partition: i32,
        generation: Generation,
    ) -> Option<i64> {
        let table = self.table.lock();
        let entry = table.get(topic)?.get(&partition)?;
        if entry.generation != generation {
            return None;
        }
        entry.latest.or(entry.first_delivered)
    }

    /// The accepted offsets not committed yet: `(topic, partition, generation, offset)`.
    pub(crate) fn uncommitted(&self) -> Vec<(Arc<str>, i32, Generation, i64)> {
        let table = self.table.lock();
        let mut out = Vec::new();
        for (topic, partitions) in table.iter() {
            for (partition, entry) in partitions {
                if let Some(latest) = entry.latest
                    && entry.committed != Some(latest)
                {
                    out.push((topic.clone(), *partition, entry.generation, latest));
                }
            }
        }
        out
    }

    /// Marks `offset` as handed to a commit, if the partition is still in `generation`.
    pub(crate) fn committed(
        &self,
        topic: &str,
        partition: i32,
        generation: Generation,
        offset: i64,
    ) {
        let mut table = self.table.lock();
        if let Some(entry) = table.get_mut(topic).and_then(|p| p.get_mut(&partition))
            && entry.generation == generation
        {
            entry.committed = Some(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_of_another_generation_are_ignored() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(1), None);
        acks.delivered("t", 0, Generation(1), 0, 5);
        assert_eq!(acks.ack("t", 0, Generation(1), 4), AckOutcome::Accepted);
        assert_eq!(
            acks.ack("t", 0, Generation(0), 9),
            AckOutcome::StaleGeneration {
                current: Some(Generation(1))
            }
        );
        assert_eq!(
            acks.ack("t", 1, Generation(1), 9),
            AckOutcome::StaleGeneration { current: None }
        );
        assert_eq!(acks.latest_offset("t", 0), Some(5));
    }

    #[test]
    fn the_committed_offset_at_assignment_is_the_floor_and_the_restart_point() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(0), Some(100));
        assert_eq!(acks.latest_offset("t", 0), Some(100));
        assert_eq!(acks.resume_offset("t", 0, Generation(0)), Some(100));
        assert_eq!(
            acks.ack("t", 0, Generation(0), 0),
            AckOutcome::Behind { latest: 100 }
        );
        assert!(acks.uncommitted().is_empty(), "nothing new to commit");
    }

    #[test]
    fn acks_never_rewind() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(0), None);
        acks.delivered("t", 0, Generation(0), 0, 11);
        assert_eq!(acks.ack("t", 0, Generation(0), 10), AckOutcome::Accepted);
        assert_eq!(
            acks.ack("t", 0, Generation(0), 3),
            AckOutcome::Behind { latest: 11 }
        );
        assert_eq!(acks.latest_offset("t", 0), Some(11));
    }

    #[test]
    fn acks_beyond_what_was_delivered_or_without_a_next_offset_are_refused() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(0), None);
        assert_eq!(
            acks.ack("t", 0, Generation(0), 0),
            AckOutcome::NotDelivered {
                delivered_end: None
            }
        );
        acks.delivered("t", 0, Generation(0), 10, 20);
        // A restart re-delivers from 10: the furthest delivered offset stays 19.
        acks.delivered("t", 0, Generation(0), 10, 12);
        assert_eq!(
            acks.ack("t", 0, Generation(0), 20),
            AckOutcome::NotDelivered {
                delivered_end: Some(20)
            }
        );
        assert_eq!(
            acks.ack("t", 0, Generation(0), i64::MAX),
            AckOutcome::InvalidOffset
        );
        assert_eq!(
            acks.ack("t", 0, Generation(0), -2),
            AckOutcome::InvalidOffset
        );
        assert_eq!(acks.latest_offset("t", 0), None, "nothing moved");
        assert!(acks.uncommitted().is_empty());
        assert_eq!(acks.ack("t", 0, Generation(0), 19), AckOutcome::Accepted);
        assert_eq!(acks.latest_offset("t", 0), Some(20));
    }

    #[test]
    fn a_reset_moves_the_latest_offset_even_backwards_and_it_is_committed() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(0), Some(5_000));
        acks.reset("t", 0, Generation(0), 20);
        assert_eq!(acks.latest_offset("t", 0), Some(20));
        assert_eq!(acks.uncommitted(), [(topic.clone(), 0, Generation(0), 20)]);
        acks.delivered("t", 0, Generation(0), 20, 30);
        assert_eq!(acks.ack("t", 0, Generation(0), 29), AckOutcome::Accepted);
        assert_eq!(acks.resume_offset("t", 0, Generation(0)), Some(30));
    }

    #[test]
    fn a_restart_resumes_from_the_latest_ack_else_the_first_delivered_offset() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(2), None);
        assert_eq!(acks.resume_offset("t", 0, Generation(2)), None);
        acks.delivered("t", 0, Generation(2), 7, 12);
        assert_eq!(acks.resume_offset("t", 0, Generation(2)), Some(7));
        acks.ack("t", 0, Generation(2), 9);
        assert_eq!(acks.resume_offset("t", 0, Generation(2)), Some(10));
        assert_eq!(acks.resume_offset("t", 0, Generation(1)), None);
    }

    #[test]
    fn uncommitted_offsets_are_handed_out_until_committed_and_revoke_returns_the_rest() {
        let acks = Acknowledger::default();
        let topic: Arc<str> = "t".into();
        acks.assign(&topic, 0, Generation(0), None);
        acks.assign(&topic, 1, Generation(0), None);
        acks.delivered("t", 0, Generation(0), 0, 2);
        acks.delivered("t", 1, Generation(0), 0, 3);
        acks.ack("t", 0, Generation(0), 1);
        acks.ack("t", 1, Generation(0), 2);
        let mut pending = acks.uncommitted();
        pending.sort_by_key(|p| p.1);
        assert_eq!(pending.len(), 2);
        acks.committed("t", 0, Generation(0), 2);
        assert_eq!(acks.uncommitted().len(), 1);
        assert_eq!(acks.revoke("t", 0, Generation(0)), Some(2));
        assert_eq!(acks.revoke("t", 1, Generation(1)), None, "wrong generation");
        assert_eq!(acks.revoke("t", 1, Generation(0)), Some(3));
        assert_eq!(acks.generation("t", 1), None);
    }
}
