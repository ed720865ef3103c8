//! Kafka consumer groups with one supervised worker per partition, on the otp-threads
//! runtime.
//!
//! The Rust rebuild of Elsa's group consumer (`Elsa.Group.Manager`, its
//! `WorkerSupervisor`, `Acknowledger` and `Elsa.Consumer.Worker`): a [`GroupConsumer`]
//! is one member of a Kafka consumer group. Each partition assigned to it gets a worker
//! thread, under a dynamic supervisor, that runs the user's [`Handler`] on batches of
//! that partition's messages; what the handler answers ([`Ack`]) is acknowledged to the
//! member's [`Acknowledger`] and committed to the group.
//!
//! # Behaviour
//!
//! - **Assignment.** Each assignment gets a new [`Generation`]. Each assigned partition
//!   gets its own librdkafka queue and a worker that takes messages only from it, so a
//!   slow partition holds back no other.
//! - **Acknowledgement.** [`Ack::Ack`] acknowledges the batch, [`Ack::AckAt`] up to an
//!   offset; [`Ack::NoAck`] and [`Ack::Continue`] acknowledge nothing. Acks carry the
//!   worker's generation, and acks of another generation are ignored. Acknowledged
//!   offsets are committed every commit interval (one asynchronous commit for all
//!   partitions, never one per message) and synchronously at every revocation.
//! - **Crashes.** A worker that crashes (a panic, a failed handler `init`) is restarted
//!   by its supervisor with the same generation, from the latest acknowledged offset (or
//!   from the first offset it was given, if it acknowledged nothing): unacknowledged
//!   messages are delivered again. More than 30 restarts in 5 s (configurable) stop the
//!   member with [`GroupError::HandlerKeptFailing`], naming the partition.
//! - **Revocation.** Every worker of the revoked partitions finishes its current batch
//!   and stops (killed after the worker shutdown timeout, 10 s by default), their
//!   acknowledged offsets are committed, and only then does the member give the
//!   partitions up and take its next assignment. A per-partition lock keeps even a
//!   killed worker that is still finishing a batch from overlapping with the
//!   partition's next worker: no partition is handled by two workers of one member at
//!   once.
//! - **Stop.** [`GroupConsumer::stop`] (or the runtime's shutdown) leaves the group in
//!   the same order.
//!
//! Differences from Elsa, by design: the generation is member-local (librdkafka does
//! not expose the group's); acknowledging is a shared table, not a process; `Continue`
//! and `NoAck` are the same for the group, because librdkafka's fetching does not wait
//! for acknowledgements (brod's does).
//!
//! # Module map
//!
//! | module | contents |
//! |--------|----------|
//! | [`config`] | [`GroupConfig`], [`BeginOffset`], defaults, validation |
//! | [`consumer`] | [`GroupConsumer`]: start, stop, inspect a member |
//! | [`handler`] | [`Handler`], [`Ack`], [`Message`], [`Assignment`] |
//! | [`acknowledger`] | [`Acknowledger`], [`Generation`], [`AckOutcome`] |
//! | `membership` | the assignment: a queue, a slot and a supervised worker per partition ([`WorkerInfo`]) |
//! | `partition` | the partition worker |
//! | `manager` | the member's worker: polls the consumer, commits, watches the supervisor |
//! | `context` | the librdkafka rebalance callbacks |
//! | `crashes` | recent worker failures, to name the failing partition |
//! | [`error`] | [`GroupError`] |
//!
//! # Example
//!
//! ```no_run
//! use otp_threads::Runtime;
//! use otp_threads_kafka::{Ack, BeginOffset, GroupConfig, GroupConsumer, Handler, Message};
//!
//! struct Print;
//!
//! impl Handler for Print {
//!     fn handle_messages(&mut self, messages: &[Message]) -> Ack {
//!         for m in messages {
//!             println!("{}/{}@{}: {:?}", m.topic, m.partition, m.offset, m.payload);
//!         }
//!         Ack::Ack
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new();
//! let config = GroupConfig::new(["127.0.0.1:9092"], "printers", ["events"], |_| Print)
//!     .begin_offset(BeginOffset::Earliest);
//! let consumer = GroupConsumer::start(&runtime, config)?;
//! // ...
//! consumer.stop(std::time::Duration::from_secs(30))?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod acknowledger;
pub mod backoff;
pub mod config;
pub mod consumer;
mod context;
pub mod dead_letter;
pub mod error;
pub mod events;
mod failures;
pub mod handler;
pub mod lifecycle;
mod manager;
mod membership;
mod partition;
mod partition_lock;
mod slot;
pub mod status;

pub use acknowledger::{AckOutcome, Acknowledger, Generation};
pub use backoff::RestartDelay;
pub use config::{BeginOffset, GroupConfig};
pub use consumer::GroupConsumer;
pub use dead_letter::{DeadLetter, DeadLetterAction};
pub use error::{GroupError, HookError};
pub use events::MemberEvent;
pub use handler::{Ack, Assignment, Handler, Message, OwnedMessage};
pub use lifecycle::{AssignedPartition, Lifecycle, RefusalError};
pub use status::{MemberStatus, WorkerInfo};
