//! [`SupervisorError`], the errors of supervisors and their runtime API.

use crate::error::Error;
use crate::pid::Pid;

/// Errors of [`Supervisor`](super::Supervisor) and
/// [`DynamicSupervisor`](super::DynamicSupervisor): invalid specs and flags, failed
/// starts, and the refusals of the runtime API. Each names the child or option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// Two child specs share an id.
    #[error("duplicate child id `{id}`")]
    DuplicateChildId {
        /// The id.
        id: String,
    },
    /// A child spec is invalid (an empty id, a zero shutdown timeout).
    #[error("invalid child spec `{id}`: {reason}")]
    InvalidChildSpec {
        /// The child's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A supervisor flag is invalid (a zero period).
    #[error("invalid supervisor flag `{option}`: {reason}")]
    InvalidFlag {
        /// The flag.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A child's start function failed. At boot this fails the supervisor's start,
    /// after the children already started were stopped.
    #[error("child `{id}` failed to start: {error}")]
    ChildStartFailed {
        /// The child's id.
        id: String,
        /// How its start failed.
        error: Error,
    },
    /// The child's start function returned [`Error::Ignored`] (OTP's `ignore`, which
    /// `start_child` and `restart_child` answer with `{ok, undefined}`): no child runs.
    /// A static supervisor keeps the spec (unless the child is temporary); a dynamic one
    /// keeps nothing.
    #[error("the start of child `{id}` was ignored")]
    Ignored {
        /// The child's id.
        id: String,
    },
    /// `start_child` with the id of a running child.
    #[error("child `{id}` is already started as {pid}")]
    AlreadyStarted {
        /// The child's id.
        id: String,
        /// Its pid.
        pid: Pid,
    },
    /// `start_child` with the id of a child that is not running but whose spec is kept.
    #[error("child `{id}` is already present")]
    AlreadyPresent {
        /// The child's id.
        id: String,
    },
    /// No child has this id (or, for a dynamic supervisor, this pid).
    #[error("no child `{id}`")]
    NotFound {
        /// The id (or pid) asked for.
        id: String,
    },
    /// `restart_child` or `delete_child` on a running child.
    #[error("child `{id}` is running")]
    Running {
        /// The child's id.
        id: String,
    },
    /// `restart_child` or `delete_child` on a child whose restart is being retried.
    #[error("child `{id}` is restarting")]
    Restarting {
        /// The child's id.
        id: String,
    },
    /// A dynamic supervisor already has `max_children` children.
    #[error("the dynamic supervisor has its maximum of {max} children")]
    MaxChildren {
        /// The limit.
        max: usize,
    },
    /// The request is for the other kind of supervisor (static vs dynamic).
    #[error("{0} is not supported by this kind of supervisor")]
    Unsupported(&'static str),
    /// The supervisor itself failed to start (its name was taken, the runtime stops).
    #[error("the supervisor failed to start: {0}")]
    Start(Error),
    /// Calling the supervisor failed (it is not running, or it exited during the call).
    #[error("calling the supervisor failed: {0}")]
    Call(Error),
}
