//! [`LsnTracker`]: waits until a replica has replayed a WAL position.
//!
//! After fly_postgres's `Fly.Postgres.LSN.Tracker`. A caller registers the position its
//! write must reach ([`LsnTracker::request_notification`]) and waits on its own channel;
//! one *poller* worker asks the replica how far it has replayed and releases the waits
//! it has reached.
//!
//! # Contract
//!
//! - **Zero queries while nothing waits.** The poller sleeps without a timer until a wait
//!   arrives; waits the cached replay position already answers send nothing.
//! - **A bounded query rate.** In [`PollMode::Interval`] a poll starts at least
//!   `frequency` after the previous one ended, also when a wait arrives after an idle
//!   spell (the poll comes when that interval has passed, never as a burst): at most
//!   one query per `frequency`. In
//!   [`PollMode::LongPoll`] exactly one query is in flight while anyone waits: it returns
//!   as soon as replay passes the lowest awaited position, or after `long_poll_timeout`.
//!   Each poll is one prepared statement, one round trip (prepared once per connection).
//! - **No stale role.** The expected role comes from configuration or from the server's
//!   first answer ([`RoleSource`]); every poll re-reads `pg_is_in_recovery()` with the
//!   replay position, a reconnect forgets the role and the cached position, and a
//!   primary's "nothing to wait for" is trusted for at most `role_check_interval` before
//!   a wait makes the poller ask again. A role that differs from the expected one is
//!   logged (once per change) and every wait reports it ([`Wait::RoleChanged`]) instead
//!   of "ready"; it is also counted ([`LsnTracker::role_changes`]).
//! - **Every wait ends** by its own timeout at the latest: a poller crash or a lost
//!   connection leaves pending waits in the table, the restarted poller or the next
//!   connection picks them up; stopping the tracker ([`LsnTracker::stop`], or the
//!   runtime's shutdown) releases them with [`Wait::Stopped`].
//! - **Cached answers.** A position at or below the last replay position seen is ready
//!   without a query (it stays replayed, also on a promoted standby); the cache is
//!   dropped when the connection is lost, since the next server may be another one.
//!
//! # Why one supervised worker
//!
//! fly_postgres runs a `rest_for_one` supervisor over a Tracker, which only owns the
//! ETS tables, and a Reader: an ETS table dies with its owner process, so the table
//! needs an owner that runs no code that could crash. Here the waiter table is an
//! `Arc` shared by the [`LsnTracker`] handle and every [`Notification`]: it outlives
//! any process, and an owner process would own nothing. So the tree is a supervisor
//! with one child, the poller. The supervisor is kept for what it does do: it restarts a
//! poller that crashed (within the default intensity) while waits stay pending, it gives
//! the tracker a registered name ([`TrackerConfig::name`]), and the runtime's shutdown
//! stops it with everything else.
//!
//! Also different from the original, on purpose: any thread may hold any number of
//! waits; waiters are indexed by LSN (a poll releases the k ready waiters in
//! O(k log n)); a wait that times out or is dropped removes itself; the last replay
//! position is readable from any thread without messaging. A standby that is not
//! replicating (NULL replay position) is logged once and, as in fly_postgres, its waits
//! are ready at once.

mod poller;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use super::error::LsnError;
use super::position::Lsn;
use super::probe::ProbeConfig;
use super::role::{ReplicaRole, RoleChange, RoleSource};
use super::waiters::{Release, WaiterId, Waiters};
use otp_threads::supervisor::{ChildSpec, Shutdown, Strategy, Supervisor, SupervisorRef};
use otp_threads::{ExitReason, RuntimeHandle, WorkerRef};

use poller::{PollSettings, Poller, PollerMessage};

pub use poller::PollerStatus;

