//! Supervisors: the `supervisor` behaviour of OTP (and Elixir's `Supervisor` and
//! `DynamicSupervisor`) on OS threads.
//!
//! A supervisor is a worker that starts, watches and restarts other workers, its
//! *children*, and stops them in order. Supervisors supervise supervisors, which makes
//! a *supervision tree*: a failure is handled by the nearest supervisor, and escalates
//! to the one above when restarting does not help.
//!
//! # The contract
//!
//! **Children.** Each child is described by a [`ChildSpec`]: an id, a start function,
//! a [`Restart`] type, a [`Shutdown`] and a [`ChildKind`]. Invalid specs (an id twice,
//! an empty id, a zero shutdown timeout) and invalid flags (a zero period) are
//! rejected with a [`SupervisorError`] naming the child or flag.
//!
//! **Start.** The supervisor traps exits, then starts its children in order, one
//! after the other, each start waiting for the child's `init`. If one fails, the
//! children already started are stopped (last started first) and the start of the
//! supervisor fails with [`SupervisorError::ChildStartFailed`] naming the child.
//!
//! **Restart.** When a child terminates, its restart type decides: a
//! [`Permanent`](Restart::Permanent) child is always restarted; a
//! [`Transient`](Restart::Transient) one only if the reason is abnormal (`Normal`,
//! `Shutdown` and `ShutdownWith(_)` are normal); a [`Temporary`](Restart::Temporary)
//! one never, and its spec is removed. The [`Strategy`] decides what is restarted:
//!
//! | strategy | restarted |
//! |---|---|
//! | [`OneForOne`](Strategy::OneForOne) | the child alone |
//! | [`OneForAll`](Strategy::OneForAll) | every child: the others are stopped (last started first), then all are started in order |
//! | [`RestForOne`](Strategy::RestForOne) | the child and those started after it, likewise |
//!
//! Temporary children stopped by a sibling's restart are not restarted, and removed.
//!
//! **Intensity.** Each supervisor keeps the times of its restarts in a sliding window:
//! more than `max_restarts` restarts within `period` (default 3 in 5 s, as Elixir; set
//! with [`Supervisor::intensity`]) make it stop all its children and exit with
//! `Shutdown`. Its own supervisor then handles that exit like any other: the failure
//! escalates up the tree.
//!
//! **Failed restarts.** A restart whose start function fails does not block the
//! supervisor: the child is marked [`ChildState::Restarting`] and the supervisor sends
//! itself a message to try again, serving calls in between. Each try counts against
//! the intensity.
//!
//! **Stop.** Children are stopped in reverse start order. Each is monitored, unlinked
//! and sent a `Shutdown` exit signal from the supervisor, then waited for up to its
//! shutdown timeout and killed if still running ([`Shutdown::BrutalKill`] kills at
//! once; [`Shutdown::Infinity`], the default for supervisor children, waits as long as
//! it takes). A child that traps exits runs its `terminate`, as a `gen_server` obeys
//! its parent. The supervisor stops when its parent sends it an exit signal (as
//! [`Runtime::shutdown`](crate::Runtime::shutdown) does for workers started from
//! plain threads), when [`SupervisorRef::stop`] is called, or when its intensity is
//! exceeded.
//!
//! **Runtime API.** [`SupervisorRef`] has `start_child`, `terminate_child`,
//! `restart_child`, `delete_child`, `which_children` and `count_children`, as OTP.
//! [`SupervisorRef::child`] gives a typed [`ChildRef`] to a child by id that follows
//! its restarts.
//!
//! **Dynamic supervisors.** A [`DynamicSupervisor`] starts with no children; they are
//! started at run time from a spec ([`DynamicSupervisorRef::start_child`]), up to an
//! optional `max_children`, and stopped by pid. When it stops, all its children are
//! told to stop at once and awaited together under one deadline, as OTP's
//! `terminate_dynamic_children`.
//!
//! **Trees.** A supervisor is a [`Worker`]: it can be linked, monitored and named
//! ([`Supervisor::name`]); a child spec made with [`ChildSpec::supervisor`] nests one.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use otp_threads::supervisor::{ChildSpec, ChildState, Strategy, Supervisor};
//! use otp_threads::{ExitReason, ReplyTo, Runtime, Step, Worker, Context};
//!
//! struct Echo;
//!
//! impl Worker for Echo {
//!     type Call = String;
//!     type Reply = String;
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!
//!     fn handle_call(&mut self, text: String, reply: ReplyTo<String>, _: &mut Context<Self>) -> Step<Self> {
//!         reply.reply(text);
//!         Step::Next
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let sup = Supervisor::new(Strategy::OneForOne)
//!     .intensity(30, Duration::from_secs(5))
//!     .child(ChildSpec::worker("echo", || Echo))
//!     .start(&runtime)
//!     .unwrap();
//!
//! let first = sup.which_children().unwrap()[0].state.pid().unwrap();
//! let down = runtime.monitor(&first);
//! runtime.exit(&first, ExitReason::error("crash"));
//! down.wait(Duration::from_secs(5)).unwrap();
//!
//! // The supervisor handled the EXIT before this call: a new echo is running.
//! let ChildState::Running(second) = sup.which_children().unwrap()[0].state else { panic!() };
//! assert_ne!(first, second);
//! let echo = runtime.worker_ref::<Echo>(&second).unwrap();
//! assert_eq!(echo.call("hi".into()).unwrap(), "hi");
//!
//! runtime.shutdown(Duration::from_secs(5)).unwrap();
//! ```

