//! [`ChannelReader`]: one worker per assigned channel, linked to its session.
//!
//! Its loop, one step per callback so that the session's exit signal (a revoked or
//! closing channel) is taken between any two steps:
//!
//! 1. `getcheckpoint`: the token to read from, and the sequence number of the stored
//!    checkpoint (the next checkpoint carries it plus one);
//! 2. `readrecords` from the token. Empty: back off on a timer
//!    ([`TunnelWorkerConfig::poll_backoff`](super::TunnelWorkerConfig::poll_backoff)),
//!    then read again. Otherwise decode the rows and send one [`Batch`] to the
//!    subscriber, then wait;
//! 3. the batch's [`Ack`](super::Ack) arrives: `checkpoint` the batch's next token
//!    with sequence number + 1 and read on (a nack re-reads the same token);
//!    `OTSSequenceNumberNotMatch` re-reads the stored sequence number and retries.
//!
//! Exit reasons tell the session what happened: `Normal` = the channel reached the
//! finish token (reported `TERMINATED`); `{shutdown, subscriber gone}` = the
//! subscriber dropped its receiver; any error = the reader failed (the channel is
//! given back `CLOSE`). A fatal error (credentials, expired tunnel) is also sent to
//! the session, which then stops the whole tunnel.
//!
//! The reader does not trap exits: the session stops it with an exit signal and it
//! is dead at once. Its thread may still be in an HTTP call; before it delivers a
//! batch or stores a checkpoint it checks it is still alive, so a stopped reader
//! never checkpoints.

use std::time::Duration;

use crossbeam_channel::Sender;

use crate::backoff::Backoff;
use crate::client::TunnelClient;
use crate::error::TunnelError;
use crate::plainbuffer;
use crate::proto::ActionType;
use crate::token::{self, FINISH_TOKEN};
use otp_threads::{Context, ExitReason, Info, Step, Worker, WorkerRef};

use super::batch::{Ack, Batch};
use super::config::TunnelWorkerConfig;
use super::session::{Session, SessionMsg};

/// The detail of the `{shutdown, _}` reason of a reader whose subscriber is gone.
pub(super) const SUBSCRIBER_GONE: &str = "subscriber gone";

/// How many times a checkpoint is retried after `OTSSequenceNumberNotMatch`.
const SEQUENCE_RETRIES: u32 = 3;

/// Messages of a reader.
pub(crate) enum ReaderMsg {
    /// The subscriber acknowledged delivery `n`.
    Acked(u64),
    /// The subscriber dropped delivery `n` without acknowledging it.
    Nacked(u64),
    /// Read (again): after the start, or after a backoff.
    Poll,
}

/// The batch the subscriber holds.
struct InFlight {
    delivery: u64,
    next_token: String,
}

/// The reader of one channel; see the module docs.
pub(crate) struct ChannelReader {
    client: TunnelClient,
    tunnel_id: String,
    client_id: String,
    channel_id: String,
    subscriber: Sender<Batch>,
    session: WorkerRef<Session>,
    backoff: Backoff,
    me: Option<WorkerRef<ChannelReader>>,
    /// Where the next read starts; `None` until the checkpoint is loaded.
    token: Option<String>,
    /// The sequence number of the stored checkpoint.
    sequence: i64,
    deliveries: u64,
    in_flight: Option<InFlight>,
}

