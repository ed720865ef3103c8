//! The zen monitor's shared tables (zen_monitor's ETS tables, owned here by the
//! [`ZenMonitor`](crate::ZenMonitor) rather than by the Connector, so a crashed
//! Connector loses nothing).
//!
//! * `references`: every live monitor reference → its node, target and subscriber pid.
//!   The Dispatcher delivers a DOWN only if it can take the reference out of it, which
//!   is how a demonitored monitor's pending DOWN is dropped.
//! * `monitors`: per remote node, the monitors in insertion order (for nodedown fan-out
//!   in that order) with an index by target (to know the first and last per target).
//! * `compatibility`: the per-node cache of `connect` results.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use otp_threads::NodeName;
use parking_lot::Mutex;

use crate::target::{SharedSubscriber, Target, ZenRef};
use otp_threads::fast_hash::FastMap;

/// What the references table holds per live monitor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reference {
    /// `None` for a local target (an ordinary monitor held by the Local worker). An
    /// interned name: no allocation per monitor.
    pub(crate) remote: Option<NodeName>,
}

/// The sequences of one target's monitors: nearly always one, without a heap
/// allocation (a million targets would otherwise be a million small vectors to
/// allocate, and to free at a nodedown).
pub(crate) enum Sequences {
    One(u64),
    Many(Vec<u64>),
}

impl Sequences {
    fn push(&mut self, sequence: u64) {
        match self {
            Sequences::One(first) => *self = Sequences::Many(vec![*first, sequence]),
            Sequences::Many(all) => all.push(sequence),
        }
    }

    /// Removes `sequence`; `true` if none is left.
    fn remove(&mut self, sequence: u64) -> bool {
        match self {
            Sequences::One(only) => *only == sequence,
            Sequences::Many(all) => {
                all.retain(|s| *s != sequence);
                all.is_empty()
            }
        }
    }

    fn first(&self) -> Option<u64> {
        match self {
            Sequences::One(only) => Some(*only),
            Sequences::Many(all) => all.first().copied(),
        }
    }

    fn as_slice(&self) -> &[u64] {
        match self {
            Sequences::One(only) => std::slice::from_ref(only),
            Sequences::Many(all) => all,
        }
    }
}

/// One monitor on a remote target.
#[derive(Clone)]
pub(crate) struct Row {
    pub(crate) target: Target,
    pub(crate) reference: ZenRef,
    pub(crate) subscriber: SharedSubscriber,
}

/// The indexes of a node's monitors, emptied out by [`NodeMonitors::take_all`]: only
/// held to be dropped later.
#[derive(Default)]
pub(crate) struct Indexes {
    _by_target: FastMap<Target, Sequences>,
    _by_reference: FastMap<ZenRef, u64>,
}

/// The monitors of one remote node.
#[derive(Default)]
pub(crate) struct NodeMonitors {
    /// By insertion sequence.
    rows: BTreeMap<u64, Row>,
    /// Target → sequences of its monitors.
    by_target: FastMap<Target, Sequences>,
    /// Reference → sequence.
    by_reference: FastMap<ZenRef, u64>,
    next: u64,
}

impl NodeMonitors {
    /// Adds a monitor; `true` if it is the first on its target (subscribe).
    pub(crate) fn insert(&mut self, row: Row) -> bool {
        let sequence = self.next;
        self.next = self.next.wrapping_add(1);
        let first = match self.by_target.get_mut(&row.target) {
            Some(sequences) => {
                sequences.push(sequence);
                false
            }
            None => {
                self.by_target
                    .insert(row.target.clone(), Sequences::One(sequence));
                true
            }
        };
        self.by_reference.insert(row.reference, sequence);
        self.rows.insert(sequence, row);
        first
    }

    /// Removes a monitor; `Some(true)` if it was the last on its target (unsubscribe).
    pub(crate) fn remove(&mut self, reference: ZenRef) -> Option<(Target, bool)> {
        let sequence = self.by_reference.remove(&reference)?;
        let row = self.rows.remove(&sequence)?;
        let last = match self.by_target.get_mut(&row.target) {
            Some(sequences) => sequences.remove(sequence),
            None => true,
        };
        if last {
            self.by_target.remove(&row.target);
        }
        Some((row.target, last))
    }

    /// Takes every monitor of `target`, in insertion order.
    pub(crate) fn take_target(&mut self, target: &Target) -> Vec<Row> {
        let Some(sequences) = self.by_target.remove(target) else {
            return Vec::new();
        };
        sequences
            .as_slice()
            .iter()
            .filter_map(|sequence| self.rows.remove(sequence))
            .inspect(|row| {
                self.by_reference.remove(&row.reference);
            })
            .collect()
    }

