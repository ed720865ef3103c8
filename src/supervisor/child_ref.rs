//! [`ChildRef`]: a typed handle to a supervisor's child by id, that follows restarts.
//!
//! A [`WorkerRef`] names one incarnation of a worker: once it has died, calls fail with
//! `NoProc` even though its supervisor has started a new one. A `ChildRef` names the
//! child *position* instead (the supervisor and the child's id) and resolves the
//! current pid at each use: it keeps the incarnation it found last and asks the
//! supervisor again as soon as that one is dead. While the child is not running
//! (terminated, restarting, removed, or the supervisor is gone) it answers
//! [`Error::NoProc`], as a call to a dead pid does; a cast is then dropped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::children::ChildState;
use super::server::{Outcome, Request, RequestKind};
use super::{Supervisor, SupervisorError};
use crate::error::Error;
use crate::pid::Pid;
use crate::worker::{Worker, WorkerRef};

/// A typed handle to the child `id` of a static supervisor, whichever incarnation
/// runs now. Made with [`SupervisorRef::child`](super::SupervisorRef::child).
pub struct ChildRef<W: Worker> {
    supervisor: WorkerRef<Supervisor>,
    id: Arc<str>,
    /// The incarnation found last; asked for again once it is dead.
    current: Mutex<Option<WorkerRef<W>>>,
}

impl<W: Worker> Clone for ChildRef<W> {
    fn clone(&self) -> Self {
        ChildRef {
            supervisor: self.supervisor.clone(),
            id: self.id.clone(),
            current: Mutex::new(self.current.lock().clone()),
        }
    }
}

impl<W: Worker> fmt::Debug for ChildRef<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChildRef<{}>({} of {})",
            std::any::type_name::<W>(),
            self.id,
            self.supervisor.pid()
        )
    }
}

impl<W: Worker> ChildRef<W> {
    pub(crate) fn new(supervisor: WorkerRef<Supervisor>, id: &str) -> ChildRef<W> {
        ChildRef {
            supervisor,
            id: id.into(),
            current: Mutex::new(None),
        }
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The supervisor's pid.
    pub fn supervisor(&self) -> Pid {
        self.supervisor.pid()
    }

    /// The handle of the incarnation running now: `NoProc` if the child is not running
    /// (or the supervisor is gone, or has no such child), `WrongWorkerType` if it is
    /// not a `W`.
    pub fn resolve(&self) -> Result<WorkerRef<W>, Error> {
        let mut current = self.current.lock();
        if let Some(worker) = current.as_ref()
            && worker.is_alive()
        {
            return Ok(worker.clone());
        }
        *current = None;
        let request = Request(RequestKind::FindChild(self.id.to_string()));
        let pid = match self.supervisor.call_timeout(request, Duration::MAX) {
            Ok(response) => match response.0 {
                Ok(Outcome::Child(info)) => match info.state {
                    ChildState::Running(pid) => pid,
                    ChildState::Restarting | ChildState::Terminated => {
                        return Err(Error::NoProc);
                    }
                },
                Ok(other) => {
                    log::error!("unexpected supervisor reply {other:?}");
                    return Err(Error::NoProc);
                }
                Err(SupervisorError::NotFound { .. }) => return Err(Error::NoProc),
                Err(error) => {
                    log::error!("finding child {} failed: {error}", self.id);
                    return Err(Error::NoProc);
                }
            },
            // The supervisor is gone (or went during the call): so is its child.
            Err(Error::NoProc | Error::Exited(_)) => return Err(Error::NoProc),
            Err(error) => return Err(error),
        };
        let worker = self.supervisor.runtime().worker_ref::<W>(&pid)?;
        *current = Some(worker.clone());
        Ok(worker)
    }

    /// The pid of the incarnation running now.
    pub fn pid(&self) -> Result<Pid, Error> {
        self.resolve().map(|worker| worker.pid())
    }

    /// Calls the running incarnation with the runtime's default timeout.
    pub fn call(&self, request: W::Call) -> Result<W::Reply, Error> {
        self.resolve()?.call(request)
    }

    /// Calls the running incarnation, waiting up to `timeout`.
    pub fn call_timeout(&self, request: W::Call, timeout: Duration) -> Result<W::Reply, Error> {
        self.resolve()?.call_timeout(request, timeout)
    }

    /// Casts to the running incarnation; dropped if the child is not running.
    pub fn cast(&self, message: W::Cast) {
        if let Ok(worker) = self.resolve() {
            worker.cast(message);
        }
    }

    /// Casts to the running incarnation; `NoProc` if the child is not running.
    pub fn try_cast(&self, message: W::Cast) -> Result<(), Error> {
        self.resolve()?.try_cast(message)
    }

    /// Sends a plain message to the running incarnation; dropped if it is not running.
    pub fn send(&self, message: W::Info) {
        if let Ok(worker) = self.resolve() {
            worker.send(message);
        }
    }
}
