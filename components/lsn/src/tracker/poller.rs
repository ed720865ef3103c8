//! The poller: asks the replica for its role and replay position while anyone waits,
//! and releases the waits it has reached. One query at a time, one prepared statement
//! per mode, one round trip per poll.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{PollMode, Shared};
use crate::backoff::Backoff;
use crate::error::LsnError;
use crate::long_poll::SQL_AWAIT_REPLAY;
use crate::position::Lsn;
use crate::probe::{ProbeConfig, ReplicaProbe};
use crate::role::{ReplicaRole, RoleChange};
use crate::waiters::Release;
use otp_threads::{Context, ExitReason, Info, ReplyTo, Step, Worker};

/// Role and replay position in one round trip.
pub(crate) const SQL_ROLE_AND_REPLAY: &str =
    "SELECT pg_is_in_recovery(), CAST(pg_last_wal_replay_lsn() AS TEXT)";

/// `duration` in whole milliseconds, if that fits an SQL `integer`.
pub(crate) fn millis_i32(duration: Duration) -> Option<i32> {
    i32::try_from(duration.as_millis()).ok()
}

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

#[derive(Clone, Copy, Debug)]
pub(crate) struct PollSettings {
    pub(crate) mode: PollMode,
    pub(crate) frequency: Duration,
}

pub(crate) struct Poller {
    shared: Arc<Shared>,
    probe: ReplicaProbe,
    settings: PollSettings,
    backoff: Backoff,
    tick_pending: bool,
    /// No poll before this instant: the rate bound, or the backoff after a failure.
    not_before: Option<Instant>,
    /// The connection whose role has been checked (see [`ReplicaProbe::connections`]).
    checked_connection: u64,
    warned_not_replicating: bool,
    /// A role change has been logged and not yet undone.
    role_change_logged: bool,
    /// The connection (see [`ReplicaProbe::connections`]) on which the long-poll function
    /// was missing: on it the poller falls back to interval polling.
    long_poll_missing_on: Option<u64>,
    /// Stopped by an exit signal from another process (the supervisor restarts it), not
    /// by its supervisor's shutdown.
    stopped_by_signal: bool,
}

impl Poller {
    pub(crate) fn new(shared: Arc<Shared>, probe: ProbeConfig, settings: PollSettings) -> Poller {
        let (min, max) = probe.backoff_bounds();
        Poller {
            shared,
            probe: ReplicaProbe::lazy(probe),
            settings,
            backoff: Backoff::new(min, max),
            tick_pending: false,
            not_before: None,
            checked_connection: 0,
            warned_not_replicating: false,
            role_change_logged: false,
            stopped_by_signal: false,
            long_poll_missing_on: None,
        }
    }

