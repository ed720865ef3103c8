//! Child specifications: what a supervisor starts, when it restarts it, how it stops it.

use std::fmt;
use std::time::Duration;

use super::{DynamicSupervisor, Supervisor};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::Pid;
use crate::worker::{Context, Worker};

/// A child's start function. It runs on the supervisor's thread and must start the
/// child linked to the supervisor, normally with [`Context::spawn_link`], and return
/// its pid once it is running (the supervisor also links to the pid it gets back).
/// Returning [`Error::Ignored`] is OTP's `ignore` (a worker whose
/// [`init_outcome`](crate::Worker::init_outcome) ignores gives it through `spawn_link`):
/// no child runs, and the supervisor keeps the spec without a pid unless the child is
/// temporary.
pub type StartFn = Box<dyn FnMut(&mut Context<Supervisor>) -> Result<Pid, Error> + Send>;

/// When a terminated child is restarted (OTP's `restart` key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit: `Normal`, `Shutdown` and
    /// `ShutdownWith(_)` are normal.
    Transient,
    /// Never restarted, not even when a sibling's death under
    /// [`OneForAll`](super::Strategy::OneForAll) or
    /// [`RestForOne`](super::Strategy::RestForOne) terminates it; its spec is removed
    /// once it has terminated.
    Temporary,
}

impl Restart {
    /// `true` if a child of this restart type that exited with `reason` is restarted.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal_stop(),
            Restart::Temporary => false,
        }
    }
}

/// How a child is stopped (OTP's `shutdown` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Killed at once with an untrappable `Kill` (`brutal_kill`).
    BrutalKill,
    /// Sent a `Shutdown` exit signal, then killed if still running after this long.
    /// Must be greater than zero.
    Timeout(Duration),
    /// Sent a `Shutdown` exit signal and waited for as long as it takes; the default
    /// for supervisor children, which need the time to stop their own children.
    Infinity,
}

/// The default shutdown of a worker child: 5 s, as in OTP.
pub const DEFAULT_WORKER_SHUTDOWN: Shutdown = Shutdown::Timeout(Duration::from_millis(5000));

/// Whether a child is a worker or a supervisor (OTP's `type` key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// Any worker.
    #[default]
    Worker,
    /// A supervisor (or dynamic supervisor).
    Supervisor,
}

/// A child specification (OTP's `child_spec()` map).
///
/// Built with [`worker`](Self::worker), [`supervisor`](Self::supervisor),
/// [`dynamic_supervisor`](Self::dynamic_supervisor) or, for any start function,
/// [`new`](Self::new); then adjusted with [`restart`](Self::restart) and
/// [`shutdown`](Self::shutdown).
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
}

impl ChildSpec {
    /// A worker child started by `start`: permanent, 5 s shutdown.
    pub fn new(
        id: impl Into<String>,
        start: impl FnMut(&mut Context<Supervisor>) -> Result<Pid, Error> + Send + 'static,
    ) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            start: Box::new(start),
            restart: Restart::Permanent,
            shutdown: DEFAULT_WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
        }
    }

    /// A worker child: each start (and restart) links a fresh worker from `factory`.
    pub fn worker<W: Worker>(
        id: impl Into<String>,
        mut factory: impl FnMut() -> W + Send + 'static,
    ) -> ChildSpec {
        ChildSpec::new(id, move |ctx| {
            ctx.spawn_link(factory()).map(|child| child.pid())
        })
    }

    /// A supervisor child: each start links a fresh supervisor from `factory`.
    /// Its shutdown is [`Shutdown::Infinity`].
    pub fn supervisor(
        id: impl Into<String>,
        mut factory: impl FnMut() -> Supervisor + Send + 'static,
    ) -> ChildSpec {
        let mut spec = ChildSpec::new(id, move |ctx| {
            ctx.spawn_link(factory()).map(|child| child.pid())
        });
        spec.kind = ChildKind::Supervisor;
        spec.shutdown = Shutdown::Infinity;
        spec
    }

    /// A dynamic supervisor child: each start links a fresh one from `factory`.
    /// Its shutdown is [`Shutdown::Infinity`].
    pub fn dynamic_supervisor(
        id: impl Into<String>,
        mut factory: impl FnMut() -> DynamicSupervisor + Send + 'static,
    ) -> ChildSpec {
        ChildSpec::supervisor(id, move || factory().into_supervisor())
    }

    /// Sets the restart type (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets the shutdown (default 5 s for workers, infinity for supervisors).
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }

    /// Sets the kind (default [`ChildKind::Worker`], or `Supervisor` for
    /// [`supervisor`](Self::supervisor)). The kind only shows in
    /// [`which_children`](super::SupervisorRef::which_children) and
    /// [`count_children`](super::SupervisorRef::count_children).
    pub fn kind(mut self, kind: ChildKind) -> ChildSpec {
        self.kind = kind;
        self
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The restart type.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }

    /// The shutdown.
    pub fn shutdown_type(&self) -> Shutdown {
        self.shutdown
    }

    /// The kind.
    pub fn child_kind(&self) -> ChildKind {
        self.kind
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_types_follow_the_reason_checks_of_do_restart() {
        let normal = [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::shutdown_with("x"),
        ];
        let abnormal = [
            ExitReason::error("boom"),
            ExitReason::Killed,
            ExitReason::Panic("p".into()),
        ];
        for reason in normal.iter().chain(&abnormal) {
            assert!(Restart::Permanent.restarts_after(reason));
            assert!(!Restart::Temporary.restarts_after(reason));
        }
        for reason in &normal {
            assert!(!Restart::Transient.restarts_after(reason));
        }
        for reason in &abnormal {
            assert!(Restart::Transient.restarts_after(reason));
        }
    }

    #[test]
    fn supervisor_children_default_to_infinity_workers_to_five_seconds() {
        let worker = ChildSpec::new("w", |_| Err(Error::NoProc));
        assert_eq!(worker.shutdown, DEFAULT_WORKER_SHUTDOWN);
        assert_eq!(worker.kind, ChildKind::Worker);
        let sup = ChildSpec::supervisor("s", || Supervisor::new(super::super::Strategy::OneForOne));
        assert_eq!(sup.shutdown, Shutdown::Infinity);
        assert_eq!(sup.kind, ChildKind::Supervisor);
    }
}
