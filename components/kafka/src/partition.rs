//! [`PartitionWorker`]: the supervised worker of one assigned partition, and its
//! [`Slot`], the assignment state that outlives each worker incarnation.
//!
//! After Elsa's `Elsa.Consumer.Worker`. The worker takes messages only from its
//! partition's own librdkafka queue ([`PartitionQueue`]), so a slow handler holds back
//! its own partition and no other. It traps exits, so a stop from its supervisor (or a
//! revocation) waits for the batch in hand: the stop is handled between batches.
//!
//! Its loop is a message to itself per batch (not a `Step::Continue` chain), so that
//! stops, exit signals and calls get their turn between batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::Offset;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message as _, Timestamp};

use super::acknowledger::{Acknowledger, Generation};
use super::context::GroupContext;
use super::handler::{Ack, Assignment, Handler, HandlerFactory, Message};
use otp_threads::ExitReason;
use otp_threads::Pid;
use otp_threads::{Context, Info, Step, Worker, WorkerRef};

/// How long one poll of the partition queue waits for a first message: the bound on
/// how late an idle worker notices a stop.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long a restarted worker waits for its seek to the resume offset.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// One assigned partition in one generation: what every worker incarnation for it
/// shares. Kept by the member's table and by the worker's child spec, so a restart
/// (started by the supervisor) finds the queue and the acknowledged offset.
pub(crate) struct Slot {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) generation: Generation,
    pub(crate) queue: PartitionQueue<GroupContext>,
    pub(crate) consumer: Arc<BaseConsumer<GroupContext>>,
    pub(crate) acknowledger: Acknowledger,
    pub(crate) factory: HandlerFactory,
    pub(crate) max_batch: usize,
    /// Set when the partition is revoked: the worker stops (normally) before its next
    /// batch, and a worker started after this stops before its first.
    pub(crate) revoked: AtomicBool,
    /// Held while a batch is taken and handled; one lock per (topic, partition) for the
    /// member's lifetime, so that even a killed worker still finishing its batch cannot
    /// overlap with the partition's next worker.
    pub(crate) busy: Arc<Mutex<()>>,
    /// The pid of the latest worker started for this slot.
    pub(crate) worker: Mutex<Option<Pid>>,
    /// How many workers were started for this slot.
    pub(crate) starts: AtomicU32,
}

impl Slot {
    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

/// The worker's only message to itself: take and handle the next batch.
pub(crate) struct Poll;

/// The worker of one partition.
pub(crate) struct PartitionWorker {
    slot: Arc<Slot>,
    begin_offset: Option<i64>,
    restarts: u32,
    handler: Option<Box<dyn Handler>>,
    me: Option<WorkerRef<PartitionWorker>>,
}

impl PartitionWorker {
    pub(crate) fn new(slot: Arc<Slot>, begin_offset: Option<i64>, restarts: u32) -> Self {
        PartitionWorker {
            slot,
            begin_offset,
            restarts,
            handler: None,
            me: None,
        }
    }

    /// Seeks back to the resume offset (a restart) and starts the handler.
    fn start_handler(&mut self) -> Result<(), ExitReason> {
        let slot = &self.slot;
        if let Some(offset) = self.begin_offset {
            log::info!(
                "worker of {}/{} ({}) restarted: resuming at offset {offset}",
                slot.topic,
                slot.partition,
                slot.generation
            );
            slot.consumer
                .seek(
                    &slot.topic,
                    slot.partition,
                    Offset::Offset(offset),
                    SEEK_TIMEOUT,
                )
                .map_err(|e| {
                    ExitReason::error(format!(
                        "seeking {}/{} to {offset} failed: {e}",
                        slot.topic, slot.partition
                    ))
                })?;
        }
        let assignment = Assignment {
            topic: slot.topic.clone(),
            partition: slot.partition,
            generation: slot.generation,
            begin_offset: self.begin_offset,
            restarts: self.restarts,
        };
        let mut handler = (slot.factory)(&assignment);
        handler.init(&assignment).map_err(|e| {
            ExitReason::error(format!(
                "handler init of {}/{} failed: {e}",
                slot.topic, slot.partition
            ))
        })?;
        self.handler = Some(handler);
        Ok(())
    }

    fn step(&mut self) -> Step<Self> {
        if self.slot.is_revoked() {
            return Step::Stop(ExitReason::Normal);
        }
        if self.handler.is_none()
            && let Err(reason) = self.start_handler()
        {
            return Step::Stop(reason);
        }
        let slot = self.slot.clone();
        let busy = slot.busy.lock();
        // A worker waiting for the lock may have been revoked meanwhile.
        if slot.is_revoked() {
            return Step::Stop(ExitReason::Normal);
        }
        let batch = take_batch(&slot);
        if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
            let (first, last) = (first.offset(), last.offset());
            slot.acknowledger.delivered(
                &slot.topic,
                slot.partition,
                slot.generation,
                first,
                last + 1,
            );
            let messages: Vec<Message<'_>> = batch
                .iter()
                .map(|m| Message {
                    topic: &slot.topic,
                    partition: slot.partition,
                    offset: m.offset(),
                    key: m.key(),
                    payload: m.payload(),
                    timestamp: match m.timestamp() {
                        Timestamp::NotAvailable => None,
                        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
                    },
                })
                .collect();
            let handler = self.handler.as_mut().expect("started above");
            let answer = handler.handle_messages(&messages);
            let acked = match answer {
                Ack::Ack => Some(last),
                Ack::AckAt(offset) => Some(offset),
                Ack::NoAck | Ack::Continue => None,
            };
            if let Some(offset) = acked {
                slot.acknowledger
                    .ack(&slot.topic, slot.partition, slot.generation, offset);
            }
        }
        drop(batch);
        drop(busy);
        if let Some(me) = &self.me {
            me.send(Poll);
        }
        Step::Next
    }
}

/// Takes a batch: waits up to [`POLL_WAIT`] for a first message, then takes what is
/// already there, up to the batch size. The messages stay in librdkafka's buffers.
fn take_batch(slot: &Slot) -> Vec<BorrowedMessage<'_>> {
    let mut batch = Vec::new();
    let mut wait = POLL_WAIT;
    while batch.len() < slot.max_batch {
        match slot.queue.poll(wait) {
            Some(Ok(message)) => batch.push(message),
            Some(Err(error)) => {
                log::warn!("fetching {}/{} failed: {error}", slot.topic, slot.partition);
                break;
            }
            None => break,
        }
        wait = Duration::ZERO;
    }
    batch
}

impl Worker for PartitionWorker {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = Poll;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        let me = ctx.handle();
        me.send(Poll);
        self.me = Some(me);
        Ok(())
    }

    fn handle_info(&mut self, info: Info<Poll>, _: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Message(Poll) | Info::Timer(_, Poll) => self.step(),
            // Exit signals from the parent stop the worker (the runtime runs
            // `terminate`); others (there are no other links) are ignored.
            Info::Exit(_) | Info::Down(_) => Step::Next,
        }
    }

    fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        if let Some(handler) = self.handler.as_mut() {
            handler.terminate(reason);
        }
    }
}
