//! The crate's one error type; runtime and distribution errors stay typed sources.

use otp_threads::dist::DistError;

/// What can go wrong in the zen monitor.
#[derive(Debug, thiserror::Error)]
pub enum ZenError {
    /// An option was out of range; names the option.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name (as in zen_monitor's application environment).
        option: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The runtime refused (spawning a worker, a call to one).
    #[error("runtime error")]
    Runtime(#[from] otp_threads::Error),
    /// The distribution layer refused (a send, a call to a remote Proxy).
    #[error("distribution error")]
    Dist(#[from] DistError),
    /// The zen monitor was shut down.
    #[error("the zen monitor has been shut down")]
    Stopped,
}
