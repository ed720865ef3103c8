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
//! - **Assignment.** Each assignment gets a new [`Generation`]. Every partition is
//!   positioned by the member itself: at the group's committed offset, else at the
//!   [`BeginOffset`] (earliest, latest, or an explicit offset). The
//!   [`Lifecycle::assignment_received`] hook sees each partition first (an error
//!   refuses the assignment and stops the member), then each partition gets its own
//!   librdkafka queue and a worker that takes messages only from it, so a slow
//!   partition holds back no other; [`Lifecycle::assignments_complete`] follows.
//! - **Acknowledgement.** [`Ack::Ack`] acknowledges the batch, [`Ack::AckAt`] up to an
//!   offset of the batch; [`Ack::NoAck`] and [`Ack::Continue`] acknowledge nothing. An
//!   `AckAt` outside the batch, or an offset without a successor (`i64::MAX`), is
//!   refused: a [`GroupError`] on the member's events, nothing committed changes. Acks
//!   carry the worker's generation, and acks of another generation are ignored.
//!   Acknowledged offsets are committed every commit interval (one asynchronous
//!   commit for all partitions, never one per message) and synchronously at every
//!   revocation.
//! - **Failures are the partition's.** A worker that fails (a panic, a failed handler
//!   `init`) is restarted by the member with the same generation, from the latest
//!   acknowledged offset (or from the first offset it was given, if it acknowledged
//!   nothing), after a delay that doubles with each consecutive failure up to a cap
//!   ([`GroupConfig::restart_delay`], Elsa's `delay`). Only that partition stalls; the
//!   others go on, and the member never stops because of it. Each failure is logged
//!   naming topic, partition and offsets, and sent as [`MemberEvent::WorkerFailed`] on
//!   [`GroupConsumer::events`]. Opt-in, a dead-letter handler
//!   ([`GroupConfig::dead_letter`]) gets a batch that failed N times and may skip it.
//! - **No wedged partition.** A worker holds its partition's lock while it handles a
//!   batch, so a stopping worker still finishing one keeps the next worker waiting —
//!   but a killed worker's lock is abandoned, and no worker waits longer than the
//!   worker shutdown timeout: a handler that never returns costs one stuck thread, not
//!   the partition.
//! - **Out of range.** An offset the broker does not have (a fetch error, or a start
//!   beyond the high watermark while nothing arrives) moves the partition to the begin
//!   offset, clamped into the log, reported as [`MemberEvent::OffsetOutOfRange`]
//!   (Elsa's `offset_out_of_range` resubscribe).
//! - **Revocation.** Every worker of the revoked partitions finishes its current batch
//!   and stops (killed after the worker shutdown timeout, 10 s by default), the
//!   [`Lifecycle::assignments_revoked`] hook runs (where buffered work is flushed and
//!   acknowledged; blocking there delays the revocation), their acknowledged offsets
//!   are committed, and only then does the member give the partitions up.
//! - **Status.** [`GroupConsumer::status`]: per partition the worker, its restarts and
//!   failures, the latest acknowledged, consumed and committed offsets, the high
//!   watermark and the consumer lag (high watermark minus committed).
//! - **Stop.** [`GroupConsumer::stop`] (or the runtime's shutdown) leaves the group in
//!   the same order.
//!
//! Differences from Elsa, by design: the generation is member-local (librdkafka does
//! not expose the group's); acknowledging is a shared table, not a process; `Continue`
//! and `NoAck` are the same for the group, because librdkafka's fetching does not wait
//! for acknowledgements (brod's does); the restart delay is exponential rather than
//! Elsa's fixed `delay`; lifecycle hooks are a trait rather than three functions.
//!
//! # Module map
//!
//! | module | contents |
//! |--------|----------|
//! | [`config`] | [`GroupConfig`], [`BeginOffset`], defaults, validation |
//! | [`consumer`] | [`GroupConsumer`]: start, stop, inspect a member |
//! | [`handler`] | [`Handler`], [`Ack`], [`Message`], [`Assignment`] |
//! | [`lifecycle`] | [`Lifecycle`]: the assignment and revocation hooks |
//! | [`dead_letter`] | [`DeadLetter`], [`DeadLetterAction`] |
//! | [`events`] | [`MemberEvent`]: what the member reports |
//! | [`status`] | [`MemberStatus`], [`WorkerInfo`], the lag |
//! | [`backoff`] | [`RestartDelay`] |
//! | [`acknowledger`] | [`Acknowledger`], [`Generation`], [`AckOutcome`] |
//! | `membership` | the assignment: slots, workers, failures and restarts, revocation, commits |
//! | `slot` | one assigned partition in one generation, shared by its worker incarnations |
//! | `partition` | the partition worker |
//! | `partition_lock` | the per-partition lock that a killed worker cannot keep |
//! | `failures` | a partition's consecutive failures |
//! | `manager` | the member's worker: polls the consumer, commits, restarts, watches the supervisor |
//! | `context` | the librdkafka rebalance and statistics callbacks |
//! | [`error`] | [`GroupError`], [`HookError`] |
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
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
//!     .begin_offset(BeginOffset::Earliest)
//!     .restart_delay(Duration::from_millis(500), Duration::from_secs(30));
//! let consumer = GroupConsumer::start(&runtime, config)?;
//! for event in consumer.events().try_iter() {
//!     println!("{event:?}");
//! }
//! println!("lag: {}", consumer.status().total_lag());
//! consumer.stop(Duration::from_secs(30))?;
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
