//! [`Lifecycle`]: Elsa's group hooks (`assignment_received_handler`,
//! `assignments_complete_handler`, `assignments_revoked_handler`) as one trait.
//!
//! Every hook runs on the member's manager thread, inside the rebalance callback, so
//! it is ordered with the member's own work:
//!
//! 1. on an assignment, `assignment_received` for each partition, before its worker
//!    starts; an error refuses it: no worker of that assignment starts and the member
//!    stops with [`GroupError::AssignmentRefused`] (as Elsa's manager does);
//! 2. then `assignments_complete` once, with the outcome;
//! 3. on a revocation, `assignments_revoked` after the revoked partitions' workers have
//!    stopped and before their offsets are committed and the partitions are given up.
//!    Blocking in it delays the revocation: that is where to flush what the handlers
//!    buffered, and to acknowledge it through the [`Acknowledger`] it is given (the
//!    final commit takes those acks). Keep it shorter than librdkafka's
//!    `max.poll.interval.ms` (5 minutes by default), or the group drops the member.
//!
//! A panic in a hook crashes the member's manager, which then leaves the group (its
//! workers stop, acknowledged offsets are committed), as a crash of Elsa's manager
//! takes its group supervisor down.
//!
//! The same steps are also reported as [`MemberEvent`](super::MemberEvent)s.

use std::sync::Arc;

use super::acknowledger::{Acknowledger, Generation};
use super::error::GroupError;

/// A partition of an assignment, as the hooks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignedPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The generation of the assignment.
    pub generation: Generation,
}

/// The error an `assignment_received` hook returns to refuse a partition.
pub type RefusalError = Box<dyn std::error::Error + Send + Sync>;

/// The member's lifecycle hooks; every method has a do-nothing default.
pub trait Lifecycle: Send + Sync + 'static {
    /// A partition is being assigned; its worker starts once this returns `Ok`.
    fn assignment_received(&self, partition: &AssignedPartition) -> Result<(), RefusalError> {
        let _ = partition;
        Ok(())
    }

    /// Every partition of the assignment `generation` was received (and, unless
    /// `refused`, its worker started).
    fn assignments_complete(
        &self,
        generation: Generation,
        partitions: &[AssignedPartition],
        refused: Option<&GroupError>,
    ) {
        let _ = (generation, partitions, refused);
    }

    /// The workers of `partitions` have stopped; their acknowledged offsets are
    /// committed when this returns, then the partitions are given up.
    fn assignments_revoked(&self, partitions: &[AssignedPartition], acknowledger: &Acknowledger) {
        let _ = (partitions, acknowledger);
    }
}

/// The default: no hooks.
pub(crate) struct NoHooks;

impl Lifecycle for NoHooks {}
