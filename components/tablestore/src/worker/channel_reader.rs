//! [`ChannelReader`]: one worker per assigned channel, linked to its session.
//!
//! Its loop, one step per callback so that the session's exit signal (a revoked or
//! closing channel) is taken between any two steps:
//!
//! 1. `getcheckpoint`: the token to read from, and the sequence number of the stored
//!    checkpoint (the next checkpoint carries it plus one);
//! 2. `readrecords` from the token, decode the records (see [`record`](super::record)
//!    for the undecodable ones) and deliver one [`Batch`] to the subscriber;
//! 3. **read-ahead**: while the subscriber works on that batch, fetch and decode up
//!    to [`read_ahead`](super::TunnelWorkerConfig::read_ahead) more batches, each
//!    from the previous one's next token. They wait in the reader, undelivered;
//! 4. the batch's [`Ack`](super::Ack) arrives: the reader hands the next fetched
//!    batch over, then `checkpoint`s the acknowledged one's next token with
//!    sequence number + 1 (so the subscriber works while the checkpoint is
//!    stored). A checkpoint always follows the ack of the batch it covers, and at
//!    most one batch per channel is out. A nack drops the fetched batches and reads
//!    again from the last acknowledged position; a crash loses them (the next
//!    reader starts at the stored checkpoint).
//!
//! A stream channel whose read comes back empty backs off
//! ([`poll_backoff`](super::TunnelWorkerConfig::poll_backoff)) on a timer, then reads
//! again; the first non-empty read resets it. A read that ends at the finish token
//! is checkpointed `"finished"` once everything before it is acknowledged, and the
//! reader stops `Normal`.
//!
//! # `OTSSequenceNumberNotMatch`
//!
//! The stored sequence number is not the one the reader expects: someone else
//! checkpointed the channel, or an earlier checkpoint of this reader succeeded and
//! its reply was lost. The reader reconciles from the server's checkpoint: it reads
//! it (`getcheckpoint`); if it already holds the token being stored, that checkpoint
//! is done; otherwise it retries with the server's sequence number + 1. After
//! [`SEQUENCE_RETRIES`] mismatches in a row it does not give the channel up: it keeps
//! the acknowledged batch pending, waits a backoff (on a timer, so a stop is taken at
//! once), and reconciles again, until a checkpoint succeeds or the reader is stopped
//! (the channel moved, the tunnel stopped). Nothing further is delivered meanwhile.
//! Any other checkpoint error fails the reader.
//!
//! Exit reasons tell the session what happened: `Normal` = the channel reached the
//! finish token (reported `TERMINATED`); `{shutdown, subscriber gone}` = the
//! subscriber dropped its receiver; any error = the reader failed (the channel is
//! given back `CLOSE`). A fatal error (credentials, expired tunnel, an out-of-range
//! sequence number, an undecodable record under [`OnUndecodable::Stop`]) is also sent
//! to the session, which then stops the whole tunnel.
//!
//! The reader does not trap exits: the session stops it with an exit signal and it
//! is dead at once. Its thread may still be in an HTTP call; before it delivers a
//! batch or stores a checkpoint it checks it is still alive, so a stopped reader
//! never checkpoints.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::backoff::Backoff;
use crate::client::TunnelClient;
use crate::error::TunnelError;
use crate::token;
use otp_threads::{Context, ExitReason, Info, Step, Worker, WorkerRef};

use super::batch::{Ack, Batch};
use super::config::TunnelWorkerConfig;
use super::record::{self, OnUndecodable, Record, UndecodableRecord};
use super::session::{Session, SessionMsg, Shared};

/// The detail of the `{shutdown, _}` reason of a reader whose subscriber is gone.
pub(super) const SUBSCRIBER_GONE: &str = "subscriber gone";

/// Mismatches in a row before a reconciling checkpoint waits a backoff.
pub const SEQUENCE_RETRIES: u32 = 3;

/// Messages of a reader.
pub(crate) enum ReaderMsg {
    /// The subscriber acknowledged delivery `n`.
    Acked(u64),
    /// The subscriber dropped delivery `n` without acknowledging it.
    Nacked(u64),
    /// Go on: after the start, after an idle backoff, or to retry a checkpoint.
    Poll,
}

/// A read, decoded, not yet delivered.
struct Fetched {
    records: Vec<Record>,
    undecodable: Vec<UndecodableRecord>,
    next_token: String,
}

impl Fetched {
    /// Something to deliver (not only the finish token).
    fn has_records(&self) -> bool {
        !self.records.is_empty() || !self.undecodable.is_empty()
    }
}

