//! The poller: reads the replica's replay position while anyone waits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ReplicaRole, Shared};
use crate::backoff::Backoff;
use crate::position::Lsn;
use crate::probe::{ProbeConfig, ReplicaProbe};
use otp_threads::{Context, ExitReason, Info, ReplyTo, Step, Worker};

/// Role and replay position in one round trip: one query per tick.
const SQL_ROLE_AND_REPLAY: &str =
    "SELECT pg_is_in_recovery(), CAST(pg_last_wal_replay_lsn() AS TEXT)";

/// Messages to the poller.
pub(crate) enum PollerMessage {
    /// A wait arrived while the poller slept.
    Wake,
    /// Time to poll.
    Tick,
}

/// Calls to the poller.
pub(crate) enum PollerCall {
    Status,
}

/// The poller's view of itself, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollerStatus {
    /// Sleeping until a wait arrives: no timer pending, no query coming.
    pub idle: bool,
    /// Timers pending in the poller (0 or 1).
    pub pending_timers: usize,
    /// Connected to the replica.
    pub connected: bool,
}

pub(crate) struct Poller {
    shared: Arc<Shared>,
    probe: ReplicaProbe,
    frequency: Duration,
    backoff: Backoff,
    tick_pending: bool,
    warned_not_replicating: bool,
}

impl Poller {
    pub(crate) fn new(shared: Arc<Shared>, probe: ProbeConfig, frequency: Duration) -> Poller {
        let backoff = Backoff::new(probe_min(&probe), probe_max(&probe));
        Poller {
            shared,
            probe: ReplicaProbe::lazy(probe),
            frequency,
            backoff,
            tick_pending: false,
            warned_not_replicating: false,
        }
    }

    fn schedule(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        if !self.tick_pending {
            self.tick_pending = true;
            ctx.send_after(PollerMessage::Tick, delay);
        }
    }

    /// One query; wakes the waiters it reached. Returns the delay to the next tick.
    fn poll(&mut self) -> Duration {
        self.shared.queries.fetch_add(1, Ordering::AcqRel);
        let result = self.probe.with_client(|client| {
            let row = client.query_one(SQL_ROLE_AND_REPLAY, &[])?;
            let in_recovery: bool = row.try_get(0)?;
            let replay: Option<String> = row.try_get(1)?;
            Ok((in_recovery, replay))
        });
        let (in_recovery, replay) = match result {
            Ok(answer) => answer,
            Err(error) => {
                let delay = self.backoff.next_delay();
                log::warn!("LSN poller: {error}; retrying in {delay:?}");
                self.probe.disconnect();
                return delay;
            }
        };
        self.backoff.reset();
        let release_to = if !in_recovery {
            if self.shared.role() != ReplicaRole::Primary {
                log::info!(
                    "LSN tracker: {} is a primary; every wait is ready at once",
                    self.probe.target()
                );
            }
            self.shared.set_role(ReplicaRole::Primary);
            Lsn(u64::MAX)
        } else {
            match replay.as_deref().map(Lsn::parse) {
                Some(Ok(lsn)) => {
                    self.shared.set_role(ReplicaRole::Standby);
                    self.shared.set_last_replay(lsn);
                    lsn
                }
                Some(Err(error)) => {
                    log::error!("LSN poller: unreadable replay position: {error}");
                    return self.frequency;
                }
                None => {
                    if !self.warned_not_replicating {
                        self.warned_not_replicating = true;
                        log::warn!(
                            "LSN tracker: standby {} is not replicating (NULL replay position); waits are ready at once",
                            self.probe.target()
                        );
                    }
                    self.shared.set_role(ReplicaRole::NotReplicating);
                    Lsn(u64::MAX)
                }
            }
        };
        let released = self.shared.waiters.lock().release_up_to(release_to);
        if released.total() > 0 {
            log::trace!(
                "LSN poller released {} waiters at {release_to}",
                released.total()
            );
        }
        self.frequency
    }

    /// After a tick: poll again later if anyone still waits, else sleep until woken.
    fn next(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        if !self.shared.waiters.lock().is_empty() {
            self.schedule(ctx, delay);
            return;
        }
        self.shared.poller_idle.store(true, Ordering::Release);
        // A wait that arrived between the check and the flag found the poller busy and
        // did not wake it: look again.
        if !self.shared.waiters.lock().is_empty()
            && self.shared.poller_idle.swap(false, Ordering::AcqRel)
        {
            self.schedule(ctx, delay);
        }
    }
}

fn probe_min(config: &ProbeConfig) -> Duration {
    config.backoff_bounds().0
}

fn probe_max(config: &ProbeConfig) -> Duration {
    config.backoff_bounds().1
}

impl Worker for Poller {
    type Call = PollerCall;
    type Reply = PollerStatus;
    type Cast = ();
    type Info = PollerMessage;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        *self.shared.poller.lock() = Some(ctx.handle());
        // Waits registered before a restart are still in the table.
        if self.shared.waiters.lock().is_empty() {
            self.shared.poller_idle.store(true, Ordering::Release);
        } else {
            self.shared.poller_idle.store(false, Ordering::Release);
            self.schedule(ctx, Duration::ZERO);
        }
        Ok(())
    }

    fn handle_call(
        &mut self,
        _: PollerCall,
        reply: ReplyTo<PollerStatus>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(PollerStatus {
            idle: self.shared.poller_idle.load(Ordering::Acquire),
            pending_timers: ctx.pending_timers(),
            connected: self.probe.is_connected(),
        });
        Step::Next
    }

    fn handle_info(&mut self, info: Info<PollerMessage>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Message(PollerMessage::Wake) => self.schedule(ctx, Duration::ZERO),
            Info::Timer(_, PollerMessage::Tick) | Info::Message(PollerMessage::Tick) => {
                self.tick_pending = false;
                let delay = self.poll();
                self.next(ctx, delay);
            }
            Info::Timer(_, PollerMessage::Wake) => self.schedule(ctx, Duration::ZERO),
            Info::Down(_) | Info::Exit(_) => {}
        }
        Step::Next
    }

    fn terminate(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        self.shared.poller.lock().take();
    }
}