    /// Takes every monitor (in insertion order: by sequence); the emptied indexes come back too, so
    /// the caller can free them after it has handed the DOWNs on (off the fan-out's
    /// path: the Dispatcher starts delivering meanwhile).
    pub(crate) fn take_all(&mut self) -> (BTreeMap<u64, Row>, Indexes) {
        let indexes = Indexes {
            _by_target: std::mem::take(&mut self.by_target),
            _by_reference: std::mem::take(&mut self.by_reference),
        };
        (std::mem::take(&mut self.rows), indexes)
    }

    /// The distinct targets, in the order of their first monitor.
    pub(crate) fn targets(&self) -> Vec<Target> {
        self.rows
            .iter()
            .filter(|(sequence, row)| {
                self.by_target.get(&row.target).and_then(Sequences::first) == Some(**sequence)
            })
            .map(|(_, row)| row.target.clone())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Every reference held by the subscriber `pid`.
    pub(crate) fn subscriber_references(&self, pid: otp_threads::Pid) -> Vec<ZenRef> {
        self.rows
            .values()
            .filter(|row| row.subscriber.pid() == pid)
            .map(|row| row.reference)
            .collect()
    }

    /// The references held on `target` by the subscriber `pid`.
    pub(crate) fn references(&self, target: &Target, pid: otp_threads::Pid) -> Vec<ZenRef> {
        self.by_target
            .get(target)
            .map(Sequences::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| self.rows.get(s))
            .filter(|row| row.subscriber.pid() == pid)
            .map(|row| row.reference)
            .collect()
    }
}

/// A cached `connect` result (zen_monitor's `Nodes` table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cached {
    Compatible,
    Incompatible { until: Instant, attempt: u32 },
    Unavailable,
}

/// What `cached_compatibility` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachedCompatibility {
    /// No entry.
    Miss,
    /// The Proxy answered `pong`.
    Compatible,
    /// The Proxy did not answer `pong`; the penalty has not expired.
    Incompatible,
    /// The penalty after that attempt has expired: the next sweep pings again.
    Expired(u32),
    /// The node is not connected (or went down).
    Unavailable,
}

/// The effective compatibility: only a positive answer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compatibility {
    /// Monitors go through the remote Proxy.
    Compatible,
    /// Monitors fire `nodedown` at the next sweep.
    Incompatible,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) references: Mutex<FastMap<ZenRef, Reference>>,
    /// Held from taking a DOWN's reference until the DOWN is handed over: a
    /// `demonitor` with flush that finds its reference taken waits on it, so the DOWN
    /// is in the subscriber's mailbox when it looks there.
    pub(crate) delivery: Mutex<()>,
    pub(crate) monitors: Mutex<HashMap<String, NodeMonitors>>,
    pub(crate) compatibility: Mutex<HashMap<String, Cached>>,
}

impl Tables {
    pub(crate) fn cached(&self, node: &str, now: Instant) -> CachedCompatibility {
        match self.compatibility.lock().get(node) {
            None => CachedCompatibility::Miss,
            Some(Cached::Compatible) => CachedCompatibility::Compatible,
            Some(Cached::Unavailable) => CachedCompatibility::Unavailable,
            Some(Cached::Incompatible { until, attempt }) if *until < now => {
                CachedCompatibility::Expired(*attempt)
            }
            Some(Cached::Incompatible { .. }) => CachedCompatibility::Incompatible,
        }
    }

    pub(crate) fn mark(&self, node: &str, cached: Cached) {
        self.compatibility.lock().insert(node.to_owned(), cached);
    }
}

/// The penalty after `attempt` failed pings: 1 s·2^attempt, at most 60 s.
pub fn penalty(attempt: u32) -> std::time::Duration {
    const BASE_MS: u64 = 1_000;
    const MAX_MS: u64 = 60_000;
    // ceil(log2(60_000)) = 16: beyond it the cap holds anyway.
    let exponent = attempt.min(16);
    let millis = BASE_MS
        .checked_mul(1u64 << exponent)
        .map_or(MAX_MS, |m| m.min(MAX_MS));
    std::time::Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_doubles_from_two_seconds_and_caps_at_sixty() {
        let seconds: Vec<u64> = (1..=8).map(|a| penalty(a).as_secs()).collect();
        assert_eq!(seconds, vec![2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(penalty(u32::MAX).as_secs(), 60);
    }
}
