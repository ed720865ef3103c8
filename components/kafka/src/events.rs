//! [`MemberEvent`]: what a member reports about its partitions, on the `Receiver` of
//! [`GroupConsumer::events`](super::GroupConsumer::events).
//!
//! The channel is bounded ([`GroupConfig::event_capacity`](super::GroupConfig::event_capacity)):
//! a member never blocks on a reader that does not read. An event that finds the
//! channel full is dropped and counted
//! ([`MemberStatus::events_dropped`](super::MemberStatus::events_dropped)); every event
//! is also logged, so nothing is reported nowhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::acknowledger::Generation;
use super::error::GroupError;
use otp_threads::ExitReason;

/// Something that happened to one of the member's partitions or assignments.
#[derive(Clone, Debug, PartialEq)]
pub enum MemberEvent {
    /// A partition was assigned (after the `assignment_received` hook accepted it).
    AssignmentReceived {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The generation of the assignment.
        generation: Generation,
    },
    /// Every partition of an assignment was handled (after the `assignments_complete`
    /// hook); `refused` holds the hook's error if one refused it.
    AssignmentsComplete {
        /// The generation of the assignment.
        generation: Generation,
        /// The partitions, by topic and partition.
        partitions: Vec<(Arc<str>, i32)>,
        /// Set if an `assignment_received` hook refused a partition.
        refused: Option<GroupError>,
    },
    /// Partitions were revoked: their workers stopped, the `assignments_revoked` hook
    /// ran, and their offsets were committed.
    AssignmentsRevoked {
        /// The revoked partitions with the generation each was assigned in.
        partitions: Vec<(Arc<str>, i32, Generation)>,
    },
    /// A partition's worker failed; it is restarted after `retry_in`. The partition
    /// stalls meanwhile; the others go on.
    WorkerFailed {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The generation of the assignment.
        generation: Generation,
        /// The offset delivery resumes at (the latest ack, else the first delivered).
        resume_offset: Option<i64>,
        /// The first and last offsets of the batch in hand, if it failed in a batch.
        batch: Option<(i64, i64)>,
        /// Consecutive failures of this partition, this one included.
        attempt: u32,
        /// How long until the restart.
        retry_in: Duration,
        /// Why the worker failed.
        reason: ExitReason,
    },
    /// The partition's worker got through the batch that had failed: its failure
    /// count is back at zero.
    PartitionRecovered {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// After how many failures.
        attempts: u32,
    },
    /// The dead-letter handler got a batch that kept failing, and decided.
    DeadLettered {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The first and last offsets handed to the dead-letter handler.
        batch: (i64, i64),
        /// `true` if it skipped the batch (the group's offset moved past it).
        skipped: bool,
    },
    /// A handler's acknowledgement was refused; nothing committed changed.
    AckRefused {
        /// Why ([`GroupError::AckOutsideBatch`] or [`GroupError::AckOverflow`]).
        error: GroupError,
    },
    /// A fetch asked for an offset the broker does not have: the partition was moved to
    /// the configured begin offset (Elsa's `offset_out_of_range` resubscribe).
    OffsetOutOfRange {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// Where delivery resumes.
        resumed_at: i64,
    },
}

/// The sending side, shared by the member's threads.
pub(crate) struct EventSink {
    sender: Sender<MemberEvent>,
    receiver: Receiver<MemberEvent>,
    dropped: AtomicU64,
}

impl EventSink {
    pub(crate) fn new(capacity: usize) -> EventSink {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        EventSink {
            sender,
            receiver,
            dropped: AtomicU64::new(0),
        }
    }

    /// Sends without blocking; a full channel drops the event and counts it.
    pub(crate) fn emit(&self, event: MemberEvent) {
        match self.sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                log::debug!("member event channel full: dropped {event:?}");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub(crate) fn receiver(&self) -> Receiver<MemberEvent> {
        self.receiver.clone()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let sink = EventSink::new(1);
        let event = || MemberEvent::PartitionRecovered {
            topic: "t".into(),
            partition: 0,
            attempts: 1,
        };
        sink.emit(event());
        sink.emit(event());
        assert_eq!(sink.dropped(), 1);
        assert_eq!(sink.receiver().try_recv(), Ok(event()));
    }
}