/// Default polling interval while anyone waits (fly_postgres's Tracker polls every
/// 100 ms).
pub const DEFAULT_FREQUENCY: Duration = Duration::from_millis(100);
/// Default wait timeout (fly_postgres's `replication_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on how long a primary's "nothing to wait for" is trusted without a
/// query.
pub const DEFAULT_ROLE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Default long-poll timeout (fly_postgres's `watch_for_lsn_change($1, 2)`: 2 s).
pub const DEFAULT_LONG_POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// Default pause of the long-poll function between two looks at the replay position
/// (fly_postgres sleeps 50 ms; 2 ms gives a release latency of a few ms).
pub const DEFAULT_LONG_POLL_NAP: Duration = Duration::from_millis(2);
/// Shortest long-poll nap: the function sleeps in whole milliseconds.
pub const MIN_LONG_POLL_NAP: Duration = Duration::from_millis(1);

/// How the poller asks the replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    /// One short query (`pg_is_in_recovery()`, `pg_last_wal_replay_lsn()`) at most
    /// every `frequency` while anyone waits. Needs nothing installed on the server.
    Interval,
    /// One long query at a time: the function
    /// [`AWAIT_REPLAY_FUNCTION`](crate::long_poll::AWAIT_REPLAY_FUNCTION) returns as soon
    /// as replay passes the lowest awaited position (looking every `nap`), or after
    /// `timeout`. Needs the function on the replica
    /// ([`install_await_replay_function`](crate::install_await_replay_function) on the
    /// primary). Where it is missing, the poller logs a warning and polls at `frequency`
    /// instead, until the next connection.
    LongPoll {
        /// Longest a single query waits on the server.
        timeout: Duration,
        /// Pause between two looks at the replay position, on the server.
        nap: Duration,
    },
}

/// Settings of an [`LsnTracker`]. Checked by [`LsnTracker::start`]: an invalid value is
/// [`LsnError::InvalidOption`] naming the option.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    replica: String,
    frequency: Duration,
    timeout: Duration,
    name: Option<String>,
    min_backoff: Duration,
    max_backoff: Duration,
    mode: PollMode,
    role_source: RoleSource,
    regions: Option<(String, String)>,
    role_check_interval: Duration,
}

impl TrackerConfig {
    /// A tracker of the replica at `replica` (a libpq-style connection string or URL).
    pub fn new(replica: impl Into<String>) -> TrackerConfig {
        TrackerConfig {
            replica: replica.into(),
            frequency: DEFAULT_FREQUENCY,
            timeout: DEFAULT_TIMEOUT,
            name: None,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            mode: PollMode::Interval,
            role_source: RoleSource::Server,
            regions: None,
            role_check_interval: DEFAULT_ROLE_CHECK_INTERVAL,
        }
    }

    /// Option `frequency`: the shortest interval between two polls in
    /// [`PollMode::Interval`], and in long-poll mode on a replica without the function
    /// (default 100 ms; must be greater than zero).
    pub fn frequency(mut self, frequency: Duration) -> Self {
        self.frequency = frequency;
        self
    }

    /// Option `timeout`: default timeout of waits (default 5 s; greater than zero).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Option `name`: registers the tracker's supervisor under this name (non-empty).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Option `reconnect_backoff`: after the replica connection drops, `min` doubling up
    /// to `max` (defaults 50 ms and 5 s; `min` greater than zero, `max` at least `min`).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// Polls with one short query per `frequency` (the default).
    pub fn interval_polling(mut self) -> Self {
        self.mode = PollMode::Interval;
        self
    }

    /// Options `long_poll_timeout` and `long_poll_nap`: long-polls instead
    /// ([`PollMode::LongPoll`]). `timeout` must be greater than zero and at most
    /// `i32::MAX` ms; `nap` at least 1 ms and less than `timeout`.
    pub fn long_poll(mut self, timeout: Duration, nap: Duration) -> Self {
        self.mode = PollMode::LongPoll { timeout, nap };
        self
    }

    /// Option `role_source`: where the expected role comes from (default: the server's
    /// first answer).
    pub fn role_source(mut self, source: RoleSource) -> Self {
        self.role_source = source;
        self.regions = None;
        self
    }

