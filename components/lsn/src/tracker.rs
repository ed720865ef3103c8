//! [`LsnTracker`]: waits until a replica has replayed a WAL position.
//!
//! After fly_postgres's `Fly.Postgres.LSN.Tracker`. Two workers under a rest-for-one
//! supervisor, as in the original: the *table owner* holds the waiter table and the
//! replay cache, and the *poller* reads `pg_last_wal_replay_lsn()` from the replica and
//! wakes the waiters it has reached. A poller crash (or a dropped connection) leaves the
//! table and its waiters as they are; the restarted poller picks them up.
//!
//! What differs from the original, on purpose:
//! - any thread may hold any number of waits (the original allowed one per process);
//! - waiters are indexed by LSN, so a tick wakes the k ready waiters in O(k log n)
//!   instead of scanning every request;
//! - a wait that times out or is dropped removes itself (the original left timed-out
//!   requests behind, to send stray messages later);
//! - the database sees at most one query per tick however many wait, and none while
//!   nobody waits: the poller sleeps until a new wait wakes it;
//! - the last replay position is kept in a cell any thread reads without messaging.
//!
//! On a primary (`pg_is_in_recovery()` false) every wait is ready at once. A standby
//! that is not replicating (NULL replay position) is logged once, and, as in
//! fly_postgres, its waits are ready at once too: there is no replay to wait for.

mod poller;
mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use super::error::LsnError;
use super::position::Lsn;
use super::probe::ProbeConfig;
use super::waiters::{WaiterId, Waiters};
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorRef};
use otp_threads::{ExitReason, RuntimeHandle, WorkerRef};

use poller::{Poller, PollerMessage};
use table::TableOwner;

pub use poller::PollerStatus;

/// Default polling frequency while anyone waits (fly_postgres polls every 100 ms... in
/// effect; its stored procedure sleeps 50 ms between checks).
pub const DEFAULT_FREQUENCY: Duration = Duration::from_millis(100);
/// Default wait timeout (fly_postgres's `replication_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of an [`LsnTracker`].
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    replica: String,
    frequency: Duration,
    timeout: Duration,
    name: Option<String>,
    min_backoff: Duration,
    max_backoff: Duration,
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
        }
    }

    /// How often the replica is polled while anyone waits (default 100 ms).
    pub fn frequency(mut self, frequency: Duration) -> Self {
        self.frequency = frequency;
        self
    }

    /// Default timeout of waits (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Registers the tracker's supervisor under this name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Reconnection backoff after the replica connection drops: `min` doubling up to
    /// `max` (defaults 50 ms and 5 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    fn validate(&self) -> Result<ProbeConfig, LsnError> {
        let invalid = |option: &'static str, reason: &str| LsnError::InvalidOption {
            option,
            reason: reason.to_owned(),
        };
        if self.frequency.is_zero() {
            return Err(invalid("frequency", "must be greater than zero"));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be greater than zero"));
        }
        if self.min_backoff.is_zero() || self.max_backoff < self.min_backoff {
            return Err(invalid(
                "reconnect_backoff",
                "min must be greater than zero and max at least min",
            ));
        }
        // One connection attempt per tick: the poller does its own backoff on timers,
        // so that it never blocks in a reconnect loop and stays stoppable.
        Ok(ProbeConfig::new(&self.replica)?
            .backoff(self.min_backoff, self.max_backoff)
            .reconnect_timeout(Some(Duration::ZERO)))
    }
}

/// The outcome of a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The replica has replayed the position (or there is nothing to wait for: the
    /// server is a primary, or a standby that is not replicating).
    Ready,
    /// The timeout passed first.
    Timeout,
}

/// What the tracker knows about its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaRole {
    /// Not polled yet (or not reachable since start).
    Unknown,
    /// A primary: every wait is ready at once.
    Primary,
    /// A standby replaying WAL.
    Standby,
    /// A standby whose replay position is NULL: waits are ready at once.
    NotReplicating,
}

impl ReplicaRole {
    fn from_u8(value: u8) -> ReplicaRole {
        match value {
            1 => ReplicaRole::Primary,
            2 => ReplicaRole::Standby,
            3 => ReplicaRole::NotReplicating,
            _ => ReplicaRole::Unknown,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            ReplicaRole::Unknown => 0,
            ReplicaRole::Primary => 1,
            ReplicaRole::Standby => 2,
            ReplicaRole::NotReplicating => 3,
        }
    }
}

