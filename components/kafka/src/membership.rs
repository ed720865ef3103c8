//! [`Membership`]: the member's current assignment — one [`Slot`] and one supervised
//! worker per assigned partition — and what happens to it on assignment, revocation
//! and commit (Elsa's `WorkerSupervisor.start_worker/restart_worker/stop_all_workers`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::acknowledger::{Acknowledger, Generation};
use super::config::GroupConfig;
use super::context::GroupContext;
use super::crashes::{Crash, Crashes};
use super::handler::HandlerFactory;
use super::partition::{PartitionWorker, Slot};
use otp_threads::Down;
use otp_threads::Pid;
use otp_threads::RuntimeHandle;
use otp_threads::supervisor::{ChildSpec, DynamicSupervisorRef, Restart, Shutdown};

type Key = (Arc<str>, i32);

/// What the member records about a partition worker (Elsa's `WorkerState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The generation of the assignment.
    pub generation: Generation,
    /// The latest worker's pid (`None` before the first start).
    pub pid: Option<Pid>,
    /// How many times the worker was restarted in this generation.
    pub restarts: u32,
    /// The next offset after the latest acknowledged one, if any was acknowledged.
    pub latest_offset: Option<i64>,
    /// The next offset after the latest batch handled, whatever the handler answered.
    pub consumed_offset: Option<i64>,
}

/// The member's assignment, shared by the manager, the rebalance callbacks, the
/// workers' child specs and the [`GroupConsumer`](super::GroupConsumer) handle.
pub(crate) struct Membership {
    runtime: RuntimeHandle,
    consumer: OnceLock<Weak<BaseConsumer<GroupContext>>>,
    supervisor: Mutex<Option<DynamicSupervisorRef>>,
    pub(crate) acknowledger: Acknowledger,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    locks: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
    next_generation: AtomicU64,
    latest_generation: Mutex<Option<Generation>>,
    factory: HandlerFactory,
    max_batch: usize,
    worker_shutdown: Duration,
    restart_period: Duration,
    pub(crate) crashes: Crashes,
    downs: (Sender<Down>, Receiver<Down>),
    stopping: AtomicBool,
}

impl Membership {
    pub(crate) fn new(runtime: RuntimeHandle, config: &GroupConfig) -> Membership {
        Membership {
            runtime,
            consumer: OnceLock::new(),
            supervisor: Mutex::new(None),
            acknowledger: Acknowledger::default(),
            slots: Mutex::default(),
            locks: Mutex::default(),
            next_generation: AtomicU64::new(0),
            latest_generation: Mutex::new(None),
            factory: config.factory.clone(),
            max_batch: config.max_batch,
            worker_shutdown: config.worker_shutdown,
            restart_period: config.restart_period,
            crashes: Crashes::default(),
            downs: crossbeam_channel::unbounded(),
            stopping: AtomicBool::new(false),
        }
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

    /// The latest generation assigned, if any.
    pub(crate) fn generation(&self) -> Option<Generation> {
        *self.latest_generation.lock()
    }

    pub(crate) fn has_slots(&self) -> bool {
        !self.slots.lock().is_empty()
    }

    pub(crate) fn workers(&self) -> Vec<WorkerInfo> {
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        let mut workers: Vec<WorkerInfo> = slots
            .iter()
            .map(|slot| WorkerInfo {
                topic: slot.topic.clone(),
                partition: slot.partition,
                generation: slot.generation,
                pid: *slot.worker.lock(),
                restarts: slot.starts.load(Ordering::Acquire).saturating_sub(1),
                latest_offset: self.acknowledger.latest_offset(&slot.topic, slot.partition),
                consumed_offset: self
                    .acknowledger
                    .consumed_offset(&slot.topic, slot.partition),
            })
            .collect();
        workers.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        workers
    }

    /// The partitions just assigned: a new generation, a split queue and a worker each.
    pub(crate) fn assign(&self, partitions: &TopicPartitionList) {
        if partitions.count() == 0 {
            return;
        }
        let generation = Generation(self.next_generation.fetch_add(1, Ordering::AcqRel));
        *self.latest_generation.lock() = Some(generation);
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            log::error!("partitions assigned to a consumer that is going away");
            return;
        };
        let committed = committed_offsets(&consumer, partitions);
        let supervisor = self.supervisor.lock().clone();
        let Some(supervisor) = supervisor.filter(|_| !self.stopping.load(Ordering::Acquire)) else {
            log::warn!("partitions assigned while the member stops: no workers started");
            return;
        };
        for element in partitions.elements() {
            let topic: Arc<str> = element.topic().into();
            let partition = element.partition();
            let Some(queue) = consumer.split_partition_queue(&topic, partition) else {
                log::error!("no queue for assigned partition {topic}/{partition}");
                continue;
            };
            let begin = committed.get(&(topic.clone(), partition)).copied();
            self.acknowledger
                .assign(&topic, partition, generation, begin);
            let key = (topic.clone(), partition);
            let busy = self.locks.lock().entry(key.clone()).or_default().clone();
            let slot = Arc::new(Slot {
                topic,
                partition,
                generation,
                queue,
                consumer: consumer.clone(),
                acknowledger: self.acknowledger.clone(),
                factory: self.factory.clone(),
                max_batch: self.max_batch,
                revoked: AtomicBool::new(false),
                busy,
                worker: Mutex::new(None),
                starts: AtomicU32::new(0),
            });
            self.slots.lock().insert(key, slot.clone());
            log::info!(
                "assigned {}/{} in {generation}: starting its worker",
                slot.topic,
                slot.partition
            );
            if let Err(error) = supervisor.start_child(self.child_spec(slot.clone())) {
                log::error!(
                    "starting the worker of {}/{} failed: {error}",
                    slot.topic,
                    slot.partition
                );
            }
        }
    }

