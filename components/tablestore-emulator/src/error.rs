//! [`EmulatorError`], the one error type of the emulator crate.

use std::time::Duration;

use otp_threads_tablestore::TunnelError;

/// Errors of the emulator: a bad option (named), a row change it cannot apply, a
/// refused direct operation, the HTTP server failing to start; and, for the
/// [`demo`](crate::demo), the tunnel client's or the runtime's errors, kept typed.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// An [`EmulatorConfig`](crate::EmulatorConfig) option is out of range.
    #[error("invalid emulator option `{option}`: {reason}")]
    InvalidOption {
        /// The option, as named by its field.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A row change given to [`Emulator::write`](crate::Emulator::write) (or one of
    /// its shorthands) cannot be applied; nothing was written.
    #[error("invalid row change for table `{table}`: {reason}")]
    InvalidRow {
        /// The table written to.
        table: String,
        /// What is wrong with the change.
        reason: String,
    },
    /// The emulated service refused a direct operation, with the error code a client
    /// would have received.
    #[error("{operation} refused: {code} (HTTP {status}): {message}")]
    Refused {
        /// The operation (`"create_tunnel"`, ...).
        operation: &'static str,
        /// HTTP status the service answers with.
        status: u16,
        /// Tablestore error code (`OTSTunnelExist`, ...).
        code: String,
        /// The service's message.
        message: String,
    },
    /// The HTTP server could not bind its loopback socket or start its threads.
    #[error("cannot start the emulator's HTTP server on 127.0.0.1")]
    Start(#[source] std::io::Error),
    /// The tunnel client or worker failed (demo). Boxed: it is the largest cause.
    #[error(transparent)]
    Tunnel(Box<TunnelError>),
    /// No batch arrived within the bound (demo).
    #[error("no batch arrived within {0:?}")]
    NoBatch(Duration),
}

impl EmulatorError {
    /// An [`EmulatorError::InvalidOption`] naming `option`.
    pub fn invalid_option(option: &'static str, reason: impl Into<String>) -> Self {
        EmulatorError::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}

impl From<TunnelError> for EmulatorError {
    fn from(error: TunnelError) -> Self {
        EmulatorError::Tunnel(Box::new(error))
    }
}
