//! [`Manager`]: the worker that is the group member (Elsa's `Elsa.Group.Manager`).
//!
//! It owns the librdkafka consumer and polls it (rebalances are served inside that
//! poll, see [`super::context::GroupContext`]), commits acknowledged
//! offsets every commit interval, restarts failed partition workers once their delay
//! has passed, and starts the dynamic supervisor of the partition workers, linked
//! (its workers are temporary: no restart intensity of theirs can stop the member).
//! It stops when an `assignment_received` hook refuses an assignment
//! ([`GroupError::AssignmentRefused`]) or the supervisor dies. On stop it leaves the
//! group: unsubscribe, serve the revocation (workers finish their batches, offsets
//! are committed), then close the consumer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::Offset;

use super::config::GroupConfig;
use super::context::GroupContext;
use super::error::GroupError;
use super::membership::{Membership, far_future};
use otp_threads::ExitReason;
use otp_threads::supervisor::{DynamicSupervisor, DynamicSupervisorRef};
use otp_threads::{Context, Info, Step, Worker, WorkerRef};

/// How long one poll of the consumer waits: the manager's tick.
const TICK: Duration = Duration::from_millis(50);
/// Extra time a leaving member polls for its revocation, beyond the worker shutdown.
const LEAVE_MARGIN: Duration = Duration::from_secs(10);

/// The manager's message to itself: poll the consumer once.
pub(crate) struct Tick;

pub(crate) struct Manager {
    consumer: Option<Arc<BaseConsumer<GroupContext>>>,
    membership: Arc<Membership>,
    supervisor: Option<DynamicSupervisorRef>,
    outcome: Arc<Mutex<Option<GroupError>>>,
    worker_shutdown: Duration,
    commit_interval: Duration,
    last_commit: Instant,
    me: Option<WorkerRef<Manager>>,
}

impl Manager {
    pub(crate) fn new(
        consumer: Arc<BaseConsumer<GroupContext>>,
        membership: Arc<Membership>,
        config: &GroupConfig,
        outcome: Arc<Mutex<Option<GroupError>>>,
    ) -> Manager {
        Manager {
            consumer: Some(consumer),
            membership,
            supervisor: None,
            outcome,
            worker_shutdown: config.worker_shutdown,
            commit_interval: config.commit_interval,
            last_commit: Instant::now(),
            me: None,
        }
    }

    fn tick(&mut self) -> Step<Self> {
        let Some(consumer) = self.consumer.clone() else {
            return Step::Stop(ExitReason::error("the consumer is gone"));
        };
        match consumer.poll(TICK) {
            Some(Ok(message)) => {
                // Partition queues are split before fetching starts, so this should not
                // happen; if it does, the partition's worker must see the message.
                let (topic, partition, offset) = (
                    message.topic().to_owned(),
                    message.partition(),
                    message.offset(),
                );
                drop(message);
                log::warn!(
                    "message {topic}/{partition}@{offset} reached the main queue: seeking its \
                     partition back to it"
                );
                if let Err(error) =
                    consumer.seek(&topic, partition, Offset::Offset(offset), Duration::ZERO)
                {
                    log::error!("seeking {topic}/{partition} to {offset} failed: {error}");
                }
            }
            Some(Err(error)) => log::warn!("group consumer: {error}"),
            None => {}
        }
        if let Some(error) = self.membership.take_refusal() {
            let exit = ExitReason::error(&error);
            *self.outcome.lock() = Some(error);
            return Step::Stop(exit);
        }
        self.membership.drain_downs();
        self.membership.restart_due();
        if self.last_commit.elapsed() >= self.commit_interval {
            self.last_commit = Instant::now();
            self.membership.commit(&consumer, CommitMode::Async);
        }
        if let Some(me) = &self.me {
            me.send(Tick);
        }
        Step::Next
    }

    /// The worker supervisor exited (it has no restart intensity to exceed: its
    /// workers are temporary), so the member cannot go on.
    fn supervisor_died(&mut self, reason: ExitReason) -> Step<Self> {
        self.supervisor = None;
        self.membership.set_supervisor(None);
        let error = GroupError::Stopped(reason);
        log::error!("group consumer stops: its worker supervisor exited: {error}");
        let exit = ExitReason::error(&error);
        *self.outcome.lock() = Some(error);
        Step::Stop(exit)
    }

    /// Leaves the group: workers finish their batches, offsets are committed, the
    /// consumer is closed.
    fn leave(&mut self) {
        self.membership.set_stopping();
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        consumer.unsubscribe();
        // A huge shutdown timeout means "as long as it takes", not an overflow.
        let deadline = Instant::now()
            .checked_add(self.worker_shutdown.saturating_add(LEAVE_MARGIN))
            .unwrap_or_else(far_future);
        while self.membership.has_slots() && Instant::now() < deadline {
            if let Some(Err(error)) = consumer.poll(TICK) {
                log::debug!("group consumer while leaving: {error}");
            }
        }
        // No revocation came (the broker is gone, say): stop the workers anyway.
        self.membership.revoke_all(&consumer);
        self.membership.commit(&consumer, CommitMode::Sync);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.stop(
                ExitReason::Shutdown,
                self.worker_shutdown.saturating_add(LEAVE_MARGIN),
            );
        }
        self.membership.clear();
        // The slots held the other references: closing happens here, on this thread.
        drop(consumer);
        log::info!("group consumer left its group");
    }
}

impl Worker for Manager {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = Tick;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        let supervisor = DynamicSupervisor::new().start_link(ctx).map_err(|error| {
            // The exit reason is text, so the typed error goes to `start` through the
            // outcome, which it returns instead of the runtime's `InitFailed`.
            let error = GroupError::Supervisor(error);
            let reason = ExitReason::error(&error);
            *self.outcome.lock() = Some(error);
            reason
        })?;
        self.membership.set_supervisor(Some(supervisor.clone()));
        self.supervisor = Some(supervisor);
        let me = ctx.handle();
        me.send(Tick);
        self.me = Some(me);
        Ok(())
    }

    fn handle_info(&mut self, info: Info<Tick>, _: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Message(Tick) | Info::Timer(_, Tick) => self.tick(),
            Info::Exit(exit)
                if self
                    .supervisor
                    .as_ref()
                    .is_some_and(|s| s.pid() == exit.from) =>
            {
                self.supervisor_died(exit.reason)
            }
            Info::Exit(_) | Info::Down(_) => Step::Next,
        }
    }

    fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        log::info!("group consumer stopping: {reason}");
        self.leave();
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // A manager killed without `terminate` (or whose init failed) still leaves.
        self.leave();
    }
}
