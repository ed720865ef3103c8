//! [`GroupConsumer`]: starts a group member and is its handle.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::acknowledger::{Acknowledger, Generation};
use super::config::GroupConfig;
use super::context::GroupContext;
use super::error::GroupError;
use super::events::MemberEvent;
use super::manager::Manager;
use super::membership::Membership;
use super::status::{MemberStatus, WorkerInfo};
use crossbeam_channel::Receiver;
use otp_threads::Error;
use otp_threads::ExitReason;
use otp_threads::Pid;
use otp_threads::RuntimeHandle;
use otp_threads::WorkerRef;

/// A running consumer group member: one supervised worker per assigned partition.
///
/// Cloning gives another handle to the same member. Dropping the handles does not stop
/// it; [`stop`](Self::stop) does, as does the runtime's shutdown.
#[derive(Clone)]
pub struct GroupConsumer {
    manager: WorkerRef<Manager>,
    membership: Arc<Membership>,
    outcome: Arc<Mutex<Option<GroupError>>>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("manager", &self.manager.pid())
            .field("generation", &self.membership.generation())
            .finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// Checks `config`, creates the consumer, subscribes, and starts the member's
    /// manager worker in `runtime`. Returns once the manager runs; partitions are
    /// assigned later, when the group has formed (see [`workers`](Self::workers)).
    pub fn start(
        runtime: &RuntimeHandle,
        config: GroupConfig,
    ) -> Result<GroupConsumer, GroupError> {
        let client_config = config.client_config()?;
        let membership = Arc::new(Membership::new(runtime.clone(), &config));
        let context = GroupContext {
            membership: membership.clone(),
        };
        let consumer: BaseConsumer<GroupContext> = client_config
            .create_with_context(context)
            .map_err(|source| GroupError::Kafka {
                action: "create the consumer",
                source,
            })?;
        let consumer = Arc::new(consumer);
        membership.set_consumer(Arc::downgrade(&consumer));
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| GroupError::Kafka {
                action: "subscribe",
                source,
            })?;
        let outcome = Arc::new(Mutex::new(None));
        let manager = Manager::new(consumer, membership.clone(), &config, outcome.clone());
        let started = match &config.name {
            Some(name) => runtime.spawn_named(name, manager),
            None => runtime.spawn_worker(manager),
        };
        let manager =
            started.map_err(|error| outcome.lock().take().unwrap_or(GroupError::Start(error)))?;
        Ok(GroupConsumer {
            manager,
            membership,
            outcome,
        })
    }

    /// The manager worker's pid (to link or monitor the member).
    pub fn pid(&self) -> Pid {
        self.manager.pid()
    }

    /// `true` while the member runs.
    pub fn is_alive(&self) -> bool {
        self.manager.is_alive()
    }

    /// The workers of the current assignment, by topic and partition.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.membership.workers()
    }

    /// The member's status: generation, partitions (offsets, lag, failures) and
    /// dropped events.
    pub fn status(&self) -> MemberStatus {
        self.membership.status()
    }

    /// The member's events (failures, dead letters, refused acks, lifecycle steps).
    /// Every call returns a handle to the same bounded channel: each event goes to one
    /// reader.
    pub fn events(&self) -> Receiver<MemberEvent> {
        self.membership.events()
    }

    /// The latest generation assigned to this member, if any.
    pub fn generation(&self) -> Option<Generation> {
        self.membership.generation()
    }

    /// The member's acknowledger: its table of acknowledged offsets.
    pub fn acknowledger(&self) -> &Acknowledger {
        self.membership.acknowledger()
    }

    /// Leaves the group in order — each worker finishes its batch, acknowledged offsets
    /// are committed, the consumer closes — waiting up to `timeout`. Returns the error
    /// the member had stopped with, if it had stopped already; any other failure of
    /// the runtime's stop is [`GroupError::Runtime`] with the runtime's error (such as
    /// [`Error::Exited`] with the member's real exit reason).
    pub fn stop(&self, timeout: Duration) -> Result<(), GroupError> {
        match self.manager.stop(ExitReason::Shutdown, timeout) {
            Ok(()) => Ok(()),
            Err(Error::NoProc) => self.outcome(),
            Err(Error::Timeout) => Err(GroupError::Timeout),
            Err(error) => Err(GroupError::Runtime(error)),
        }
    }

    /// Waits up to `timeout` for the member to stop; `None` if it still runs. `Ok(())`
    /// for an orderly stop, else the error it stopped with (such as
    /// [`GroupError::AssignmentRefused`]).
    pub fn wait(&self, timeout: Duration) -> Option<Result<(), GroupError>> {
        let down = self.manager.runtime().monitor(&self.manager.pid());
        down.wait(timeout)?;
        Some(self.outcome())
    }

    fn outcome(&self) -> Result<(), GroupError> {
        if let Some(error) = self.outcome.lock().clone() {
            return Err(error);
        }
        match self.manager.exit_reason() {
            Some(reason) if !reason.is_normal_stop() && reason != ExitReason::NoProc => {
                Err(GroupError::Stopped(reason))
            }
            _ => Ok(()),
        }
    }
}
