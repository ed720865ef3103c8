//! The error type of the core runtime.

use std::sync::Arc;

use crate::exit::ExitReason;
use crate::pid::Pid;

/// Errors of the core runtime: spawning, calling, linking, naming, shutting down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The process does not exist (it never did, or it has terminated).
    #[error("no such process")]
    NoProc,
    /// A call got no reply in time (a reply that comes later is dropped), or a
    /// plain-thread process's receive got nothing in time.
    #[error("timed out")]
    Timeout,
    /// The called worker terminated before it replied.
    #[error("the called worker exited: {0}")]
    Exited(ExitReason),
    /// The worker dropped the call's reply token without answering.
    #[error("the called worker dropped the request without replying")]
    NoReply,
    /// This plain-thread [`Process`](crate::Process) was killed by an exit signal it did
    /// not trap (its receives say so from then on).
    #[error("this process has terminated: {0}")]
    Terminated(ExitReason),
    /// The thread already runs a process (it is a worker's thread, or holds a
    /// [`Process`](crate::Process)): one process per thread.
    #[error("this thread already runs process {0}")]
    AlreadyAProcess(Pid),
    /// The call would close a cycle of workers blocked calling each other (these
    /// pids, the caller first): an exact deadlock, failed at once because the runtime
    /// was built with [`fail_deadlocked_calls`](crate::RuntimeBuilder::fail_deadlocked_calls).
    #[error("deadlock: this call closes the call cycle {0:?}")]
    Deadlock(Vec<Pid>),
    /// A worker called itself, which could only time out.
    #[error("a worker cannot call itself")]
    CallingSelf,
    /// `init` returned an error or panicked; the worker never ran.
    #[error("worker init failed: {0}")]
    InitFailed(ExitReason),
    /// `init` returned [`InitOutcome::Ignore`](crate::InitOutcome::Ignore) (Erlang's
    /// `ignore`): no process was started. A child spec's start function returns it to
    /// make its supervisor ignore the start.
    #[error("the start was ignored")]
    Ignored,
    /// The name is registered to another process.
    #[error("the name {0:?} is already registered")]
    NameTaken(Arc<str>),
    /// The process already has a registered name.
    #[error("process {pid} is already registered as {name:?}")]
    AlreadyRegistered {
        /// The process.
        pid: Pid,
        /// Its existing name.
        name: Arc<str>,
    },
    /// The pid or name belongs to a worker of another type than the one asked for.
    #[error("process {0} is not a worker of the requested type")]
    WrongWorkerType(Pid),
    /// The pid belongs to another node, and distribution is not running.
    #[error("no connection to node {0}")]
    NoConnection(String),
    /// The runtime is shutting down or has shut down.
    #[error("the runtime is shut down")]
    RuntimeStopped,
    /// An option has an invalid value.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A limit stopped a spawn before anything started: the runtime's `max_workers`, or
    /// an OS limit on threads (which one is said; see [`SystemLimit`](crate::SystemLimit)).
    #[error("system limit: {0}")]
    SystemLimit(crate::runtime::SystemLimit),
    /// Shutdown could not join every thread in time: these workers' threads were still
    /// running user code (a thread cannot be pre-empted), and are left detached.
    #[error("shutdown timed out; threads still running user code for {0:?}")]
    ShutdownIncomplete(Vec<Pid>),
}