/// The batch the subscriber holds.
struct InFlight {
    delivery: u64,
    next_token: String,
}

/// What a checkpoint attempt came to.
enum Checkpointed {
    Done,
    /// Still mismatching after [`SEQUENCE_RETRIES`]: try again after a backoff.
    StillMismatching,
}

/// The reader of one channel; see the module docs.
pub(crate) struct ChannelReader {
    client: TunnelClient,
    tunnel_id: String,
    client_id: String,
    channel_id: String,
    subscriber: Sender<Batch>,
    session: WorkerRef<Session>,
    shared: Arc<Shared>,
    on_undecodable: OnUndecodable,
    read_ahead: usize,
    backoff: Backoff,
    reconcile_backoff: Backoff,
    me: Option<WorkerRef<ChannelReader>>,
    /// The stored checkpoint's token; `None` until it is loaded.
    token: Option<String>,
    /// The stored checkpoint's sequence number.
    sequence: i64,
    /// Where the next read starts (the last fetched batch's next token).
    read_from: Option<String>,
    /// Fetched batches, oldest first.
    ahead: VecDeque<Fetched>,
    /// Waiting out an idle backoff: no reads until the timer fires.
    idle: bool,
    deliveries: u64,
    in_flight: Option<InFlight>,
    /// An acknowledged batch's token whose checkpoint has not succeeded yet.
    pending_checkpoint: Option<String>,
    /// The pending checkpoint keeps mismatching: deliver nothing until it is stored.
    reconciling: bool,
}

impl ChannelReader {
    pub(super) fn new(
        config: &TunnelWorkerConfig,
        client: TunnelClient,
        client_id: String,
        channel_id: String,
        subscriber: Sender<Batch>,
        session: WorkerRef<Session>,
        shared: Arc<Shared>,
    ) -> ChannelReader {
        ChannelReader {
            client,
            tunnel_id: config.tunnel_id.clone(),
            client_id,
            channel_id,
            subscriber,
            session,
            shared,
            on_undecodable: config.on_undecodable,
            read_ahead: config.read_ahead,
            backoff: Backoff::new(config.poll_backoff),
            reconcile_backoff: Backoff::new(config.poll_backoff),
            me: None,
            token: None,
            sequence: 0,
            read_from: None,
            ahead: VecDeque::new(),
            idle: false,
            deliveries: 0,
            in_flight: None,
            pending_checkpoint: None,
            reconciling: false,
        }
    }

    /// `false` once this reader was stopped (its thread may still be running).
    fn alive(&self) -> bool {
        self.me.as_ref().is_some_and(WorkerRef::is_alive)
    }

    /// Give up on the channel: the session reports it `CLOSE`; a fatal error stops
    /// the session too.
    fn fail(&self, what: &str, error: TunnelError) -> Step<Self> {
        let reason = ExitReason::error(format!("channel {}: {what}: {error}", self.channel_id));
        log::warn!("tunnel {}: {reason}", self.tunnel_id);
        if error.is_fatal() {
            self.session.send(SessionMsg::Fatal(error));
        }
        Step::Stop(reason)
    }

    fn load_checkpoint(&mut self) -> Result<(), TunnelError> {
        let cp = self
            .client
            .get_checkpoint(&self.tunnel_id, &self.client_id, &self.channel_id)?;
        log::debug!(
            "tunnel {} channel {}: checkpoint #{} {}",
            self.tunnel_id,
            self.channel_id,
            cp.sequence_number,
            if token::is_finished(Some(&cp.checkpoint)) {
                "(finished)"
            } else {
                ""
            }
        );
        self.sequence = cp.sequence_number;
        self.read_from = Some(cp.checkpoint.clone());
        self.token = Some(cp.checkpoint);
        Ok(())
    }