/// State shared by the tracker handle, the table owner and the poller.
pub(crate) struct Shared {
    waiters: Mutex<Waiters>,
    /// The last replay position seen, valid once `replay_known`.
    last_replay: AtomicU64,
    replay_known: AtomicBool,
    role: AtomicU8,
    /// The running poller, to wake it when a wait arrives while it sleeps.
    poller: Mutex<Option<WorkerRef<Poller>>>,
    poller_idle: AtomicBool,
    queries: AtomicU64,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            waiters: Mutex::new(Waiters::new()),
            last_replay: AtomicU64::new(0),
            replay_known: AtomicBool::new(false),
            role: AtomicU8::new(ReplicaRole::Unknown.as_u8()),
            poller: Mutex::new(None),
            poller_idle: AtomicBool::new(false),
            queries: AtomicU64::new(0),
        }
    }

    pub(crate) fn role(&self) -> ReplicaRole {
        ReplicaRole::from_u8(self.role.load(Ordering::Acquire))
    }

    pub(crate) fn set_role(&self, role: ReplicaRole) {
        self.role.store(role.as_u8(), Ordering::Release);
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

    /// `true` if a wait for `lsn` needs no waiting.
    fn is_ready(&self, lsn: Lsn) -> bool {
        match self.role() {
            ReplicaRole::Primary | ReplicaRole::NotReplicating => true,
            _ => self
                .last_replay()
                .is_some_and(|replay| lsn.is_replayed_by(replay)),
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
/// Its [`receiver`](Self::receiver) gets the replay position that released it. Dropping
/// the notification removes the wait from the table.
pub struct Notification {
    lsn: Lsn,
    id: Option<WaiterId>,
    receiver: Receiver<Lsn>,
    shared: Arc<Shared>,
}

impl Notification {
    /// The awaited position.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The channel the release arrives on, for `select!`.
    pub fn receiver(&self) -> &Receiver<Lsn> {
        &self.receiver
    }

    /// Waits up to `timeout` for the replica to replay the position.
    pub fn wait(&self, timeout: Duration) -> Wait {
        match self.receiver.recv_timeout(timeout) {
            Ok(_) => Wait::Ready,
            Err(RecvTimeoutError::Timeout) => Wait::Timeout,
            // The tracker was stopped: the position will not be seen replayed.
            Err(RecvTimeoutError::Disconnected) => Wait::Timeout,
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
}

impl LsnTracker {
    /// Starts the tracker's supervisor (table owner, then poller) in `runtime`.
    ///
    /// The replica is not contacted here: the poller connects on its first tick and
    /// reconnects with backoff, so a replica that is down at start is not an error.
    pub fn start(runtime: &RuntimeHandle, config: TrackerConfig) -> Result<LsnTracker, LsnError> {
        let probe_config = config.validate()?;
        let shared = Arc::new(Shared::new());
        let owner_shared = shared.clone();
        let poller_shared = shared.clone();
        let frequency = config.frequency;
        let mut supervisor = Supervisor::new(Strategy::RestForOne)
            .child(ChildSpec::worker("table", move || {
                TableOwner::new(owner_shared.clone())
            }))
            .child(ChildSpec::worker("poller", move || {
                Poller::new(poller_shared.clone(), probe_config.clone(), frequency)
            }));
        if let Some(name) = &config.name {
            supervisor = supervisor.name(name.clone());
        }
        let supervisor = supervisor.start(runtime).map_err(LsnError::Supervisor)?;
        Ok(LsnTracker {
            shared,
            supervisor,
            timeout: config.timeout,
        })
    }

    /// The tracker's supervisor.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.supervisor
    }

    /// What the tracker knows about its server.
    pub fn role(&self) -> ReplicaRole {
        self.shared.role()
    }

    /// The last replay position seen (read without messaging).
    pub fn last_replay(&self) -> Option<Lsn> {
        self.shared.last_replay()
    }

    /// `true` if the replica is known to have replayed `lsn` (or need not).
    pub fn is_replicated(&self, lsn: Lsn) -> bool {
        self.shared.is_ready(lsn)
    }

    /// Number of pending waits.
    pub fn waiting(&self) -> usize {
        self.shared.waiters.lock().len()
    }

    /// Queries the poller has sent to the replica so far.
    pub fn queries(&self) -> u64 {
        self.shared.queries.load(Ordering::Acquire)
    }

    /// The poller's own view (idle, pending timers), by a call to it.
    pub fn poller_status(&self) -> Result<PollerStatus, LsnError> {
        let poller = self
            .shared
            .poller
            .lock()
            .clone()
            .ok_or(LsnError::NotRunning)?;
        poller
            .call(poller::PollerCall::Status)
            .map_err(LsnError::Runtime)
    }

    /// Registers a wait for `lsn`. Ready waits are released on the spot.
    pub fn request_notification(&self, lsn: Lsn) -> Notification {
        if self.shared.is_ready(lsn) {
            let (sender, receiver) = crossbeam_channel::bounded(1);
            let _ = sender.send(self.shared.last_replay().unwrap_or(lsn));
            return Notification {
                lsn,
                id: None,
                receiver,
                shared: self.shared.clone(),
            };
        }
        let (id, receiver) = self.shared.waiters.lock().insert(lsn);
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

    /// Stops the tracker; pending waits end with [`Wait::Timeout`] at their deadline.
    pub fn stop(&self, timeout: Duration) -> Result<(), LsnError> {
        self.supervisor
            .stop(ExitReason::Shutdown, timeout)
            .map_err(LsnError::Runtime)
    }
}
