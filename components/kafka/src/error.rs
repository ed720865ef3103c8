//! [`GroupError`], the errors of the group consumer.

use rdkafka::error::KafkaError;

use otp_threads::Error;
use otp_threads::ExitReason;

/// Errors of the group consumer: invalid settings (naming the option), Kafka client
/// failures, a handler that kept failing, and a consumer that stopped otherwise.
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
    /// Worker crashes exceeded the restart intensity: the consumer stopped. Names the
    /// partition whose handler failed most often within the period (the last to fail on
    /// a tie).
    #[error(
        "the handler of {topic}/{partition} kept failing: more than {max_restarts} worker \
         restarts within {period:?}; last failure: {last_reason}"
    )]
    HandlerKeptFailing {
        /// The topic of the failing partition.
        topic: String,
        /// The failing partition.
        partition: i32,
        /// The restart intensity: at most this many restarts...
        max_restarts: u32,
        /// ...within this period.
        period: std::time::Duration,
        /// The exit reason of the partition's last failed worker.
        last_reason: ExitReason,
    },
    /// The consumer's manager could not be started (the runtime is stopping, ...).
    #[error("the group consumer failed to start: {0}")]
    Start(Error),
    /// The consumer stopped for another reason than an orderly stop.
    #[error("the group consumer stopped: {0}")]
    Stopped(ExitReason),
    /// The consumer did not stop within the given time.
    #[error("the group consumer did not stop in time")]
    Timeout,
}
