//! [`PartitionWorker`]: the worker of one assigned partition (after Elsa's
//! `Elsa.Consumer.Worker`).
//!
//! It takes messages only from its partition's own librdkafka queue, so a slow or
//! failing handler holds back its own partition and no other. It traps exits, so a
//! stop from its supervisor (or a revocation) waits for the batch in hand: the stop is
//! handled between batches. Its loop is a message to itself per batch (not a
//! `Step::Continue` chain), so that stops, exit signals and calls get their turn
//! between batches.
//!
//! Per batch: take the partition's lock (see [`PartitionLock`](super::partition_lock)),
//! take up to `max_batch` messages, record them as delivered and in hand, run the
//! handler, check and record its answer. `AckAt(offset)` outside the batch, and an
//! offset without a next one, are refused, reported, and change nothing.
//!
//! A restarted worker first seeks back to where its predecessor's acknowledgements
//! end; if the dead-letter handler is due, it hands it the failing batch before the
//! handler sees anything. An offset out of range — a fetch error, or a start found
//! beyond the high watermark while nothing arrives — moves the partition to the
//! configured begin offset (clamped into the log) and is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _, Timestamp};
use rdkafka::types::RDKafkaErrorCode;

use super::acknowledger::AckOutcome;
use super::config::BeginOffset;
use super::dead_letter::{DeadLetter, DeadLetterAction};
use super::error::GroupError;
use super::events::MemberEvent;
use super::handler::{Ack, Assignment, Handler, Message, OwnedMessage};
use super::slot::Slot;
use otp_threads::ExitReason;
use otp_threads::{Context, Info, Step, Worker, WorkerRef};

/// How long one poll of the partition queue waits for a first message: the bound on
/// how late an idle worker notices a stop.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long a worker waits for its seeks and for the partition's watermarks.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);
/// One slice of waiting for the partition's lock, between which the mailbox is served.
const LOCK_SLICE: Duration = Duration::from_millis(100);

/// The worker's only message to itself: take and handle the next batch.
pub(crate) struct Poll;

/// A dead-letter read in progress: the failing batch's last offset and the messages
/// read so far.
struct DeadLetterRead {
    last: i64,
    messages: Vec<OwnedMessage>,
}

/// The worker of one partition.
pub(crate) struct PartitionWorker {
    slot: Arc<Slot>,
    begin_offset: Option<i64>,
    restarts: u32,
    positioned: bool,
    dead_letter: Option<DeadLetterRead>,
    handler: Option<Box<dyn Handler>>,
    lock_wait_since: Option<Instant>,
    /// The start was found in range, or handled: no more beyond-the-end checks.
    start_settled: bool,
    /// Since when the start has been seen beyond the high watermark.
    beyond_end_since: Option<Instant>,
    me: Option<WorkerRef<PartitionWorker>>,
}

impl PartitionWorker {
    pub(crate) fn new(slot: Arc<Slot>, begin_offset: Option<i64>, restarts: u32) -> Self {
        PartitionWorker {
            slot,
            begin_offset,
            restarts,
            positioned: false,
            dead_letter: None,
            handler: None,
            lock_wait_since: None,
            start_settled: false,
            beyond_end_since: None,
            me: None,
        }
    }

