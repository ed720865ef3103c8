//! The dead-letter handler: an opt-in way past a batch that keeps failing.
//!
//! With [`GroupConfig::dead_letter`](super::GroupConfig::dead_letter), once a
//! partition's worker has failed `attempts` times in a row on the same batch, the next
//! worker does not hand that batch to the handler again: it reads the messages from
//! the resume offset through the last offset of the failing batch and gives them,
//! copied, to the dead-letter handler. The handler's [`DeadLetterAction`] decides:
//! `Skip` acknowledges through the batch's last offset (the group's offset moves past
//! it) and delivery goes on after it; `Retry` leaves every offset where it was and
//! hands the batch to the handler again (a further failure is counted and comes back
//! to the dead-letter handler). A panicking dead-letter handler is a failure of the
//! worker, like any other.
//!
//! A worker that fails in `init` fails on no batch: there is nothing to skip, so it is
//! only restarted (with its delay).

use std::sync::Arc;

use super::acknowledger::Generation;
use super::handler::OwnedMessage;
use otp_threads::ExitReason;

/// What the dead-letter handler is given.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The generation of the assignment.
    pub generation: Generation,
    /// How many times in a row the worker failed on this batch.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub reason: &'a ExitReason,
    /// The messages from the resume offset through the failing batch's last offset.
    pub messages: &'a [OwnedMessage],
}

/// What the dead-letter handler decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Acknowledge the batch and go on after it.
    Skip,
    /// Change nothing: hand the batch to the handler again.
    Retry,
}

/// The dead-letter settings: after how many failures, and the handler.
#[derive(Clone)]
pub(crate) struct DeadLetterPolicy {
    pub(crate) attempts: u32,
    pub(crate) handler: Arc<dyn Fn(&DeadLetter<'_>) -> DeadLetterAction + Send + Sync>,
}