    /// Options `my_region` and `primary_region`: the expected role by region, as
    /// fly_postgres decides (`MY_REGION == PRIMARY_REGION` means the tracked database
    /// is the primary). Both must be non-empty.
    pub fn primary_by_region(
        mut self,
        my_region: impl Into<String>,
        primary_region: impl Into<String>,
    ) -> Self {
        let (mine, primary) = (my_region.into(), primary_region.into());
        self.role_source = RoleSource::by_region(&mine, &primary);
        self.regions = Some((mine, primary));
        self
    }

    /// Option `role_check_interval`: how long a primary's (or a non-replicating
    /// standby's) "nothing to wait for" is trusted before a wait makes the poller ask the
    /// server again (default 1 s; greater than zero).
    pub fn role_check_interval(mut self, interval: Duration) -> Self {
        self.role_check_interval = interval;
        self
    }

    fn validate(&self) -> Result<ProbeConfig, LsnError> {
        positive("frequency", self.frequency)?;
        positive("timeout", self.timeout)?;
        positive("role_check_interval", self.role_check_interval)?;
        validate_backoff(self.min_backoff, self.max_backoff)?;
        validate_mode(self.mode)?;
        if let Some(name) = &self.name
            && name.is_empty()
        {
            return Err(invalid("name", "must not be empty"));
        }
        if let Some((mine, primary)) = &self.regions {
            if mine.is_empty() {
                return Err(invalid("my_region", "must not be empty"));
            }
            if primary.is_empty() {
                return Err(invalid("primary_region", "must not be empty"));
            }
        }
        // One connection attempt per tick: the poller does its own backoff on timers,
        // so that it never blocks in a reconnect loop and stays stoppable.
        Ok(ProbeConfig::new(&self.replica)?
            .backoff(self.min_backoff, self.max_backoff)
            .reconnect_timeout(Some(Duration::ZERO)))
    }

    fn poll_settings(&self) -> PollSettings {
        PollSettings {
            mode: self.mode,
            frequency: self.frequency,
        }
    }
}

fn invalid(option: &'static str, reason: &str) -> LsnError {
    LsnError::InvalidOption {
        option,
        reason: reason.to_owned(),
    }
}

fn positive(option: &'static str, value: Duration) -> Result<(), LsnError> {
    if value.is_zero() {
        return Err(invalid(option, "must be greater than zero"));
    }
    Ok(())
}

fn validate_backoff(min: Duration, max: Duration) -> Result<(), LsnError> {
    if min.is_zero() || max < min {
        return Err(invalid(
            "reconnect_backoff",
            "min must be greater than zero and max at least min",
        ));
    }
    Ok(())
}

fn validate_mode(mode: PollMode) -> Result<(), LsnError> {
    let PollMode::LongPoll { timeout, nap } = mode else {
        return Ok(());
    };
    positive("long_poll_timeout", timeout)?;
    if poller::millis_i32(timeout).is_none() {
        return Err(invalid("long_poll_timeout", "must be at most i32::MAX ms"));
    }
    if nap < MIN_LONG_POLL_NAP {
        return Err(invalid("long_poll_nap", "must be at least 1 ms"));
    }
    if nap >= timeout {
        return Err(invalid(
            "long_poll_nap",
            "must be less than long_poll_timeout",
        ));
    }
    Ok(())
}

/// The outcome of a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The replica has replayed the position (or there is nothing to wait for: the
    /// server is a primary, as expected, or a standby that is not replicating).
    Ready,
    /// The timeout passed first.
    Timeout,
    /// The server's role is not the expected one (e.g. the tracked standby was
    /// promoted): the position may never be replayed there. Logged by the tracker.
    RoleChanged(RoleChange),
    /// The tracker stopped before the position was seen replayed.
    Stopped,
}

impl From<Release> for Wait {
    fn from(release: Release) -> Wait {
        match release {
            Release::Replayed(_) | Release::NothingToReplay => Wait::Ready,
            Release::RoleChanged(change) => Wait::RoleChanged(change),
            Release::Stopped => Wait::Stopped,
        }
    }
}