    fn seek(&self, offset: i64) -> Result<(), ExitReason> {
        let slot = &self.slot;
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
            })
    }

    /// A restarted worker seeks back to the resume offset, and opens a dead-letter
    /// read if the dead-letter handler is due.
    fn position(&mut self) -> Result<(), ExitReason> {
        self.positioned = true;
        let slot = &self.slot;
        if let Some(offset) = self.begin_offset {
            log::info!(
                "worker of {}/{} ({}) restarted: resuming at offset {offset}",
                slot.topic,
                slot.partition,
                slot.generation
            );
            self.seek(offset)?;
        }
        if let Some(policy) = &slot.shared.dead_letter
            && let Some(last) = slot.failures.lock().dead_letter_due(policy.attempts)
        {
            self.dead_letter = Some(DeadLetterRead {
                last,
                messages: Vec::new(),
            });
        }
        Ok(())
    }

    fn start_handler(&mut self) -> Result<(), ExitReason> {
        let slot = &self.slot;
        let assignment = Assignment {
            topic: slot.topic.clone(),
            partition: slot.partition,
            generation: slot.generation,
            begin_offset: self.begin_offset,
            restarts: self.restarts,
        };
        let mut handler = (slot.shared.factory)(&assignment);
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
        let prepared = if !self.positioned {
            self.position()
        } else {
            Ok(())
        };
        let outcome = prepared.and_then(|()| {
            if self.dead_letter.is_some() {
                self.read_dead_letter()
            } else if self.handler.is_none() {
                self.start_handler()
            } else {
                self.handle_batch()
            }
        });
        if let Err(reason) = outcome {
            return Step::Stop(reason);
        }
        if let Some(me) = &self.me {
            me.send(Poll);
        }
        Step::Next
    }

    fn handle_batch(&mut self) -> Result<(), ExitReason> {
        let slot = self.slot.clone();
        let lock = slot.lock.current();
        let Some(guard) = lock.try_lock_for(LOCK_SLICE) else {
            self.waited_for_lock(&lock);
            return Ok(());
        };
        self.lock_wait_since = None;
        // A worker waiting for the lock may have been revoked meanwhile.
        if slot.is_revoked() {
            return Ok(());
        }
        let (batch, error) = take_batch(&slot);
        if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
            let (first, last) = (first.offset(), last.offset());
            *slot.in_hand.lock() = Some((first, last));
            slot.acknowledger().delivered(
                &slot.topic,
                slot.partition,
                slot.generation,
                first,
                last.saturating_add(1),
            );
            let messages: Vec<Message<'_>> = batch.iter().map(|m| borrowed(&slot, m)).collect();
            let handler = self.handler.as_mut().expect("started before any batch");
            let answer = handler.handle_messages(&messages);
            *slot.in_hand.lock() = None;
            self.record_answer(answer, first, last);
            let recovered = slot.failures.lock().handled_through(last);
            if let Some(attempts) = recovered {
                log::info!(
                    "{}/{} recovered after {attempts} failures: handled through offset {last}",
                    slot.topic,
                    slot.partition
                );
                slot.shared.events.emit(MemberEvent::PartitionRecovered {
                    topic: slot.topic.clone(),
                    partition: slot.partition,
                    attempts,
                });
            }
        }
        let idle = batch.is_empty();
        drop(batch);
        drop(guard);
        match error {
            Some(error) => self.fetch_failed(error),
            None if idle => self.check_beyond_end(),
            None => Ok(()),
        }
    }

    /// The partition's lock is held by another worker: after the bound, that holder
    /// is taken for stuck and its lock abandoned.
    fn waited_for_lock(&mut self, lock: &Arc<Mutex<()>>) {
        let slot = &self.slot;
        let since = *self.lock_wait_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= slot.shared.lock_bound && slot.lock.abandon(lock) {
            log::warn!(
                "worker of {}/{}: an earlier worker still holds the partition after {:?}: \
                 going on without it",
                slot.topic,
                slot.partition,
                slot.shared.lock_bound
            );
        }
    }

    fn record_answer(&self, answer: Ack, first: i64, last: i64) {
        let slot = &self.slot;
        let offset = match answer {
            Ack::Ack => last,
            Ack::AckAt(offset) if (first..=last).contains(&offset) => offset,
            Ack::AckAt(offset) => {
                return self.refuse(GroupError::AckOutsideBatch {
                    topic: slot.topic.clone(),
                    partition: slot.partition,
                    offset,
                    first,
                    last,
                });
            }
            Ack::NoAck | Ack::Continue => return,
        };
        self.ack(offset);
    }

    fn ack(&self, offset: i64) {
        let slot = &self.slot;
        match slot
            .acknowledger()
            .ack(&slot.topic, slot.partition, slot.generation, offset)
        {
            AckOutcome::InvalidOffset => self.refuse(GroupError::AckOverflow {
                topic: slot.topic.clone(),
                partition: slot.partition,
                offset,
            }),
            AckOutcome::NotDelivered { delivered_end } => log::error!(
                "ack of {}/{} at {offset} refused: delivered up to {delivered_end:?}",
                slot.topic,
                slot.partition
            ),
            AckOutcome::Accepted
            | AckOutcome::Behind { .. }
            | AckOutcome::StaleGeneration { .. } => {}
        }
    }

    fn refuse(&self, error: GroupError) {
        log::error!("{error}; nothing was acknowledged");
        self.slot
            .shared
            .events
            .emit(MemberEvent::AckRefused { error });
    }

    /// Reads the failing batch again, copied, then asks the dead-letter handler.
    fn read_dead_letter(&mut self) -> Result<(), ExitReason> {
        let slot = self.slot.clone();
        let read = self
            .dead_letter
            .as_mut()
            .expect("a dead-letter read is open");
        let mut done = false;
        let mut wait = POLL_WAIT;
        let mut error = None;
        let mut taken = 0;
        while !done && taken < slot.shared.max_batch {
            taken += 1;
            match slot.queue.poll(wait) {
                Some(Ok(message)) => {
                    if message.offset() <= read.last {
                        read.messages.push(borrowed(&slot, &message).to_owned());
                    }
                    done = message.offset() >= read.last;
                }
                Some(Err(e)) => {
                    error = Some(e);
                    break;
                }
                None => break,
            }
            wait = Duration::ZERO;
        }
        if let Some(error) = error {
            // The log moved (an offset out of range): there is no batch to skip.
            self.dead_letter = None;
            return self.fetch_failed(error);
        }
        if !done {
            return Ok(());
        }
        let read = self.dead_letter.take().expect("a dead-letter read is open");
        self.decide_dead_letter(read)
    }

    fn decide_dead_letter(&mut self, read: DeadLetterRead) -> Result<(), ExitReason> {
        let slot = self.slot.clone();
        let policy = slot
            .shared
            .dead_letter
            .clone()
            .expect("dead letters are on");
        let failures = slot.failures.lock().clone();
        let reason = failures
            .reason
            .unwrap_or_else(|| ExitReason::error("unknown"));
        let first = read.messages.first().map_or(read.last, |m| m.offset);
        let action = (policy.handler)(&DeadLetter {
            topic: &slot.topic,
            partition: slot.partition,
            generation: slot.generation,
            attempts: failures.attempts,
            reason: &reason,
            messages: &read.messages,
        });
        let skipped = action == DeadLetterAction::Skip;
        log::warn!(
            "dead-letter handler {} {}/{} offsets {first}..={} after {} failures",
            if skipped { "skipped" } else { "retries" },
            slot.topic,
            slot.partition,
            read.last,
            failures.attempts
        );
        slot.shared.events.emit(MemberEvent::DeadLettered {
            topic: slot.topic.clone(),
            partition: slot.partition,
            batch: (first, read.last),
            skipped,
        });
        if !skipped {
            return self.seek(first);
        }
        self.ack(read.last);
        slot.failures.lock().handled_through(read.last);
        match read.last.checked_add(1) {
            Some(next) => self.seek(next),
            None => Err(ExitReason::error("the partition's log ends at i64::MAX")),
        }
    }

    /// A fetch error: an offset out of range moves the partition to the begin offset;
    /// others are logged (librdkafka retries them).
    fn fetch_failed(&mut self, error: KafkaError) -> Result<(), ExitReason> {
        let slot = &self.slot;
        if error != KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset) {
            log::warn!("fetching {}/{} failed: {error}", slot.topic, slot.partition);
            return Ok(());
        }
        let (low, high) = self.watermarks()?;
        self.start_settled = true;
        self.reset_to_begin(low, high)
    }

    fn watermarks(&self) -> Result<(i64, i64), ExitReason> {
        let slot = &self.slot;
        slot.consumer
            .fetch_watermarks(&slot.topic, slot.partition, SEEK_TIMEOUT)
            .map_err(|e| {
                ExitReason::error(format!(
                    "reading the watermarks of {}/{} failed: {e}",
                    slot.topic, slot.partition
                ))
            })
    }

    /// While nothing was delivered, checks the start (the committed offset, else an
    /// integer begin offset) against the high watermark of librdkafka's statistics:
    /// not every broker answers a fetch beyond the log's end with an error (Tansu 0.6.0
    /// answers with nothing, for ever). Only a start found beyond the end for
    /// [`Shared::out_of_range_confirm`](super::slot::Shared) in a row counts, so that
    /// a watermark from before the assignment's first fetch cannot trigger it.
    fn check_beyond_end(&mut self) -> Result<(), ExitReason> {
        if self.start_settled {
            return Ok(());
        }
        let slot = self.slot.clone();
        let acks = slot.acknowledger();
        if acks.has_delivered(&slot.topic, slot.partition, slot.generation) {
            self.start_settled = true;
            return Ok(());
        }
        let committed = acks.committed_offset(&slot.topic, slot.partition);
        let start = match (committed, slot.shared.begin_offset) {
            (Some(committed), _) => committed,
            (None, BeginOffset::Offset(offset)) => offset,
            (None, _) => {
                self.start_settled = true;
                return Ok(());
            }
        };
        let Some(high) = slot.high_watermark() else {
            return Ok(());
        };
        if start <= high {
            self.beyond_end_since = None;
            return Ok(());
        }
        let since = *self.beyond_end_since.get_or_insert_with(Instant::now);
        if since.elapsed() < slot.shared.out_of_range_confirm {
            return Ok(());
        }
        self.start_settled = true;
        let low = slot.low_watermark().unwrap_or(0).min(high);
        self.reset_to_begin(low, high)
    }

    /// Moves the partition to the begin offset, clamped into the log `low..=high`, and
    /// reports it; acknowledgements then count from there (the committed offset that
    /// was out of range is replaced at the next commit).
    fn reset_to_begin(&mut self, low: i64, high: i64) -> Result<(), ExitReason> {
        let slot = &self.slot;
        let target = match slot.shared.begin_offset {
            BeginOffset::Earliest => low,
            BeginOffset::Latest => high,
            BeginOffset::Offset(offset) => offset.clamp(low, high.max(low)),
        };
        log::warn!(
            "{}/{}: offset out of range (log {low}..{high}): resuming at the begin offset \
             {target}",
            slot.topic,
            slot.partition
        );
        self.seek(target)?;
        slot.acknowledger()
            .reset(&slot.topic, slot.partition, slot.generation, target);
        slot.shared.events.emit(MemberEvent::OffsetOutOfRange {
            topic: slot.topic.clone(),
            partition: slot.partition,
            resumed_at: target,
        });
        Ok(())
    }
}

fn borrowed<'a>(slot: &'a Slot, m: &'a BorrowedMessage<'_>) -> Message<'a> {
    Message {
        topic: &slot.topic,
        partition: slot.partition,
        offset: m.offset(),
        key: m.key(),
        payload: m.payload(),
        timestamp: match m.timestamp() {
            Timestamp::NotAvailable => None,
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
        },
    }
}

/// Takes a batch: waits up to [`POLL_WAIT`] for a first message, then takes what is
/// already there, up to the batch size. The messages stay in librdkafka's buffers. A
/// fetch error ends the batch and is returned beside it.
fn take_batch(slot: &Slot) -> (Vec<BorrowedMessage<'_>>, Option<KafkaError>) {
    let mut batch = Vec::new();
    let mut wait = POLL_WAIT;
    while batch.len() < slot.shared.max_batch {
        match slot.queue.poll(wait) {
            Some(Ok(message)) => batch.push(message),
            Some(Err(error)) => return (batch, Some(error)),
            None => break,
        }
        wait = Duration::ZERO;
    }
    (batch, None)
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