    /// Store `token` as the checkpoint with the next sequence number, reconciling
    /// sequence mismatches (see the module docs).
    fn checkpoint(&mut self, token: &str) -> Result<Checkpointed, TunnelError> {
        let mut mismatches = 0;
        loop {
            let next = self
                .sequence
                .checked_add(1)
                .ok_or_else(|| TunnelError::OutOfRange {
                    what: "checkpoint sequence number",
                    subject: self.channel_id.clone(),
                    value: self.sequence,
                })?;
            let error = match self.client.checkpoint(
                &self.tunnel_id,
                &self.client_id,
                &self.channel_id,
                token,
                next,
            ) {
                Ok(_) => {
                    self.sequence = next;
                    self.reconcile_backoff.reset();
                    return Ok(Checkpointed::Done);
                }
                Err(e) if e.is_sequence_mismatch() => e,
                Err(e) => return Err(e),
            };
            let stored =
                self.client
                    .get_checkpoint(&self.tunnel_id, &self.client_id, &self.channel_id)?;
            self.sequence = stored.sequence_number;
            if stored.checkpoint == token {
                log::info!(
                    "tunnel {} channel {}: {error}; the checkpoint is already stored (#{})",
                    self.tunnel_id,
                    self.channel_id,
                    stored.sequence_number
                );
                self.reconcile_backoff.reset();
                return Ok(Checkpointed::Done);
            }
            mismatches += 1;
            log::info!(
                "tunnel {} channel {}: {error}; reconciling from the stored #{} ({mismatches})",
                self.tunnel_id,
                self.channel_id,
                stored.sequence_number
            );
            if mismatches >= SEQUENCE_RETRIES {
                return Ok(Checkpointed::StillMismatching);
            }
        }
    }

    /// The next thing to do: checkpoint an acknowledged batch, deliver a fetched
    /// one, or fetch one more. One action per call; `Continue` to do the next.
    fn advance(&mut self, ctx: &mut Context<Self>) -> Step<Self> {
        if !self.alive() {
            return Step::Stop(ExitReason::Shutdown);
        }
        if self.token.is_none() {
            return match self.load_checkpoint() {
                Ok(()) => Step::Continue(()),
                Err(e) => self.fail("getcheckpoint", e),
            };
        }
        if let Some(token) = self.pending_checkpoint.clone() {
            // Hand the next fetched batch over first: the subscriber works on it
            // while this checkpoint is stored (its ack comes later, so
            // ack-before-checkpoint holds for it too). Not while reconciling, and
            // not a batch with undecodable records (under `Stop` it would end the
            // tunnel before this checkpoint).
            let deliver_first = !self.reconciling
                && self.in_flight.is_none()
                && self
                    .ahead
                    .front()
                    .is_some_and(|f| f.has_records() && f.undecodable.is_empty());
            if deliver_first && let Some(fetched) = self.ahead.pop_front() {
                return self.deliver(fetched);
            }
            return match self.checkpoint(&token) {
                Ok(Checkpointed::Done) => {
                    self.pending_checkpoint = None;
                    self.reconciling = false;
                    self.token = Some(token);
                    Step::Continue(())
                }
                Ok(Checkpointed::StillMismatching) => {
                    self.reconciling = true;
                    let max = self.reconcile_backoff.config().max_interval;
                    let delay = self.reconcile_backoff.next_delay().unwrap_or(max);
                    log::warn!(
                        "tunnel {} channel {}: the checkpoint still mismatches; again in {delay:?}",
                        self.tunnel_id,
                        self.channel_id
                    );
                    ctx.send_after(ReaderMsg::Poll, delay);
                    Step::Next
                }
                Err(e) => self.fail("checkpoint", e),
            };
        }
        if self.in_flight.is_none() {
            if let Some(fetched) = self.ahead.pop_front() {
                return self.deliver(fetched);
            }
            if token::is_finished(self.token.as_deref()) {
                return Step::Stop(ExitReason::Normal);
            }
        }
        let room = self.read_ahead + usize::from(self.in_flight.is_none());
        let finished = token::is_finished(self.read_from.as_deref());
        if self.idle || finished || self.ahead.len() >= room {
            return Step::Next;
        }
        self.fetch(ctx)
    }

    /// Read one batch from `read_from` and keep it, decoded.
    fn fetch(&mut self, ctx: &mut Context<Self>) -> Step<Self> {
        let Some(from) = self.read_from.clone() else {
            return Step::Next;
        };
        let reply = match self.client.read_records(
            &self.tunnel_id,
            &self.client_id,
            &self.channel_id,
            &from,
        ) {
            Ok(reply) => reply.message,
            Err(e) => return self.fail("readrecords", e),
        };
        let finished = token::is_finished(Some(&reply.next_token));
        if reply.records.is_empty() && !finished {
            // Nothing new: back off on a timer, so that a stop is taken at once.
            self.read_from = Some(reply.next_token);
            self.idle = true;
            let max = self.backoff.config().max_interval;
            let delay = self.backoff.next_delay().unwrap_or(max);
            ctx.send_after(ReaderMsg::Poll, delay);
            return Step::Continue(());
        }
        self.backoff.reset();
        let mut records = Vec::with_capacity(reply.records.len());
        let mut undecodable = Vec::new();
        for (index, raw) in reply.records.into_iter().enumerate() {
            match record::decode(&self.channel_id, index, raw) {
                Ok(record) => records.push(record),
                Err(bad) => undecodable.push(*bad),
            }
        }
        self.read_from = Some(reply.next_token.clone());
        self.ahead.push_back(Fetched {
            records,
            undecodable,
            next_token: reply.next_token,
        });
        Step::Continue(())
    }