/// State shared by the tracker handle, its notifications and the poller.
pub(crate) struct Shared {
    waiters: Mutex<Waiters>,
    /// The last replay position seen, valid once `replay_known`.
    last_replay: AtomicU64,
    replay_known: AtomicBool,
    /// The role the server reported last ([`ReplicaRole::as_u8`]).
    observed: AtomicU8,
    /// The role expected of it: configured, or the first one observed.
    expected: AtomicU8,
    /// When `observed` was last confirmed by the server.
    role_checked_at: Mutex<Option<Instant>>,
    role_check_interval: Duration,
    configured_primary: bool,
    /// The running poller, to wake it when a wait arrives while it sleeps.
    poller: Mutex<Option<WorkerRef<Poller>>>,
    poller_idle: AtomicBool,
    /// Cancels the poller's query in flight (long-poll mode), for a prompt stop.
    cancel: Mutex<Option<postgres::CancelToken>>,
    stopped: AtomicBool,
    queries: AtomicU64,
    role_changes: AtomicU64,
}

impl Shared {
    fn new(role_source: &RoleSource, role_check_interval: Duration) -> Shared {
        Shared {
            waiters: Mutex::new(Waiters::new()),
            last_replay: AtomicU64::new(0),
            replay_known: AtomicBool::new(false),
            observed: AtomicU8::new(ReplicaRole::Unknown.as_u8()),
            expected: AtomicU8::new(role_source.configured().as_u8()),
            role_checked_at: Mutex::new(None),
            role_check_interval,
            configured_primary: *role_source == RoleSource::ConfiguredPrimary,
            poller: Mutex::new(None),
            poller_idle: AtomicBool::new(false),
            cancel: Mutex::new(None),
            stopped: AtomicBool::new(false),
            queries: AtomicU64::new(0),
            role_changes: AtomicU64::new(0),
        }
    }

    pub(crate) fn observed(&self) -> ReplicaRole {
        ReplicaRole::from_u8(self.observed.load(Ordering::Acquire))
    }

    pub(crate) fn expected(&self) -> ReplicaRole {
        ReplicaRole::from_u8(self.expected.load(Ordering::Acquire))
    }

    /// Records the server's answer; returns the expected role (set to `observed` if this
    /// is the first answer and nothing was configured).
    pub(crate) fn observe_role(&self, observed: ReplicaRole) -> ReplicaRole {
        self.observed.store(observed.as_u8(), Ordering::Release);
        *self.role_checked_at.lock() = Some(Instant::now());
        match self.expected.compare_exchange(
            ReplicaRole::Unknown.as_u8(),
            observed.as_u8(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => observed,
            Err(expected) => ReplicaRole::from_u8(expected),
        }
    }

    /// After a lost connection: the next server may be another one, or the same one in
    /// another role, so neither the role nor the replay position is trusted any more.
    pub(crate) fn forget_server_state(&self) {
        self.observed
            .store(ReplicaRole::Unknown.as_u8(), Ordering::Release);
        *self.role_checked_at.lock() = None;
        self.replay_known.store(false, Ordering::Release);
    }

    fn role_is_fresh(&self) -> bool {
        self.role_checked_at
            .lock()
            .is_some_and(|at| at.elapsed() < self.role_check_interval)
    }

    pub(crate) fn last_replay(&self) -> Option<Lsn> {
        self.replay_known
            .load(Ordering::Acquire)
            .then(|| Lsn(self.last_replay.load(Ordering::Acquire)))
    }

    pub(crate) fn set_last_replay(&self, lsn: Lsn) {
        self.last_replay.store(lsn.0, Ordering::Release);
        self.replay_known.store(true, Ordering::Release);
    }

    /// The release a wait for `lsn` gets at once, without a query, if any.
    fn immediate(&self, lsn: Lsn) -> Option<Release> {
        if self.configured_primary {
            return Some(Release::NothingToReplay);
        }
        if self.stopped.load(Ordering::Acquire) {
            return Some(Release::Stopped);
        }
        // A position the standby has replayed stays replayed, also after a promotion.
        if let Some(replay) = self.last_replay()
            && lsn.is_replayed_by(replay)
        {
            return Some(Release::Replayed(replay));
        }
        if !self.role_is_fresh() {
            return None;
        }
        let (observed, expected) = (self.observed(), self.expected());
        if observed == ReplicaRole::Unknown {
            return None;
        }
        if expected != ReplicaRole::Unknown && !observed.same_role_as(expected) {
            return Some(Release::RoleChanged(RoleChange { expected, observed }));
        }
        match observed {
            ReplicaRole::Primary | ReplicaRole::NotReplicating => Some(Release::NothingToReplay),
            ReplicaRole::Standby | ReplicaRole::Unknown => None,
        }
    }

    /// Wakes the poller if it sleeps for want of waiters.
    fn wake_poller(&self) {
        if self.poller_idle.swap(false, Ordering::AcqRel)
            && let Some(poller) = self.poller.lock().as_ref()
        {
            poller.send(PollerMessage::Wake);
        }
    }
}

/// A pending wait from [`LsnTracker::request_notification`].
///
/// Its [`receiver`](Self::receiver) gets the [`Release`] that ended it. Dropping the
/// notification removes the wait from the table.
pub struct Notification {
    lsn: Lsn,
    id: Option<WaiterId>,
    receiver: Receiver<Release>,
    shared: Arc<Shared>,
}

impl Notification {
    fn released(lsn: Lsn, release: Release, shared: Arc<Shared>) -> Notification {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        // Capacity 1, fresh channel: cannot fail.
        let _ = sender.send(release);
        Notification {
            lsn,
            id: None,
            receiver,
            shared,
        }
    }

