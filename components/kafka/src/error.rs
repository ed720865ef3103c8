//! [`GroupError`], the errors of the group consumer, and [`HookError`], the error a
//! user hook returned (kept typed).
//!
//! Every cause is kept typed and returned by [`std::error::Error::source`]: the
//! client's [`KafkaError`], a hook's error, the runtime's [`Error`] and the
//! supervisor's [`SupervisorError`]; none is turned into text.

use std::fmt;
use std::sync::Arc;

use rdkafka::error::KafkaError;

use super::acknowledger::Generation;
use otp_threads::Error;
use otp_threads::ExitReason;
use otp_threads::SupervisorError;

/// Errors of the group consumer: invalid settings (naming the option), Kafka client
/// failures, refused assignments and acknowledgements, and a consumer that stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GroupError {
    /// A setting of [`GroupConfig`](super::GroupConfig) is invalid.
    #[error("invalid group consumer option `{option}`: {reason}")]
    InvalidOption {
        /// The option, as named by its `GroupConfig` method.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A Kafka client operation failed.
    #[error("kafka: {action} failed: {source}")]
    Kafka {
        /// What was being done (`"create the consumer"`, `"subscribe"`, ...).
        action: &'static str,
        /// The client's error.
        source: KafkaError,
    },
    /// The `assignment_received` hook refused a partition: no worker of that
    /// assignment started and the member stopped (as Elsa's manager does).
    #[error("the assignment of {topic}/{partition} ({generation}) was refused: {source}")]
    AssignmentRefused {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The generation of the assignment.
        generation: Generation,
        /// The hook's error.
        source: HookError,
    },
    /// `Ack::AckAt(offset)` named an offset outside the batch it answered; nothing
    /// was acknowledged.
    #[error(
        "ack of {topic}/{partition} at offset {offset} refused: the batch held offsets \
         {first}..={last}"
    )]
    AckOutsideBatch {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The offset the handler acknowledged.
        offset: i64,
        /// The first offset of the batch.
        first: i64,
        /// The last offset of the batch.
        last: i64,
    },
    /// An acknowledged offset has no next offset (`i64::MAX`); nothing was
    /// acknowledged.
    #[error("ack of {topic}/{partition} at offset {offset} refused: the next offset overflows")]
    AckOverflow {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
    },
    /// The consumer's manager could not be started (the runtime is stopping, the
    /// name is taken, ...): the runtime's error.
    #[error("the group consumer failed to start: {0}")]
    Start(#[source] Error),
    /// The supervisor of the member's partition workers could not be started; the
    /// member did not start.
    #[error("the group consumer's worker supervisor failed: {0}")]
    Supervisor(#[source] SupervisorError),
    /// Stopping the member failed with a runtime error: it exited with another
    /// reason than the orderly stop while stopping ([`Error::Exited`] carries that
    /// reason), or `stop` was called from the member's own thread.
    #[error("stopping the group consumer failed: {0}")]
    Runtime(#[source] Error),
    /// The consumer stopped for another reason than an orderly stop.
    #[error("the group consumer stopped: {0}")]
    Stopped(ExitReason),
    /// The consumer did not stop within the given time.
    #[error("the group consumer did not stop in time")]
    Timeout,
}

/// The error a user hook returned, shared (so that [`GroupError`] stays `Clone`);
/// equal only to itself.
#[derive(Clone)]
pub struct HookError(pub Arc<dyn std::error::Error + Send + Sync>);

impl HookError {
    /// Wraps a hook's error.
    pub fn new(error: Box<dyn std::error::Error + Send + Sync>) -> HookError {
        HookError(Arc::from(error))
    }
}

impl PartialEq for HookError {
    fn eq(&self, other: &HookError) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The cause a variant keeps, downcast to `T`.
    fn source_as<T: std::error::Error + 'static>(error: &GroupError) -> Option<&T> {
        error.source()?.downcast_ref::<T>()
    }

    #[test]
    fn a_failed_stop_keeps_the_real_exit_reason_as_a_typed_source() {
        let exited = Error::Exited(ExitReason::Panic("terminate panicked".into()));
        let error = GroupError::Runtime(exited.clone());
        assert_eq!(source_as::<Error>(&error), Some(&exited));
        match source_as::<Error>(&error) {
            Some(Error::Exited(ExitReason::Panic(message))) => {
                assert_eq!(&**message, "terminate panicked")
            }
            other => panic!("expected the runtime's Exited(Panic), got {other:?}"),
        }
    }

    #[test]
    fn a_failed_supervisor_start_keeps_the_supervisor_error_as_a_typed_source() {
        let cause = SupervisorError::InvalidFlag {
            option: "period",
            reason: "zero".into(),
        };
        let error = GroupError::Supervisor(cause.clone());
        assert_eq!(source_as::<SupervisorError>(&error), Some(&cause));
        assert!(error.to_string().contains("period"), "{error}");
    }

    #[test]
    fn a_failed_start_keeps_the_runtime_error_as_a_typed_source() {
        let error = GroupError::Start(Error::RuntimeStopped);
        assert_eq!(source_as::<Error>(&error), Some(&Error::RuntimeStopped));
    }

    #[test]
    fn a_hook_error_keeps_the_hook_s_own_error_as_its_source() {
        let hook = HookError::new(Box::new(std::io::Error::other("disk full")));
        let error = GroupError::AssignmentRefused {
            topic: "t".into(),
            partition: 0,
            generation: Generation(1),
            source: hook,
        };
        let hook = source_as::<HookError>(&error).expect("the hook error");
        let io = hook
            .source()
            .and_then(|e| e.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(ToString::to_string).as_deref(), Some("disk full"));
    }
}
