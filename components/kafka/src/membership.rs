//! [`Membership`]: the member's current assignment — one [`Slot`] and one supervised
//! worker per assigned partition — and what happens to it on assignment, failure,
//! revocation and commit (Elsa's `WorkerSupervisor.start_worker/restart_worker/
//! stop_all_workers`, and the manager's DOWN handling).
//!
//! Failure scope is the partition. Workers are temporary children of the member's
//! dynamic supervisor: the supervisor never restarts them, so no restart intensity can
//! stop the member. The member sees each worker's DOWN, records the failure in the
//! slot, reports it (a [`MemberEvent::WorkerFailed`] and a log line naming topic,
//! partition and offsets) and starts a new worker once the slot's restart delay has
//! passed. That partition stalls meanwhile; the others go on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::acknowledger::{Acknowledger, Generation};
use super::backoff::RestartDelay;
use super::config::{BeginOffset, GroupConfig};
use super::context::GroupContext;
use super::error::{GroupError, HookError};
use super::events::{EventSink, MemberEvent};
use super::lifecycle::{AssignedPartition, Lifecycle};
use super::partition::PartitionWorker;
use super::partition_lock::PartitionLock;
use super::slot::{Shared, Slot};
use super::status::{self, MemberStatus, WorkerInfo};
use otp_threads::Down;
use otp_threads::ExitReason;
use otp_threads::RuntimeHandle;
use otp_threads::supervisor::{ChildSpec, DynamicSupervisorRef, Restart, Shutdown};

type Key = (Arc<str>, i32);

/// The shortest time a start must stay beyond the high watermark to count as out of
/// range: beyond librdkafka's default `fetch.wait.max.ms` (500 ms) with room to spare.
const OUT_OF_RANGE_CONFIRM_MIN: Duration = Duration::from_secs(2);

/// The member's assignment, shared by the manager, the rebalance callbacks, the
/// workers' child specs and the [`GroupConsumer`](super::GroupConsumer) handle.
pub(crate) struct Membership {
    runtime: RuntimeHandle,
    consumer: OnceLock<Weak<BaseConsumer<GroupContext>>>,
    supervisor: Mutex<Option<DynamicSupervisorRef>>,
    shared: Arc<Shared>,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    locks: Mutex<HashMap<Key, Arc<PartitionLock>>>,
    /// Failed slots waiting for their restart delay.
    pending_restarts: Mutex<Vec<Arc<Slot>>>,
    next_generation: AtomicU64,
    latest_generation: Mutex<Option<Generation>>,
    lifecycle: Arc<dyn Lifecycle>,
    restart_delay: RestartDelay,
    worker_shutdown: Duration,
    refusal: Mutex<Option<GroupError>>,
    downs: (Sender<Down>, Receiver<Down>),
    stopping: AtomicBool,
}

impl Membership {
    pub(crate) fn new(runtime: RuntimeHandle, config: &GroupConfig) -> Membership {
        let shared = Shared {
            acknowledger: Acknowledger::default(),
            factory: config.factory.clone(),
            max_batch: config.max_batch,
            begin_offset: config.begin_offset,
            dead_letter: config.dead_letter.clone(),
            events: Arc::new(EventSink::new(config.event_capacity)),
            lock_bound: config.worker_shutdown,
            out_of_range_confirm: config
                .statistics_interval
                .saturating_mul(3)
                .max(OUT_OF_RANGE_CONFIRM_MIN),
        };
        Membership {
            runtime,
            consumer: OnceLock::new(),
            supervisor: Mutex::new(None),
            shared: Arc::new(shared),
            slots: Mutex::default(),
            locks: Mutex::default(),
            pending_restarts: Mutex::default(),
            next_generation: AtomicU64::new(0),
            latest_generation: Mutex::new(None),
            lifecycle: config.lifecycle.clone(),
            restart_delay: config.restart_delay,
            worker_shutdown: config.worker_shutdown,
            refusal: Mutex::new(None),
            downs: crossbeam_channel::unbounded(),
            stopping: AtomicBool::new(false),
        }
    }

    pub(crate) fn acknowledger(&self) -> &Acknowledger {
        &self.shared.acknowledger
    }

    pub(crate) fn events(&self) -> Receiver<MemberEvent> {
        self.shared.events.receiver()
    }