    /// The awaited position.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The channel the release arrives on, for `select!`.
    pub fn receiver(&self) -> &Receiver<Release> {
        &self.receiver
    }

    /// Waits up to `timeout` for the replica to replay the position.
    pub fn wait(&self, timeout: Duration) -> Wait {
        match self.receiver.recv_timeout(timeout) {
            Ok(release) => release.into(),
            Err(RecvTimeoutError::Timeout) => Wait::Timeout,
            // Only a dropped table disconnects, and notifications keep it alive.
            Err(RecvTimeoutError::Disconnected) => Wait::Stopped,
        }
    }
}

impl Drop for Notification {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shared.waiters.lock().remove(id);
        }
    }
}

/// Read-your-writes on one PostgreSQL replica: see the [module docs](self).
pub struct LsnTracker {
    shared: Arc<Shared>,
    supervisor: SupervisorRef,
    timeout: Duration,
    mode: PollMode,
}

impl LsnTracker {
    /// Validates `config` and starts the tracker's supervisor and poller in `runtime`.
    ///
    /// The replica is not contacted here: the poller connects when the first wait
    /// arrives and reconnects with backoff, so a replica that is down at start is not an
    /// error.
    pub fn start(runtime: &RuntimeHandle, config: TrackerConfig) -> Result<LsnTracker, LsnError> {
        let probe_config = config.validate()?;
        let shared = Arc::new(Shared::new(&config.role_source, config.role_check_interval));
        let poller_shared = shared.clone();
        let settings = config.poll_settings();
        // A long poll finishes its query before it can stop.
        let shutdown = match config.mode {
            PollMode::LongPoll { timeout, .. } => timeout.saturating_add(Duration::from_secs(5)),
            PollMode::Interval => Duration::from_secs(5),
        };
        let poller = ChildSpec::worker("poller", move || {
            Poller::new(poller_shared.clone(), probe_config.clone(), settings)
        })
        .shutdown(Shutdown::Timeout(shutdown));
        let mut supervisor = Supervisor::new(Strategy::OneForOne).child(poller);
        if let Some(name) = &config.name {
            supervisor = supervisor.name(name.clone());
        }
        let supervisor = supervisor.start(runtime).map_err(LsnError::Supervisor)?;
        Ok(LsnTracker {
            shared,
            supervisor,
            timeout: config.timeout,
            mode: config.mode,
        })
    }