    /// Schedules the next poll at the earliest instant allowed.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.tick_pending {
            return;
        }
        self.tick_pending = true;
        let delay = self.not_before.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        });
        ctx.send_after(PollerMessage::Tick, delay);
    }

    /// One query; releases the waits it answers.
    fn poll(&mut self) {
        let started = Instant::now();
        let fallback = self.long_poll_missing_on.is_some()
            && self.long_poll_missing_on == Some(self.probe.connections())
            && self.probe.is_connected();
        let target = match self.settings.mode {
            PollMode::Interval => None,
            PollMode::LongPoll { .. } if fallback => None,
            PollMode::LongPoll { .. } => match self.shared.waiters.lock().lowest() {
                Some(lowest) => Some(lowest),
                None => return,
            },
        };
        // Connected first: only queries that are sent are counted, and a stop can
        // cancel the (long) query through the published token.
        if let Err(error) = self.probe.ensure_connected() {
            self.failed(error, started);
            return;
        }
        self.publish_cancel_token();
        self.shared.queries.fetch_add(1, Ordering::AcqRel);
        let answer = match (self.settings.mode, target) {
            (PollMode::LongPoll { timeout, nap }, Some(target)) => {
                self.not_before = None;
                let target = target.to_string();
                // Validated by TrackerConfig: both fit.
                let timeout = millis_i32(timeout).unwrap_or(i32::MAX);
                let nap = millis_i32(nap).unwrap_or(1);
                self.probe
                    .query_one_prepared(SQL_AWAIT_REPLAY, &[&target, &timeout, &nap])
            }
            _ => {
                let answer = self.probe.query_one_prepared(SQL_ROLE_AND_REPLAY, &[]);
                // The rate bound counts from the end of a poll, so that the server, too,
                // sees two polls at least `frequency` apart (a slow connect or reply
                // does not shorten the next interval).
                self.not_before = Some(Instant::now() + self.settings.frequency);
                answer
            }
        };
        let answer = answer.and_then(|row| {
            let in_recovery: bool = row.try_get(0)?;
            let replay: Option<String> = row.try_get(1)?;
            Ok((in_recovery, replay))
        });
        match answer {
            Ok((in_recovery, replay)) => {
                self.backoff.reset();
                self.observe(in_recovery, replay.as_deref());
                self.note_connection();
            }
            Err(error) => self.failed(error, started),
        }
    }

    /// Makes the current connection's cancel token available to a stop.
    fn publish_cancel_token(&mut self) {
        *self.shared.cancel.lock() = self.probe.cancel_token();
    }

    /// A new connection: its role was checked by the poll that just ran on it.
    fn note_connection(&mut self) {
        let connection = self.probe.connections();
        if connection != self.checked_connection {
            self.checked_connection = connection;
            self.publish_cancel_token();
            log::info!(
                "LSN tracker: connected to {}; role re-checked: {}",
                self.probe.target(),
                self.shared.observed()
            );
        }
    }

    fn failed(&mut self, error: LsnError, started: Instant) {
        if self.shared.stopped.load(Ordering::Acquire) {
            return; // the stop cancelled the query
        }
        if error.is_connection() || !self.probe.is_connected() {
            self.probe.disconnect();
            self.shared.forget_server_state();
        }
        if let LsnError::Db(db) = &error
            && db.code() == Some(&postgres::error::SqlState::UNDEFINED_FUNCTION)
            && matches!(self.settings.mode, PollMode::LongPoll { .. })
        {
            // Correct but slower: interval polling until the next connection.
            self.long_poll_missing_on = Some(self.probe.connections());
            log::warn!(
                "LSN poller: {} has no long-poll function; polling every {:?} on this \
                 connection instead. Install it on the primary with \
                 install_await_replay_function (or run AWAIT_REPLAY_FUNCTION there): {error}",
                self.probe.target(),
                self.settings.frequency
            );
            return;
        }
        let delay = self.backoff.next_delay();
        log::warn!(
            "LSN poller: {} at {}: {error}; retrying in {delay:?}",
            if error.is_connection() {
                "connection lost"
            } else {
                "poll failed"
            },
            self.probe.target()
        );
        let retry_at = started.max(Instant::now()) + delay;
        self.not_before = Some(self.not_before.map_or(retry_at, |at| at.max(retry_at)));
    }

    /// Records the server's answer and releases the waits it settles.
    fn observe(&mut self, in_recovery: bool, replay: Option<&str>) {
        let (observed, replay) = match (in_recovery, replay.map(Lsn::parse)) {
            (false, _) => (ReplicaRole::Primary, None),
            (true, None) => (ReplicaRole::NotReplicating, None),
            (true, Some(Ok(lsn))) => (ReplicaRole::Standby, Some(lsn)),
            (true, Some(Err(error))) => {
                log::error!("LSN poller: unreadable replay position: {error}");
                // Not at once again (a long poll would spin): after the interval.
                self.not_before = Some(Instant::now() + self.settings.frequency);
                return;
            }
        };
        let expected = self.shared.observe_role(observed);
        if !observed.same_role_as(expected) {
            let change = RoleChange { expected, observed };
            if !self.role_change_logged {
                self.role_change_logged = true;
                self.shared.role_changes.fetch_add(1, Ordering::AcqRel);
                log::warn!(
                    "LSN tracker: {} changed role: {change}; waits report the change instead of ready",
                    self.probe.target()
                );
            }
            self.shared
                .waiters
                .lock()
                .release_all(Release::RoleChanged(change));
            return;
        }
        if self.role_change_logged {
            self.role_change_logged = false;
            log::info!(
                "LSN tracker: {} is a {observed} again, as expected",
                self.probe.target()
            );
        }
        let released = match (observed, replay) {
            (ReplicaRole::Standby, Some(lsn)) => {
                self.shared.set_last_replay(lsn);
                self.shared.waiters.lock().release_up_to(lsn)
            }
            _ => {
                if observed == ReplicaRole::NotReplicating && !self.warned_not_replicating {
                    self.warned_not_replicating = true;
                    log::warn!(
                        "LSN tracker: standby {} is not replicating (NULL replay position); waits are ready at once",
                        self.probe.target()
                    );
                }
                self.shared
                    .waiters
                    .lock()
                    .release_all(Release::NothingToReplay)
            }
        };
        if released.total() > 0 {
            log::trace!("LSN poller released {} waiters", released.total());
        }
    }

    /// After a poll: poll again if anyone still waits, else sleep until woken.
    fn next(&mut self, ctx: &mut Context<Self>) {
        if self.shared.stopped.load(Ordering::Acquire) {
            return;
        }
        if !self.shared.waiters.lock().is_empty() {
            self.schedule(ctx);
            return;
        }
        self.shared.poller_idle.store(true, Ordering::Release);
        // A wait that arrived between the check and the flag found the poller busy and
        // did not wake it: look again.
        if !self.shared.waiters.lock().is_empty()
            && self.shared.poller_idle.swap(false, Ordering::AcqRel)
        {
            self.schedule(ctx);
        }
    }
}

impl Worker for Poller {
    type Call = PollerCall;
    type Reply = PollerStatus;
    type Cast = ();
    type Info = PollerMessage;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        // Trapped so that a shutdown from the supervisor runs `terminate`, which ends the
        // pending waits as Stopped; other exit signals still stop it (handle_info).
        ctx.trap_exit(true);
        *self.shared.poller.lock() = Some(ctx.handle());
        // Waits registered before a restart are still in the table.
        if self.shared.waiters.lock().is_empty() {
            self.shared.poller_idle.store(true, Ordering::Release);
        } else {
            self.shared.poller_idle.store(false, Ordering::Release);
            self.schedule(ctx);
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
            Info::Message(PollerMessage::Wake) | Info::Timer(_, PollerMessage::Wake) => {
                self.schedule(ctx)
            }
            Info::Timer(_, PollerMessage::Tick) | Info::Message(PollerMessage::Tick) => {
                self.tick_pending = false;
                self.poll();
                self.next(ctx);
            }
            // As if it did not trap: an exit signal from anyone but the supervisor (which
            // the runtime turns into a stop) kills it with the same reason, unless normal.
            Info::Exit(exit) if exit.reason.is_abnormal() => {
                self.stopped_by_signal = true;
                return Step::Stop(exit.reason);
            }
            Info::Down(_) | Info::Exit(_) => {}
        }
        Step::Next
    }

    fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.shared.poller.lock().take();
        self.shared.cancel.lock().take();
        if reason.is_normal_stop() && !self.stopped_by_signal {
            // Stopped on purpose (tracker or runtime shutdown): nobody will poll again.
            // A crash keeps the waits for the restarted poller.
            self.shared.stopped.store(true, Ordering::Release);
            self.shared.waiters.lock().release_all(Release::Stopped);
        }
    }
}