    pub(crate) fn set_consumer(&self, consumer: Weak<BaseConsumer<GroupContext>>) {
        let _ = self.consumer.set(consumer);
    }

    pub(crate) fn set_supervisor(&self, supervisor: Option<DynamicSupervisorRef>) {
        *self.supervisor.lock() = supervisor;
    }

    /// Once set, assignments start no workers (the member is leaving).
    pub(crate) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// The refusal of an `assignment_received` hook, once: the manager stops with it.
    pub(crate) fn take_refusal(&self) -> Option<GroupError> {
        self.refusal.lock().take()
    }

    /// The latest generation assigned, if any.
    pub(crate) fn generation(&self) -> Option<Generation> {
        *self.latest_generation.lock()
    }

    pub(crate) fn has_slots(&self) -> bool {
        !self.slots.lock().is_empty()
    }

    pub(crate) fn workers(&self) -> Vec<WorkerInfo> {
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        let acks = self.acknowledger();
        let now = Instant::now();
        let mut workers: Vec<WorkerInfo> = slots
            .iter()
            .map(|slot| {
                let (topic, partition) = (&slot.topic, slot.partition);
                let committed = acks.committed_offset(topic, partition);
                let high = slot.high_watermark();
                let failures = slot.failures.lock().clone();
                WorkerInfo {
                    topic: topic.clone(),
                    partition,
                    generation: slot.generation,
                    pid: *slot.worker.lock(),
                    restarts: slot.starts.load(Ordering::Acquire).saturating_sub(1),
                    latest_offset: acks.latest_offset(topic, partition),
                    consumed_offset: acks.consumed_offset(topic, partition),
                    committed_offset: committed,
                    high_watermark: high,
                    lag: status::lag(high, committed),
                    failures: failures.attempts,
                    restart_in: failures
                        .retry_at
                        .filter(|at| failures.attempts > 0 && *at > now)
                        .map(|at| at.duration_since(now)),
                }
            })
            .collect();
        workers.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        workers
    }

    pub(crate) fn status(&self) -> MemberStatus {
        MemberStatus {
            generation: self.generation(),
            partitions: self.workers(),
            events_dropped: self.shared.events.dropped(),
        }
    }