    /// The tracker's supervisor (one child, `"poller"`).
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.supervisor
    }

    /// The role the server reported last ([`ReplicaRole::Unknown`] before the first
    /// poll and after a lost connection).
    pub fn role(&self) -> ReplicaRole {
        self.shared.observed()
    }

    /// The role the tracker expects: configured, or the server's first answer.
    pub fn expected_role(&self) -> ReplicaRole {
        self.shared.expected()
    }

    /// How many times the server was seen to change from the expected role to another.
    pub fn role_changes(&self) -> u64 {
        self.shared.role_changes.load(Ordering::Acquire)
    }

    /// The last replay position seen (read without messaging).
    pub fn last_replay(&self) -> Option<Lsn> {
        self.shared.last_replay()
    }

    /// `true` if a wait for `lsn` would be ready at once, without a query.
    pub fn is_replicated(&self, lsn: Lsn) -> bool {
        matches!(
            self.shared.immediate(lsn),
            Some(Release::Replayed(_) | Release::NothingToReplay)
        )
    }

    /// Number of pending waits.
    pub fn waiting(&self) -> usize {
        self.shared.waiters.lock().len()
    }

    /// Queries the poller has sent to the replica so far.
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::Acquire)
    }

    /// The poller's own view (idle, pending timers, connected), by a call to it. In
    /// long-poll mode the call waits for the query in flight.
    pub fn poller_status(&self) -> Result<PollerStatus, LsnError> {
        let poller = self
            .shared
            .poller
            .lock()
            .clone()
            .ok_or(LsnError::NotRunning)?;
        let timeout = match self.mode {
            PollMode::LongPoll { timeout, .. } => timeout.saturating_add(Duration::from_secs(5)),
            PollMode::Interval => Duration::from_secs(5),
        };
        poller
            .call_timeout(poller::PollerCall::Status, timeout)
            .map_err(LsnError::Runtime)
    }

    /// Registers a wait for `lsn`. Waits answered without a query (replayed already, a
    /// primary checked recently, a known role change, a stopped tracker) are released on
    /// the spot.
    pub fn request_notification(&self, lsn: Lsn) -> Notification {
        if let Some(release) = self.shared.immediate(lsn) {
            return Notification::released(lsn, release, self.shared.clone());
        }
        let (id, receiver) = self.shared.waiters.lock().insert(lsn);
        if self.shared.stopped.load(Ordering::Acquire) {
            // Stopped between the check and the insert: nobody would release it.
            self.shared.waiters.lock().remove(id);
            return Notification::released(lsn, Release::Stopped, self.shared.clone());
        }
        self.shared.wake_poller();
        Notification {
            lsn,
            id: Some(id),
            receiver,
            shared: self.shared.clone(),
        }
    }

    /// Waits for a notification, up to `timeout`.
    pub fn await_notification(&self, notification: &Notification, timeout: Duration) -> Wait {
        notification.wait(timeout)
    }

    /// Registers a wait for `lsn` and waits up to `timeout` (default: the configured
    /// timeout, 5 s unless set).
    pub fn request_and_await(&self, lsn: Lsn, timeout: Option<Duration>) -> Wait {
        let started = Instant::now();
        let notification = self.request_notification(lsn);
        let timeout = timeout.unwrap_or(self.timeout);
        notification.wait(timeout.saturating_sub(started.elapsed()))
    }

    /// The configured default timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Stops the tracker: a long poll in flight is cancelled, the poller and its
    /// supervisor stop, and every pending wait ends with [`Wait::Stopped`].
    pub fn stop(&self, timeout: Duration) -> Result<(), LsnError> {
        self.shared.stopped.store(true, Ordering::Release);
        if let Some(token) = self.shared.cancel.lock().take()
            && let Err(error) = token.cancel_query(postgres::NoTls)
        {
            log::warn!("LSN tracker: could not cancel the poller's query: {error}");
        }
        let stopped = self
            .supervisor
            .stop(ExitReason::Shutdown, timeout)
            .map_err(LsnError::Runtime);
        self.shared.waiters.lock().release_all(Release::Stopped);
        stopped
    }
}