mod child_ref;
mod children;
mod dynamic;
mod error;
mod handle;
pub(crate) mod intensity;
mod server;
mod shutdown;
mod spec;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use child_ref::ChildRef;
pub use children::{ChildCounts, ChildInfo, ChildState};
pub use dynamic::DynamicSupervisor;
pub use error::SupervisorError;
pub use handle::{DynamicSupervisorRef, SupervisorRef};
pub use server::{Internal, Request, Response};
pub use spec::{ChildKind, ChildSpec, DEFAULT_WORKER_SHUTDOWN, Restart, Shutdown, StartFn};

use crate::error::Error;
use crate::runtime::RuntimeHandle;
use crate::worker::{Context, Worker, WorkerRef};
use children::{Child, DynamicChildren};
use intensity::RestartWindow;

/// Which children a supervisor restarts when one terminates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the terminated child.
    #[default]
    OneForOne,
    /// Every child: the others are stopped, then all are started again.
    OneForAll,
    /// The terminated child and the children started after it.
    RestForOne,
}

/// The default restart intensity: 3 restarts...
pub const DEFAULT_MAX_RESTARTS: u32 = 3;
/// ...within 5 seconds (Elixir's defaults).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);

/// A supervisor: build it with its flags and child specs, then start it.
///
/// Once started it runs as a worker of its own (this type is its [`Worker`]); talk to
/// it through the [`SupervisorRef`] that [`start`](Self::start) returns. See the
/// [module documentation](self) for the behaviour.
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    name: Option<String>,
    children: Children,
    restarts: RestartWindow,
    /// Where `init` leaves the precise reason of a failed start for the starter.
    report: Option<Arc<Mutex<Option<SupervisorError>>>>,
}

/// A supervisor's children: an ordered list, or a dynamic supervisor's set.
pub(crate) enum Children {
    Static(Vec<Child>),
    Dynamic {
        children: DynamicChildren,
        max_children: Option<usize>,
    },
}

impl Supervisor {
    /// A supervisor with `strategy`, no children yet, and the default intensity of 3
    /// restarts in 5 seconds.
    pub fn new(strategy: Strategy) -> Supervisor {
        Supervisor {
            strategy,
            max_restarts: DEFAULT_MAX_RESTARTS,
            period: DEFAULT_PERIOD,
            name: None,
            children: Children::Static(Vec::new()),
            restarts: RestartWindow::new(DEFAULT_MAX_RESTARTS, DEFAULT_PERIOD),
            report: None,
        }
    }

    pub(crate) fn dynamic(max_children: Option<usize>) -> Supervisor {
        Supervisor {
            children: Children::Dynamic {
                children: DynamicChildren::default(),
                max_children,
            },
            ..Supervisor::new(Strategy::OneForOne)
        }
    }

    /// Allows at most `max_restarts` restarts within `period` (e.g. 30 in 5 s).
    /// `period` must be greater than zero.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Supervisor {
        self.max_restarts = max_restarts;
        self.period = period;
        self.restarts = RestartWindow::new(max_restarts, period);
        self
    }

    /// Registers the supervisor under `name` before its children start.
    pub fn name(mut self, name: impl Into<String>) -> Supervisor {
        self.name = Some(name.into());
        self
    }

    /// Adds a child, started after those added before it.
    pub fn child(mut self, spec: ChildSpec) -> Supervisor {
        if let Children::Static(children) = &mut self.children {
            children.push(Child {
                spec,
                state: ChildState::Terminated,
            });
        }
        self
    }

    /// Adds children, in order.
    pub fn children(self, specs: impl IntoIterator<Item = ChildSpec>) -> Supervisor {
        specs.into_iter().fold(self, Supervisor::child)
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Starts the supervisor from a plain thread (its parent is the runtime's root
    /// pid), and its children; returns once they all run.
    pub fn start(self, runtime: &RuntimeHandle) -> Result<SupervisorRef, SupervisorError> {
        launch(self, |sup| runtime.spawn_worker(sup)).map(SupervisorRef::from)
    }

    /// Starts the supervisor linked to the calling worker, which becomes its parent
    /// (an exit signal from it stops the supervisor in order).
    pub fn start_link<W: Worker>(
        self,
        ctx: &mut Context<W>,
    ) -> Result<SupervisorRef, SupervisorError> {
        launch(self, |sup| ctx.spawn_link(sup)).map(SupervisorRef::from)
    }

    /// Starts the supervisor linked to a plain thread's [`Process`](crate::Process),
    /// which becomes its parent: when that process ends (even with `Normal`, as when the
    /// handle is dropped), the supervisor stops its children in order and exits.
    pub fn start_link_to_process<M: Send + 'static>(
        self,
        process: &crate::Process<M>,
    ) -> Result<SupervisorRef, SupervisorError> {
        launch(self, |sup| process.spawn_link(sup)).map(SupervisorRef::from)
    }
}

/// Spawns a supervisor; a failed start comes back as the precise error its `init`
/// left, not just its exit reason.
pub(crate) fn launch(
    mut supervisor: Supervisor,
    spawn: impl FnOnce(Supervisor) -> Result<WorkerRef<Supervisor>, Error>,
) -> Result<WorkerRef<Supervisor>, SupervisorError> {
    let slot = Arc::new(Mutex::new(None));
    supervisor.report = Some(slot.clone());
    spawn(supervisor).map_err(|error| slot.lock().take().unwrap_or(SupervisorError::Start(error)))
}
