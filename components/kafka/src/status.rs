//! [`MemberStatus`] and [`WorkerInfo`]: what a member reports about itself and each
//! of its partitions, consumer lag included.
//!
//! The lag of a partition is its high watermark (the offset the next produced message
//! gets) minus the group's committed offset for it: how many messages the group would
//! read again, or still has to read, if the member stopped now. The high watermark is
//! librdkafka's latest figure, refreshed every
//! [`statistics_interval`](super::GroupConfig::statistics_interval).

use std::sync::Arc;
use std::time::Duration;

use super::acknowledger::Generation;
use otp_threads::Pid;

/// A partition of the member's current assignment (Elsa's `WorkerState`, with more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The generation of the assignment.
    pub generation: Generation,
    /// The latest worker's pid (`None` before the first start).
    pub pid: Option<Pid>,
    /// How many times the worker was restarted in this generation.
    pub restarts: u32,
    /// The next offset after the latest acknowledged one, if any was acknowledged.
    pub latest_offset: Option<i64>,
    /// The next offset after the latest batch handled, whatever the handler answered.
    pub consumed_offset: Option<i64>,
    /// The group's committed offset as far as this member knows: the one found at
    /// assignment, then each one it committed.
    pub committed_offset: Option<i64>,
    /// The partition's high watermark, once librdkafka reported it.
    pub high_watermark: Option<i64>,
    /// `high_watermark - committed_offset`, when both are known (never negative).
    pub lag: Option<i64>,
    /// Consecutive failures of the partition's workers (0 when healthy).
    pub failures: u32,
    /// Time left until a failed worker's restart, while one is pending.
    pub restart_in: Option<Duration>,
}

/// The member's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The latest generation assigned to the member, if any.
    pub generation: Option<Generation>,
    /// The current assignment, by topic and partition.
    pub partitions: Vec<WorkerInfo>,
    /// Events dropped because the event channel was full.
    pub events_dropped: u64,
}

impl MemberStatus {
    /// The summed lag of the partitions whose lag is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions
            .iter()
            .filter_map(|p| p.lag)
            .fold(0i64, i64::saturating_add)
    }
}

/// The lag from a high watermark and a committed offset, if both are known.
pub(crate) fn lag(high_watermark: Option<i64>, committed: Option<i64>) -> Option<i64> {
    let lag = high_watermark?.checked_sub(committed?)?;
    Some(lag.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_needs_both_figures_and_is_never_negative() {
        assert_eq!(lag(Some(100), Some(40)), Some(60));
        assert_eq!(lag(Some(100), None), None);
        assert_eq!(lag(None, Some(4)), None);
        assert_eq!(lag(Some(3), Some(5)), Some(0), "a stale watermark");
        assert_eq!(lag(Some(i64::MIN), Some(i64::MAX)), None, "no overflow");
    }
}
