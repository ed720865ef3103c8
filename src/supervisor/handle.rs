//! [`SupervisorRef`] and [`DynamicSupervisorRef`]: the runtime API of a running
//! supervisor, callable from any thread.
//!
//! Like OTP's supervisor API, these calls wait as long as the supervisor takes (a
//! `start_child` waits for the child's `init`).

use std::time::Duration;

use super::server::{Outcome, Request, RequestKind};
use super::{ChildCounts, ChildInfo, ChildRef, ChildSpec, Supervisor, SupervisorError};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::Pid;
use crate::runtime::RuntimeHandle;
use crate::worker::{Worker, WorkerRef};

fn request(worker: &WorkerRef<Supervisor>, kind: RequestKind) -> Result<Outcome, SupervisorError> {
    worker
        .call_timeout(Request(kind), Duration::MAX)
        .map_err(SupervisorError::Call)?
        .0
}

fn unexpected(outcome: Outcome) -> SupervisorError {
    log::error!("unexpected supervisor reply {outcome:?}");
    SupervisorError::Unsupported("this request")
}

macro_rules! common_api {
    () => {
        /// The supervisor's pid.
        pub fn pid(&self) -> Pid {
            self.worker.pid()
        }

        /// The underlying worker handle (to link, monitor, or call with a timeout).
        pub fn worker(&self) -> &WorkerRef<Supervisor> {
            &self.worker
        }

        /// `true` while the supervisor runs.
        pub fn is_alive(&self) -> bool {
            self.worker.is_alive()
        }

        /// Every child with its state (`which_children`), the most recently started
        /// first, as OTP lists them; a restarted child keeps its place.
        pub fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
            match request(&self.worker, RequestKind::WhichChildren)? {
                Outcome::Children(children) => Ok(children),
                other => Err(unexpected(other)),
            }
        }

        /// Counts of specs, running children, supervisors and workers
        /// (`count_children`).
        pub fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
            match request(&self.worker, RequestKind::CountChildren)? {
                Outcome::Counts(counts) => Ok(counts),
                other => Err(unexpected(other)),
            }
        }

        /// Stops the supervisor in order (its children first, in reverse start order)
        /// and waits up to `timeout` for it to exit.
        pub fn stop(&self, reason: ExitReason, timeout: Duration) -> Result<(), Error> {
            self.worker.stop(reason, timeout)
        }
    };
}

/// A handle to a running [`Supervisor`].
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    worker: WorkerRef<Supervisor>,
}

impl From<WorkerRef<Supervisor>> for SupervisorRef {
    fn from(worker: WorkerRef<Supervisor>) -> Self {
        SupervisorRef { worker }
    }
}

impl SupervisorRef {
    common_api!();

    /// The supervisor registered as `name`.
    pub fn whereis(runtime: &RuntimeHandle, name: &str) -> Result<SupervisorRef, Error> {
        runtime.whereis_worker(name).map(SupervisorRef::from)
    }

    /// A typed handle to the child `id`, a `W`, that resolves the running incarnation
    /// at each use: callers keep one handle across restarts. It answers `NoProc` while
    /// the child is not running. No check is made now: an unknown id or another worker
    /// type shows at first use.
    pub fn child<W: Worker>(&self, id: &str) -> ChildRef<W> {
        ChildRef::new(self.worker.clone(), id)
    }

    /// Adds a child spec and starts the child, after the existing children
    /// (`start_child`). Fails with `AlreadyStarted`/`AlreadyPresent` if the id is
    /// taken, or `ChildStartFailed` (the spec is then not kept).
    pub fn start_child(&self, spec: ChildSpec) -> Result<Pid, SupervisorError> {
        match request(&self.worker, RequestKind::StartChild(spec))? {
            Outcome::Started(pid) => Ok(pid),
            other => Err(unexpected(other)),
        }
    }

    /// Stops a child with its shutdown; its spec is kept (unless it is temporary) so
    /// that [`restart_child`](Self::restart_child) can start it again
    /// (`terminate_child`).
    pub fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        match request(&self.worker, RequestKind::TerminateChild(id.to_owned()))? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a terminated child again from its spec (`restart_child`).
    pub fn restart_child(&self, id: &str) -> Result<Pid, SupervisorError> {
        match request(&self.worker, RequestKind::RestartChild(id.to_owned()))? {
            Outcome::Started(pid) => Ok(pid),
            other => Err(unexpected(other)),
        }
    }

    /// Removes the spec of a terminated child (`delete_child`).
    pub fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        match request(&self.worker, RequestKind::DeleteChild(id.to_owned()))? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

/// A handle to a running [`DynamicSupervisor`](super::DynamicSupervisor).
#[derive(Clone, Debug)]
pub struct DynamicSupervisorRef {
    worker: WorkerRef<Supervisor>,
}

impl From<WorkerRef<Supervisor>> for DynamicSupervisorRef {
    fn from(worker: WorkerRef<Supervisor>) -> Self {
        DynamicSupervisorRef { worker }
    }
}

impl DynamicSupervisorRef {
    common_api!();

    /// The dynamic supervisor registered as `name`.
    pub fn whereis(runtime: &RuntimeHandle, name: &str) -> Result<DynamicSupervisorRef, Error> {
        runtime.whereis_worker(name).map(DynamicSupervisorRef::from)
    }

    /// Starts a child from `spec` (ids need not be unique here).
    pub fn start_child(&self, spec: ChildSpec) -> Result<Pid, SupervisorError> {
        match request(&self.worker, RequestKind::StartChild(spec))? {
            Outcome::Started(pid) => Ok(pid),
            other => Err(unexpected(other)),
        }
    }

    /// Stops the child `pid` with its shutdown and forgets it.
    pub fn terminate_child(&self, pid: &Pid) -> Result<(), SupervisorError> {
        match request(&self.worker, RequestKind::TerminateDynamic(*pid))? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
