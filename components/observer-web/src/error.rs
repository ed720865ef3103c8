//! The crate's one error type.

use std::net::SocketAddr;

/// What can go wrong starting the web view, or with a request it is sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option of [`ObserverWebBuilder`](crate::ObserverWebBuilder) is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option, as the builder method is named.
        option: &'static str,
        /// Why the value is rejected.
        reason: &'static str,
    },
    /// The listening socket could not be bound.
    #[error("cannot bind the observer web view to {address}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
    /// A thread of the server could not be started.
    #[error("cannot start the observer web view's {thread} thread")]
    Spawn {
        /// Which thread.
        thread: &'static str,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
    /// A request that is not valid HTTP/1.x (answered with `400 Bad Request`).
    #[error("malformed HTTP request: {0}")]
    MalformedRequest(&'static str),
}