    /// An assignment: a new generation; every partition positioned (its committed
    /// offset, else the begin offset) and assigned; then the hooks and, unless one
    /// refuses, a split queue and a worker per partition.
    pub(crate) fn assign(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        partitions: &mut TopicPartitionList,
    ) {
        // Positioned here, not by librdkafka: its reset policy is `error`, so that an
        // offset out of range reaches the partition's worker. If the committed offsets
        // cannot be read, librdkafka looks them up itself.
        let committed = committed_offsets(consumer, partitions);
        if let Some(committed) = &committed {
            let begin = match self.shared.begin_offset {
                BeginOffset::Earliest => Offset::Beginning,
                BeginOffset::Latest => Offset::End,
                BeginOffset::Offset(offset) => Offset::Offset(offset),
            };
            let keys: Vec<Key> = partitions
                .elements()
                .iter()
                .map(|e| (Arc::from(e.topic()), e.partition()))
                .collect();
            for key in keys {
                let offset = committed.get(&key).map_or(begin, |o| Offset::Offset(*o));
                if let Err(error) = partitions.set_partition_offset(&key.0, key.1, offset) {
                    log::error!("cannot position {}/{}: {error}", key.0, key.1);
                }
            }
        }
        let committed = committed.unwrap_or_default();
        let assigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(partitions),
            _ => consumer.assign(partitions),
        };
        if let Err(error) = assigned {
            log::error!("assigning {partitions:?} failed: {error}");
            return;
        }
        if partitions.count() == 0 {
            return;
        }
        let generation = Generation(self.next_generation.fetch_add(1, Ordering::AcqRel));
        *self.latest_generation.lock() = Some(generation);
        let assignment: Vec<AssignedPartition> = partitions
            .elements()
            .iter()
            .map(|e| AssignedPartition {
                topic: e.topic().into(),
                partition: e.partition(),
                generation,
            })
            .collect();
        let refused = self.run_received_hooks(&assignment);
        if refused.is_none() {
            self.start_assignment(&assignment, &committed);
        }
        self.lifecycle
            .assignments_complete(generation, &assignment, refused.as_ref());
        self.shared.events.emit(MemberEvent::AssignmentsComplete {
            generation,
            partitions: assignment
                .iter()
                .map(|p| (p.topic.clone(), p.partition))
                .collect(),
            refused: refused.clone(),
        });
        if let Some(error) = refused {
            log::error!("{error}: the member stops");
            *self.refusal.lock() = Some(error);
        }
    }

    /// Elsa's `assignment_received_handler` per partition, stopping at the first error.
    fn run_received_hooks(&self, assignment: &[AssignedPartition]) -> Option<GroupError> {
        for partition in assignment {
            if let Err(error) = self.lifecycle.assignment_received(partition) {
                return Some(GroupError::AssignmentRefused {
                    topic: partition.topic.clone(),
                    partition: partition.partition,
                    generation: partition.generation,
                    source: HookError::new(error),
                });
            }
            self.shared.events.emit(MemberEvent::AssignmentReceived {
                topic: partition.topic.clone(),
                partition: partition.partition,
                generation: partition.generation,
            });
        }
        None
    }

    fn start_assignment(&self, assignment: &[AssignedPartition], committed: &HashMap<Key, i64>) {
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            log::error!("partitions assigned to a consumer that is going away");
            return;
        };
        let supervisor = self.supervisor.lock().clone();
        let Some(supervisor) = supervisor.filter(|_| !self.stopping.load(Ordering::Acquire)) else {
            log::warn!("partitions assigned while the member stops: no workers started");
            return;
        };
        for assigned in assignment {
            let (topic, partition) = (assigned.topic.clone(), assigned.partition);
            let Some(queue) = consumer.split_partition_queue(&topic, partition) else {
                log::error!("no queue for assigned partition {topic}/{partition}");
                continue;
            };
            let key = (topic.clone(), partition);
            let begin = committed.get(&key).copied();
            self.acknowledger()
                .assign(&topic, partition, assigned.generation, begin);
            let lock = self.locks.lock().entry(key.clone()).or_default().clone();
            let slot = Arc::new(Slot::new(
                topic,
                partition,
                assigned.generation,
                queue,
                consumer.clone(),
                self.shared.clone(),
                lock,
            ));
            self.slots.lock().insert(key, slot.clone());
            log::info!(
                "assigned {}/{} in {}: starting its worker",
                slot.topic,
                slot.partition,
                slot.generation
            );
            self.start_worker(&supervisor, slot);
        }
    }

    fn start_worker(&self, supervisor: &DynamicSupervisorRef, slot: Arc<Slot>) {
        if let Err(error) = supervisor.start_child(self.child_spec(slot.clone())) {
            log::error!(
                "starting the worker of {}/{} failed: {error}",
                slot.topic,
                slot.partition
            );
        }
    }

    /// The worker's child spec: temporary (the member, not the supervisor, restarts a
    /// failed worker, after its delay), each start resuming where the acknowledger
    /// says.
    fn child_spec(&self, slot: Arc<Slot>) -> ChildSpec {
        let downs = self.downs.0.clone();
        let id = format!("{}/{}", slot.topic, slot.partition);
        ChildSpec::new(id, move |ctx| {
            let restarts = slot.starts.fetch_add(1, Ordering::AcqRel);
            let begin = if restarts == 0 {
                None
            } else {
                slot.acknowledger()
                    .resume_offset(&slot.topic, slot.partition, slot.generation)
            };
            let worker = ctx.spawn_link(PartitionWorker::new(slot.clone(), begin, restarts))?;
            let pid = worker.pid();
            *slot.worker.lock() = Some(pid);
            ctx.runtime().monitor_to(&pid, &downs);
            Ok(pid)
        })
        .restart(Restart::Temporary)
        .shutdown(Shutdown::Timeout(self.worker_shutdown))
    }

    /// Handles the DOWNs of workers: a worker of a current slot that exited is a
    /// failure of its partition, to restart after the delay.
    pub(crate) fn drain_downs(&self) {
        while let Ok(down) = self.downs.1.try_recv() {
            if self.stopping.load(Ordering::Acquire) {
                continue;
            }
            let slot = self
                .slots
                .lock()
                .values()
                .find(|s| *s.worker.lock() == Some(down.pid))
                .cloned();
            if let Some(slot) = slot.filter(|s| !s.is_revoked()) {
                self.worker_failed(slot, down.reason);
            }
        }
    }

    fn worker_failed(&self, slot: Arc<Slot>, reason: ExitReason) {
        let batch = slot.in_hand.lock().take();
        if reason == ExitReason::Killed && slot.lock.abandon_if_held() {
            log::warn!(
                "worker of {}/{} was killed holding its partition: its lock is abandoned",
                slot.topic,
                slot.partition
            );
        }
        let (attempt, retry_in) =
            slot.failures
                .lock()
                .record(batch, reason.clone(), &self.restart_delay, Instant::now());
        let resume_offset =
            self.acknowledger()
                .resume_offset(&slot.topic, slot.partition, slot.generation);
        let at = match batch {
            Some((first, last)) => format!("in the batch of offsets {first}..={last}"),
            None => "outside a batch".to_owned(),
        };
        let resume = match resume_offset {
            Some(offset) => format!("at offset {offset}"),
            None => "where it started".to_owned(),
        };
        log::warn!(
            "worker of {}/{} ({}) failed {at} (attempt {attempt}): {reason}; restarting it \
             {resume} in {retry_in:?}; the other partitions go on",
            slot.topic,
            slot.partition,
            slot.generation
        );
        self.shared.events.emit(MemberEvent::WorkerFailed {
            topic: slot.topic.clone(),
            partition: slot.partition,
            generation: slot.generation,
            resume_offset,
            batch,
            attempt,
            retry_in,
            reason,
        });
        self.pending_restarts.lock().push(slot);
    }

    /// Starts the workers whose restart delay has passed (and drops those of slots
    /// revoked meanwhile).
    pub(crate) fn restart_due(&self) {
        let now = Instant::now();
        let due: Vec<Arc<Slot>> = {
            let mut pending = self.pending_restarts.lock();
            let (due, waiting): (Vec<_>, Vec<_>) = pending
                .drain(..)
                .filter(|s| !s.is_revoked())
                .partition(|s| s.failures.lock().retry_at.is_none_or(|at| at <= now));
            *pending = waiting;
            due
        };
        if due.is_empty() || self.stopping.load(Ordering::Acquire) {
            return;
        }
        let Some(supervisor) = self.supervisor.lock().clone() else {
            return;
        };
        for slot in due {
            self.start_worker(&supervisor, slot);
        }
    }

    /// The partitions being revoked: each worker finishes its batch and stops (killed
    /// after the worker shutdown timeout), the revoked hook runs, then their
    /// acknowledged offsets are committed and the partitions are given up.
    pub(crate) fn revoke(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        partitions: &TopicPartitionList,
    ) {
        let revoked: Vec<Arc<Slot>> = {
            let mut slots = self.slots.lock();
            partitions
                .elements()
                .iter()
                .filter_map(|e| slots.remove(&(Arc::from(e.topic()), e.partition())))
                .collect()
        };
        self.stop_and_commit(consumer, revoked);
        let unassigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(partitions),
            _ => consumer.unassign(),
        };
        if let Err(error) = unassigned {
            log::error!("giving up {partitions:?} failed: {error}");
        }
    }

    /// Revokes every partition (when leaving without a revocation from the group).
    pub(crate) fn revoke_all(&self, consumer: &BaseConsumer<GroupContext>) {
        let revoked: Vec<Arc<Slot>> = self.slots.lock().drain().map(|(_, s)| s).collect();
        self.stop_and_commit(consumer, revoked);
    }

    fn stop_and_commit(&self, consumer: &BaseConsumer<GroupContext>, revoked: Vec<Arc<Slot>>) {
        if revoked.is_empty() {
            return;
        }
        for slot in &revoked {
            slot.revoked.store(true, Ordering::Release);
        }
        let started = Instant::now();
        let deadline = started
            .checked_add(self.worker_shutdown)
            .unwrap_or_else(far_future);
        for slot in &revoked {
            self.await_worker(slot, deadline);
        }
        self.drain_downs();
        let partitions: Vec<AssignedPartition> = revoked
            .iter()
            .map(|s| AssignedPartition {
                topic: s.topic.clone(),
                partition: s.partition,
                generation: s.generation,
            })
            .collect();
        self.lifecycle
            .assignments_revoked(&partitions, self.acknowledger());
        let mut offsets = TopicPartitionList::new();
        for slot in &revoked {
            if let Some(offset) =
                self.acknowledger()
                    .revoke(&slot.topic, slot.partition, slot.generation)
                && let Err(error) = offsets.add_partition_offset(
                    &slot.topic,
                    slot.partition,
                    Offset::Offset(offset),
                )
            {
                log::error!("cannot commit {}/{}: {error}", slot.topic, slot.partition);
            }
        }
        if offsets.count() > 0 {
            match consumer.commit(&offsets, CommitMode::Sync) {
                Ok(()) => log::info!("committed on revocation: {offsets:?}"),
                Err(error) => log::warn!("commit on revocation failed: {error} ({offsets:?})"),
            }
        }
        self.shared.events.emit(MemberEvent::AssignmentsRevoked {
            partitions: partitions
                .into_iter()
                .map(|p| (p.topic, p.partition, p.generation))
                .collect(),
        });
        log::info!(
            "revoked {} partitions in {:?}",
            revoked.len(),
            started.elapsed()
        );
    }

    /// Waits until the slot's worker has exited, killing it at `deadline` (and
    /// abandoning the partition lock it may hold forever). A worker started meanwhile
    /// stops at once (the slot is revoked) and is awaited too.
    fn await_worker(&self, slot: &Slot, deadline: Instant) {
        loop {
            let Some(pid) = *slot.worker.lock() else {
                return;
            };
            let monitor = self.runtime.monitor(&pid);
            let left = deadline.saturating_duration_since(Instant::now());
            if monitor.wait(left).is_none() {
                log::warn!(
                    "worker of {}/{} did not finish its batch within {:?}: killing it",
                    slot.topic,
                    slot.partition,
                    self.worker_shutdown
                );
                self.runtime.kill(&pid);
                let _ = monitor.wait(Duration::from_secs(1));
                slot.lock.abandon_if_held();
            }
            if *slot.worker.lock() == Some(pid) {
                return;
            }
        }
    }

    /// Commits the accepted offsets not committed yet.
    pub(crate) fn commit(&self, consumer: &BaseConsumer<GroupContext>, mode: CommitMode) {
        let pending = self.acknowledger().uncommitted();
        if pending.is_empty() {
            return;
        }
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, _, offset) in &pending {
            let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        match consumer.commit(&offsets, mode) {
            Ok(()) => {
                for (topic, partition, generation, offset) in pending {
                    self.acknowledger()
                        .committed(&topic, partition, generation, offset);
                }
            }
            Err(error) => log::warn!("commit failed: {error} ({offsets:?})"),
        }
    }

    /// librdkafka's statistics: the partitions' high watermarks, for the lag.
    pub(crate) fn record_statistics(&self, statistics: &Statistics) {
        let slots = self.slots.lock();
        for (name, topic) in &statistics.topics {
            for (partition, figures) in &topic.partitions {
                if let Some(slot) = slots.get(&(Arc::from(name.as_str()), *partition)) {
                    slot.set_watermarks(figures.lo_offset, figures.hi_offset);
                }
            }
        }
    }

    /// Forgets the assignment (the member has left): drops the queues and with them the
    /// slots' references to the consumer.
    pub(crate) fn clear(&self) {
        self.slots.lock().clear();
        self.pending_restarts.lock().clear();
        *self.supervisor.lock() = None;
    }
}

/// A deadline for "as long as it takes".
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// How long an assignment waits for the group's committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// The group's committed offsets of `partitions` (those with one); `None` if they
/// could not be read.
fn committed_offsets(
    consumer: &BaseConsumer<GroupContext>,
    partitions: &TopicPartitionList,
) -> Option<HashMap<Key, i64>> {
    match consumer.committed_offsets(partitions.clone(), COMMITTED_TIMEOUT) {
        Ok(offsets) => Some(
            offsets
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(offset) => Some(((Arc::from(e.topic()), e.partition()), offset)),
                    _ => None,
                })
                .collect(),
        ),
        Err(error) => {
            log::warn!("reading the committed offsets of the assignment failed: {error}");
            None
        }
    }
}
