//! [`Slot`]: one assigned partition in one generation — what every worker incarnation
//! for it shares — and [`Shared`], what every slot of a member shares.
//!
//! Kept by the member's table and by the worker's child spec, so that a restart finds
//! the queue, the acknowledged offsets and the failure record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::BaseConsumer;
use rdkafka::consumer::base_consumer::PartitionQueue;

use super::acknowledger::{Acknowledger, Generation};
use super::config::BeginOffset;
use super::context::GroupContext;
use super::dead_letter::DeadLetterPolicy;
use super::events::EventSink;
use super::failures::Failures;
use super::handler::HandlerFactory;
use super::partition_lock::PartitionLock;
use otp_threads::Pid;

/// Settings and channels every partition worker of a member uses.
pub(crate) struct Shared {
    pub(crate) acknowledger: Acknowledger,
    pub(crate) factory: HandlerFactory,
    pub(crate) max_batch: usize,
    pub(crate) begin_offset: BeginOffset,
    pub(crate) dead_letter: Option<DeadLetterPolicy>,
    pub(crate) events: Arc<EventSink>,
    /// How long a worker waits for its partition's lock before abandoning it.
    pub(crate) lock_bound: Duration,
    /// How long a start must be seen beyond the high watermark to count as out of
    /// range (a few statistics intervals, at least 2 s: longer than a fetch takes).
    pub(crate) out_of_range_confirm: Duration,
}

/// Watermark not known yet.
const UNKNOWN: i64 = -1;

/// One assigned partition in one generation.
pub(crate) struct Slot {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) generation: Generation,
    pub(crate) queue: PartitionQueue<GroupContext>,
    pub(crate) consumer: Arc<BaseConsumer<GroupContext>>,
    pub(crate) shared: Arc<Shared>,
    /// Set when the partition is revoked: the worker stops (normally) before its next
    /// batch, and a worker started after this stops before its first.
    pub(crate) revoked: AtomicBool,
    /// The partition's lock, for the member's lifetime.
    pub(crate) lock: Arc<PartitionLock>,
    /// The pid of the latest worker started for this slot.
    pub(crate) worker: Mutex<Option<Pid>>,
    /// How many workers were started for this slot.
    pub(crate) starts: AtomicU32,
    /// The first and last offsets of the batch being handled, while one is.
    pub(crate) in_hand: Mutex<Option<(i64, i64)>>,
    /// The consecutive failures of the partition's workers.
    pub(crate) failures: Mutex<Failures>,
    /// The latest high watermark librdkafka reported, or [`UNKNOWN`].
    high_watermark: AtomicI64,
    /// The latest log start offset librdkafka reported, or [`UNKNOWN`].
    low_watermark: AtomicI64,
}

impl Slot {
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        generation: Generation,
        queue: PartitionQueue<GroupContext>,
        consumer: Arc<BaseConsumer<GroupContext>>,
        shared: Arc<Shared>,
        lock: Arc<PartitionLock>,
    ) -> Slot {
        Slot {
            topic,
            partition,
            generation,
            queue,
            consumer,
            shared,
            revoked: AtomicBool::new(false),
            lock,
            worker: Mutex::new(None),
            starts: AtomicU32::new(0),
            in_hand: Mutex::new(None),
            failures: Mutex::new(Failures::default()),
            high_watermark: AtomicI64::new(UNKNOWN),
            low_watermark: AtomicI64::new(UNKNOWN),
        }
    }

    pub(crate) fn acknowledger(&self) -> &Acknowledger {
        &self.shared.acknowledger
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    /// Records librdkafka's figures; negative ones mean "not known".
    pub(crate) fn set_watermarks(&self, low: i64, high: i64) {
        if high >= 0 {
            self.high_watermark.store(high, Ordering::Release);
        }
        if low >= 0 {
            self.low_watermark.store(low, Ordering::Release);
        }
    }

    pub(crate) fn high_watermark(&self) -> Option<i64> {
        Some(self.high_watermark.load(Ordering::Acquire)).filter(|o| *o >= 0)
    }

    pub(crate) fn low_watermark(&self) -> Option<i64> {
        Some(self.low_watermark.load(Ordering::Acquire)).filter(|o| *o >= 0)
    }
}
