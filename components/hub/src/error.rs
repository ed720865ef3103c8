//! The one error type of the hub crate; runtime and distribution causes stay typed.

use otp_threads::dist::DistError;

/// Errors of the process hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// An option of [`HubConfig`](crate::HubConfig) is out of range.
    #[error("invalid hub option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as its builder method is called.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A child id is empty or too long.
    #[error("invalid child id {id:?}: {reason}")]
    InvalidChildId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The runtime refused an operation (spawn, call, stop).
    #[error("runtime error")]
    Runtime(#[from] otp_threads::Error),
    /// The hub's distributed supervisor refused an operation.
    #[error("supervisor error")]
    Supervisor(#[from] otp_threads::SupervisorError),
    /// The distribution layer failed (connection, call, term shape).
    #[error("distribution error")]
    Dist(#[from] DistError),
    /// A start, stop or call did not finish in time.
    #[error("timed out waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
    },
    /// No child of that id is registered in the hub.
    #[error("no child {0:?} in the hub")]
    NoChild(String),
    /// The majority-quorum partition strategy sees too few nodes: the hub refuses new
    /// children until the quorum is back.
    #[error("quorum lost: {members} node(s) seen, {quorum} needed")]
    QuorumLost {
        /// Nodes in the hub now (this one included).
        members: usize,
        /// Nodes needed.
        quorum: usize,
    },
    /// A child failed to start on a node. The reason crossed the wire as a term: the
    /// child's own [`HubChild::init`](crate::HubChild::init) reason when it refused,
    /// `{shutdown, _}` when that hub was stopping, else an `Error` reason.
    #[error("child {id:?} failed to start on {node}: {reason}")]
    StartFailed {
        /// The child id.
        id: String,
        /// The node that tried.
        node: String,
        /// Why, as that node reported it.
        reason: otp_threads::ExitReason,
    },
    /// The OS refused a thread the hub needs.
    #[error("could not start a hub thread")]
    Thread(#[from] std::io::Error),
    /// The hub has stopped.
    #[error("the hub has stopped")]
    Stopped,
}