    /// The worker's child spec: transient (a revoked worker stops normally and is not
    /// restarted; a crashed one is), each start resuming where the acknowledger says.
    fn child_spec(&self, slot: Arc<Slot>) -> ChildSpec {
        let downs = self.downs.0.clone();
        let id = format!("{}/{}", slot.topic, slot.partition);
        ChildSpec::new(id, move |ctx| {
            let restarts = slot.starts.fetch_add(1, Ordering::AcqRel);
            let begin = if restarts == 0 {
                None
            } else {
                slot.acknowledger
                    .resume_offset(&slot.topic, slot.partition, slot.generation)
            };
            let worker = ctx.spawn_link(PartitionWorker::new(slot.clone(), begin, restarts))?;
            let pid = worker.pid();
            *slot.worker.lock() = Some(pid);
            ctx.runtime().monitor_to(&pid, &downs);
            Ok(pid)
        })
        .restart(Restart::Transient)
        .shutdown(Shutdown::Timeout(self.worker_shutdown))
    }

    /// Handles the DOWNs of workers: failures are logged and recorded.
    pub(crate) fn drain_downs(&self) {
        while let Ok(down) = self.downs.1.try_recv() {
            if down.reason.is_normal_stop() {
                continue;
            }
            let slot = self
                .slots
                .lock()
                .values()
                .find(|s| *s.worker.lock() == Some(down.pid))
                .cloned();
            if let Some(slot) = slot {
                log::warn!(
                    "worker of {}/{} ({}) failed: {}; restarting it from offset {:?}",
                    slot.topic,
                    slot.partition,
                    slot.generation,
                    down.reason,
                    self.acknowledger
                        .resume_offset(&slot.topic, slot.partition, slot.generation)
                );
                let crash = Crash {
                    at: Instant::now(),
                    topic: slot.topic.clone(),
                    partition: slot.partition,
                    reason: down.reason,
                };
                self.crashes.record(crash, self.restart_period);
            }
        }
    }

    /// The partitions being revoked: each worker finishes its batch and stops (killed
    /// after the worker shutdown timeout), then their acknowledged offsets are committed.
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
        let deadline = started + self.worker_shutdown;
        for slot in &revoked {
            self.await_worker(slot, deadline);
        }
        self.drain_downs();
        let mut offsets = TopicPartitionList::new();
        for slot in &revoked {
            if let Some(offset) =
                self.acknowledger
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
        log::info!(
            "revoked {} partitions in {:?}",
            revoked.len(),
            started.elapsed()
        );
    }

    /// Waits until the slot's worker has exited, killing it at `deadline`. A worker the
    /// supervisor restarted meanwhile stops at once (the slot is revoked) and is awaited
    /// too.
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
            }
            if *slot.worker.lock() == Some(pid) {
                return;
            }
        }
    }

    /// Commits the accepted offsets not committed yet.
    pub(crate) fn commit(&self, consumer: &BaseConsumer<GroupContext>, mode: CommitMode) {
        let pending = self.acknowledger.uncommitted();
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
                    self.acknowledger
                        .committed(&topic, partition, generation, offset);
                }
            }
            Err(error) => log::warn!("commit failed: {error} ({offsets:?})"),
        }
    }

    /// Forgets the assignment (the member has left): drops the queues and with them the
    /// slots' references to the consumer.
    pub(crate) fn clear(&self) {
        self.slots.lock().clear();
        *self.supervisor.lock() = None;
    }

    /// The exit reason to report when the worker supervisor gave up.
    pub(crate) fn culprit(&self) -> Option<Crash> {
        self.drain_downs();
        self.crashes.culprit(self.restart_period)
    }
}

/// How long an assignment waits for the group's committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// The group's committed offsets of `partitions` (those with one). On failure, none:
/// the acknowledger then has no floor, and a restart before the first ack resumes at
/// the first offset delivered.
fn committed_offsets(
    consumer: &BaseConsumer<GroupContext>,
    partitions: &TopicPartitionList,
) -> HashMap<Key, i64> {
    match consumer.committed_offsets(partitions.clone(), COMMITTED_TIMEOUT) {
        Ok(offsets) => offsets
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some(((Arc::from(e.topic()), e.partition()), offset)),
                _ => None,
            })
            .collect(),
        Err(error) => {
            log::warn!("reading the committed offsets of the assignment failed: {error}");
            HashMap::new()
        }
    }
}