impl ChannelReader {
    pub(super) fn new(
        config: &TunnelWorkerConfig,
        client: TunnelClient,
        client_id: String,
        channel_id: String,
        subscriber: Sender<Batch>,
        session: WorkerRef<Session>,
    ) -> ChannelReader {
        ChannelReader {
            client,
            tunnel_id: config.tunnel_id.clone(),
            client_id,
            channel_id,
            subscriber,
            session,
            backoff: Backoff::new(config.poll_backoff),
            me: None,
            token: None,
            sequence: 0,
            deliveries: 0,
            in_flight: None,
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

    fn load_checkpoint(&mut self) -> Result<String, TunnelError> {
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
        self.token = Some(cp.checkpoint.clone());
        Ok(cp.checkpoint)
    }

    /// Store `token` as the checkpoint with the next sequence number.
    fn checkpoint(&mut self, token: &str) -> Result<(), TunnelError> {
        let mut retries = 0;
        loop {
            let next = self
                .sequence
                .checked_add(1)
                .ok_or_else(|| TunnelError::OutOfRange {
                    what: "checkpoint sequence number",
                    subject: self.channel_id.clone(),
                    value: self.sequence,
                })?;
            match self.client.checkpoint(
                &self.tunnel_id,
                &self.client_id,
                &self.channel_id,
                token,
                next,
            ) {
                Ok(_) => {
                    self.sequence = next;
                    return Ok(());
                }
                Err(e) if e.is_sequence_mismatch() && retries < SEQUENCE_RETRIES => {
                    retries += 1;
                    log::info!(
                        "tunnel {} channel {}: {e}; re-reading the checkpoint",
                        self.tunnel_id,
                        self.channel_id
                    );
                    let cp = self.client.get_checkpoint(
                        &self.tunnel_id,
                        &self.client_id,
                        &self.channel_id,
                    )?;
                    self.sequence = cp.sequence_number;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn read(&mut self, ctx: &mut Context<Self>) -> Step<Self> {
        if !self.alive() {
            return Step::Stop(ExitReason::Shutdown);
        }
        let token = match self.token.clone() {
            Some(token) => token,
            None => match self.load_checkpoint() {
                Ok(token) => token,
                Err(e) => return self.fail("getcheckpoint", e),
            },
        };
        if token::is_finished(Some(&token)) {
            return Step::Stop(ExitReason::Normal);
        }
        let reply = match self.client.read_records(
            &self.tunnel_id,
            &self.client_id,
            &self.channel_id,
            &token,
        ) {
            Ok(reply) => reply.message,
            Err(e) => return self.fail("readrecords", e),
        };
        if reply.records.is_empty() {
            if token::is_finished(Some(&reply.next_token)) {
                if !self.alive() {
                    return Step::Stop(ExitReason::Shutdown);
                }
                return match self.checkpoint(FINISH_TOKEN) {
                    Ok(()) => Step::Stop(ExitReason::Normal),
                    Err(e) => self.fail("checkpoint", e),
                };
            }
            // Nothing new: back off, on a timer so that a stop is taken at once.
            self.token = Some(reply.next_token);
            let max = self.backoff.config().max_interval;
            let delay = self.backoff.next_delay().unwrap_or(max);
            ctx.send_after(ReaderMsg::Poll, delay);
            return Step::Next;
        }
        self.backoff.reset();
        let mut records = Vec::with_capacity(reply.records.len());
        for record in &reply.records {
            let decoded = ActionType::try_from(record.action_type)
                .map_err(|_| {
                    TunnelError::invalid_option(
                        "action_type",
                        format!("unknown record action type {}", record.action_type),
                    )
                })
                .and_then(|action| {
                    plainbuffer::decode_record(action, &record.record).map_err(TunnelError::from)
                });
            match decoded {
                Ok(row) => records.push(row),
                Err(e) => return self.fail("decoding a record", e),
            }
        }
        let Some(me) = self.me.clone().filter(WorkerRef::is_alive) else {
            return Step::Stop(ExitReason::Shutdown);
        };
        self.deliveries += 1;
        let delivery = self.deliveries;
        self.in_flight = Some(InFlight {
            delivery,
            next_token: reply.next_token,
        });
        let batch = Batch {
            tunnel_id: self.tunnel_id.clone(),
            channel_id: self.channel_id.clone(),
            records,
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
        Step::Next
    }

    fn acked(&mut self, delivery: u64) -> Step<Self> {
        match self.in_flight.take() {
            Some(batch) if batch.delivery == delivery => {
                if !self.alive() {
                    return Step::Stop(ExitReason::Shutdown);
                }
                if let Err(e) = self.checkpoint(&batch.next_token) {
                    return self.fail("checkpoint", e);
                }
                self.token = Some(batch.next_token);
                Step::Continue(())
            }
            other => {
                self.in_flight = other;
                Step::Next
            }
        }
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
            Info::Message(ReaderMsg::Nacked(delivery)) => {
                if self
                    .in_flight
                    .as_ref()
                    .is_some_and(|b| b.delivery == delivery)
                {
                    // Read the same token again and deliver the batch again.
                    self.in_flight = None;
                    Step::Continue(())
                } else {
                    Step::Next
                }
            }
            Info::Timer(_, ReaderMsg::Poll) | Info::Message(ReaderMsg::Poll) => {
                if self.in_flight.is_some() {
                    Step::Next
                } else {
                    self.read(ctx)
                }
            }
            Info::Timer(..) | Info::Down(_) | Info::Exit(_) => Step::Next,
        }
    }

    fn handle_continue(&mut self, (): (), ctx: &mut Context<Self>) -> Step<Self> {
        self.read(ctx)
    }
}
