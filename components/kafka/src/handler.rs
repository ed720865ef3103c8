//! [`Handler`]: the user code a partition worker runs, and what it answers ([`Ack`]).

use std::sync::Arc;

use super::acknowledger::Generation;
use otp_threads::ExitReason;

/// One Kafka message, borrowed from the consumer for the length of a
/// [`Handler::handle_messages`] call (no copy is made); [`to_owned`](Self::to_owned)
/// keeps one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The message's offset in its partition.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The payload, if any.
    pub payload: Option<&'a [u8]>,
    /// The timestamp in milliseconds since the epoch, if the broker gave one.
    pub timestamp: Option<i64>,
}

impl Message<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> OwnedMessage {
        OwnedMessage {
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
            key: self.key.map(<[u8]>::to_vec),
            payload: self.payload.map(<[u8]>::to_vec),
            timestamp: self.timestamp,
        }
    }
}

/// An owned copy of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedMessage {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The payload, if any.
    pub payload: Option<Vec<u8>>,
    /// The timestamp in milliseconds since the epoch, if any.
    pub timestamp: Option<i64>,
}

/// What a handler answers for a batch (Elsa's `handle_messages` return values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Acknowledge the whole batch (`{:ack, state}`): the group's offset moves past its
    /// last message.
    Ack,
    /// Acknowledge up to and including this offset (`{:ack, offset, state}`); the group's
    /// offset becomes `offset + 1`. The offset must be one of the batch's: one outside
    /// it is refused ([`GroupError::AckOutsideBatch`](super::GroupError::AckOutsideBatch)
    /// on the member's events and in the log) and changes nothing. An offset below the
    /// latest acknowledged one is ignored: acknowledging never rewinds the stream.
    AckAt(i64),
    /// Acknowledge nothing (`{:no_ack, state}`): the next batch is delivered, but the
    /// group's offset stays where it was, so a restarted worker or the partition's next
    /// owner delivers these messages again. No redelivery happens otherwise.
    NoAck,
    /// Go on without acknowledging (`{:continue, state}`). In Elsa this advances the
    /// brod consumer's flow-control window only; librdkafka fetches without waiting for
    /// acknowledgements, so for the group this is the same as [`NoAck`](Self::NoAck).
    /// The worker's record of consumed messages
    /// ([`WorkerInfo::consumed_offset`](super::WorkerInfo::consumed_offset)) does move.
    Continue,
}

/// What a handler is started for: one partition in one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The generation of the assignment (kept across restarts of the worker).
    pub generation: Generation,
    /// Where delivery resumes: `None` for the first worker of an assignment (the group's
    /// committed offset, or the begin-offset policy), `Some(offset)` for a restarted
    /// worker (the latest acknowledged offset, or the first offset delivered in this
    /// generation if nothing was acknowledged).
    pub begin_offset: Option<i64>,
    /// How many workers ran this assignment before this one (0 for the first).
    pub restarts: u32,
}

/// The user code of a partition worker (Elsa's `Elsa.Consumer.MessageHandler`).
///
/// One handler value is made per worker by the consumer's handler factory, so a
/// restarted worker starts from a fresh handler. Every callback runs on the worker's own
/// thread and may block; a panic in any of them crashes the worker, which the member
/// restarts after its restart delay from the latest acknowledged offset. Only that
/// partition waits.
pub trait Handler: Send + 'static {
    /// Runs on the worker's thread before the first batch. An error crashes the worker
    /// (it is restarted after its delay), as a failing `init` does in Elsa.
    fn init(&mut self, assignment: &Assignment) -> Result<(), Box<dyn std::error::Error>> {
        let _ = assignment;
        Ok(())
    }

    /// Handles a batch of messages of the worker's partition, in offset order.
    fn handle_messages(&mut self, messages: &[Message<'_>]) -> Ack;

    /// Runs when the worker stops in an orderly way (revocation, shutdown, or a crash of
    /// `handle_messages`, after which the handler's state may be inconsistent). Not run
    /// for a worker killed after its shutdown timeout.
    fn terminate(&mut self, reason: &ExitReason) {
        let _ = reason;
    }
}

/// Makes the handler of each worker.
pub(crate) type HandlerFactory = Arc<dyn Fn(&Assignment) -> Box<dyn Handler> + Send + Sync>;