    /// Hand a fetched batch to the subscriber (or checkpoint it at once when there
    /// is nothing to hand over).
    fn deliver(&mut self, mut fetched: Fetched) -> Step<Self> {
        if !fetched.undecodable.is_empty() {
            match self.on_undecodable {
                OnUndecodable::Deliver => {
                    for bad in &fetched.undecodable {
                        log::warn!(
                            "tunnel {} channel {}: delivering undecodable record {}: {}",
                            self.tunnel_id,
                            self.channel_id,
                            bad.index,
                            bad.error
                        );
                    }
                }
                OnUndecodable::Skip => {
                    for bad in fetched.undecodable.drain(..) {
                        log::error!(
                            "tunnel {} channel {}: skipping undecodable record {}: {}",
                            self.tunnel_id,
                            self.channel_id,
                            bad.index,
                            bad.error
                        );
                        self.shared.skipped.lock().add(bad);
                    }
                }
                OnUndecodable::Stop => {
                    let bad = fetched.undecodable.swap_remove(0);
                    let error = TunnelError::UndecodableRecord {
                        tunnel_id: self.tunnel_id.clone(),
                        channel_id: self.channel_id.clone(),
                        index: bad.index,
                        error: bad.error,
                    };
                    return self.fail("decoding a record", error);
                }
            }
        }
        if !fetched.has_records() {
            // The finish token, or a read whose records were all skipped: nothing
            // to acknowledge, so checkpoint it now (it covers any pending one).
            self.pending_checkpoint = Some(fetched.next_token);
            return Step::Continue(());
        }
        let Some(me) = self.me.clone().filter(WorkerRef::is_alive) else {
            return Step::Stop(ExitReason::Shutdown);
        };
        self.deliveries += 1;
        let delivery = self.deliveries;
        self.in_flight = Some(InFlight {
            delivery,
            next_token: fetched.next_token,
        });
        let batch = Batch {
            tunnel_id: self.tunnel_id.clone(),
            channel_id: self.channel_id.clone(),
            records: fetched.records,
            undecodable: fetched.undecodable,
            ack: Ack::new(me, delivery),
        };
        if let Err(unsent) = self.subscriber.send(batch) {
            // The ack inside is dropped here too; its nack finds no batch in flight.
            self.in_flight = None;
            drop(unsent);
            log::info!(
                "tunnel {} channel {}: the subscriber dropped its receiver",
                self.tunnel_id,
                self.channel_id
            );
            return Step::Stop(ExitReason::shutdown_with(SUBSCRIBER_GONE));
        }
        Step::Continue(())
    }

    fn acked(&mut self, delivery: u64) -> Step<Self> {
        match self.in_flight.take() {
            Some(batch) if batch.delivery == delivery => {
                self.pending_checkpoint = Some(batch.next_token);
                Step::Continue(())
            }
            other => {
                self.in_flight = other;
                Step::Next
            }
        }
    }

    fn nacked(&mut self, delivery: u64) -> Step<Self> {
        if self
            .in_flight
            .as_ref()
            .is_none_or(|b| b.delivery != delivery)
        {
            return Step::Next;
        }
        // Read the same token again and deliver the batch again.
        self.in_flight = None;
        self.ahead.clear();
        self.read_from = self
            .pending_checkpoint
            .clone()
            .or_else(|| self.token.clone());
        self.idle = false;
        Step::Continue(())
    }
}

impl Worker for ChannelReader {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ReaderMsg;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        self.me = Some(ctx.handle());
        ctx.send_after(ReaderMsg::Poll, Duration::ZERO);
        Ok(())
    }

    fn handle_info(&mut self, info: Info<ReaderMsg>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Message(ReaderMsg::Acked(delivery)) => self.acked(delivery),
            Info::Message(ReaderMsg::Nacked(delivery)) => self.nacked(delivery),
            Info::Timer(_, ReaderMsg::Poll) | Info::Message(ReaderMsg::Poll) => {
                self.idle = false;
                self.advance(ctx)
            }
            Info::Timer(..) | Info::Down(_) | Info::Exit(_) => Step::Next,
        }
    }

    fn handle_continue(&mut self, (): (), ctx: &mut Context<Self>) -> Step<Self> {
        self.advance(ctx)
    }
}
