//! The single error type of the LSN tracker component: [`LsnError`].
//!
//! Every fallible operation under [`crate`] returns `Result<_, LsnError>`, from parsing
//! PostgreSQL's textual LSNs ([`LsnError::InvalidLsn`]) to talking to the database
//! ([`LsnError::Db`], [`LsnError::Connect`], ...).

use std::time::Duration;

use otp_threads::dist::DistError;

use crate::remote_write::RejectReason;

/// Why a text was rejected as an LSN; carried by [`LsnError::InvalidLsn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsnParseIssue {
    /// There is no `/` separating the two halves, or there is more than one.
    MissingSeparator,
    /// The half before the `/` is empty.
    EmptyHigh,
    /// The half after the `/` is empty.
    EmptyLow,
    /// The half before the `/` contains something other than hexadecimal digits.
    BadHexHigh,
    /// The half after the `/` contains something other than hexadecimal digits.
    BadHexLow,
    /// The half before the `/` has more than 8 hexadecimal digits (does not fit 32 bits).
    HighTooLong,
    /// The half after the `/` has more than 8 hexadecimal digits (does not fit 32 bits).
    LowTooLong,
}

impl std::fmt::Display for LsnParseIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LsnParseIssue::MissingSeparator => "expected exactly one '/' between two hex numbers",
            LsnParseIssue::EmptyHigh => "the part before '/' is empty",
            LsnParseIssue::EmptyLow => "the part after '/' is empty",
            LsnParseIssue::BadHexHigh => "the part before '/' is not hexadecimal",
            LsnParseIssue::BadHexLow => "the part after '/' is not hexadecimal",
            LsnParseIssue::HighTooLong => "the part before '/' has more than 8 hex digits",
            LsnParseIssue::LowTooLong => "the part after '/' has more than 8 hex digits",
        })
    }
}

/// Errors of the LSN tracker component.
///
/// Database-facing variants wrap [`postgres::Error`]; use [`LsnError::is_connection`] to tell
/// a lost connection (worth retrying after a reconnect) from a rejected query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LsnError {
    /// A text is not a PostgreSQL LSN of the form `X/Y` (two hex numbers of at most 32 bits).
    #[error("invalid LSN {input:?}: {issue}")]
    InvalidLsn {
        /// The rejected text, verbatim.
        input: String,
        /// What is wrong with it.
        issue: LsnParseIssue,
    },

    /// The libpq-style connection string could not be parsed.
    #[error("invalid PostgreSQL connection configuration: {0}")]
    InvalidConfig(#[source] postgres::Error),

    /// Connecting (or re-connecting) to the server failed; `attempts` connection attempts were
    /// made, the last one failing with `source`.
    #[error("could not connect to PostgreSQL at {target} after {attempts} attempt(s): {source}")]
    Connect {
        /// `host:port` of the server, for diagnostics (never the password).
        target: String,
        /// How many connection attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        source: postgres::Error,
    },

    /// There is no live connection and the operation does not (re)connect by itself.
    #[error("not connected to PostgreSQL at {target}")]
    NotConnected {
        /// `host:port` of the server.
        target: String,
    },

    /// A query failed (SQL error, lost connection, ...).
    #[error("PostgreSQL query failed: {0}")]
    Db(#[from] postgres::Error),

    /// The server reported WAL page and segment sizes it cannot have (not powers of two,
    /// or a page larger than a segment).
    #[error("impossible WAL layout: {page_size}-byte pages in {segment_size}-byte segments")]
    InvalidWalLayout {
        /// `wal_block_size` as reported.
        page_size: u64,
        /// `wal_segment_size` in bytes as reported.
        segment_size: u64,
    },

    /// The server answered NULL where a value was required (e.g. an insert LSN).
    #[error("PostgreSQL returned NULL for {what}")]
    UnexpectedNull {
        /// What was being asked for.
        what: &'static str,
    },

    /// A reconnect loop was cancelled through the probe's cancel channel.
    #[error("reconnecting to PostgreSQL at {target} was cancelled")]
    Cancelled {
        /// `host:port` of the server.
        target: String,
    },

    /// Waiting for something took longer than allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),

    /// A tracker option has an invalid value.
    #[error("invalid LSN tracker option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The tracker's supervisor could not be started or stopped.
    #[error("the LSN tracker's supervisor failed")]
    Supervisor(#[source] otp_threads::SupervisorError),

    /// A call to the tracker's poller failed (it died mid-call, timed out, ...).
    #[error("a call to the LSN tracker's poller failed")]
    Runtime(#[source] otp_threads::Error),

    /// The tracker is not running (stopped, or its poller is restarting).
    #[error("the LSN tracker is not running")]
    NotRunning,

    /// The write of a read-your-writes operation failed; nothing was awaited.
    #[error("the write failed, nothing to wait for: {0}")]
    WriteFailed(#[source] postgres::Error),

    /// The write committed, but its WAL position could not be read, so there is nothing
    /// to wait for (fly_postgres issue #29: the position query inside a failed
    /// transaction).
    #[error("the write committed but its WAL position could not be read: {0}")]
    WalLookupFailed(#[source] postgres::Error),

    /// A cross-region write's call got no reply in time ([`DistError::Timeout`]). The
    /// write may or may not have committed: resend the same request (same key), which
    /// is never applied twice, or look the key up with
    /// [`recorded_write`](crate::recorded_write).
    #[error(
        "no reply from the primary writer on {node} in time (key {key:?}): the write may have committed"
    )]
    RemoteTimeout {
        /// The writer's node.
        node: String,
        /// The request's idempotency key.
        key: String,
        /// The distribution error (boxed: it is large).
        #[source]
        source: Box<DistError>,
    },

    /// The writer's node could not be reached, or the connection was lost during the
    /// call ([`DistError::NoConnection`]). Lost mid-call, the write may have committed:
    /// find out as for [`LsnError::RemoteTimeout`].
    #[error(
        "no connection to the primary writer's node {node} (key {key:?}): the write may have committed"
    )]
    RemoteNoConnection {
        /// The writer's node.
        node: String,
        /// The request's idempotency key.
        key: String,
        /// The distribution error (boxed: it is large).
        #[source]
        source: Box<DistError>,
    },

    /// The call to the writer failed otherwise: no such process ([`DistError::NoProc`]:
    /// nothing ran), the writer exited during the call ([`DistError::Exited`]: it may
    /// have committed), a reply of the wrong shape, ...
    #[error("the call to the primary writer on {node} failed (key {key:?})")]
    RemoteCall {
        /// The writer's node.
        node: String,
        /// The request's idempotency key.
        key: String,
        /// The distribution error (boxed: it is large).
        #[source]
        source: Box<DistError>,
    },

    /// The writer refused the request without running it: nothing was written.
    #[error("the primary writer on {node} rejected the request (key {key:?}): {reason}: {detail}")]
    RemoteWriteRejected {
        /// The writer's node.
        node: String,
        /// The request's idempotency key.
        key: String,
        /// Why.
        reason: RejectReason,
        /// The writer's details.
        detail: String,
    },

    /// The write failed on the primary and was rolled back: nothing committed. The
    /// cause is the writer's text (it crossed nodes), with its SQLSTATE when the server
    /// refused.
    #[error(
        "the write on the primary failed and was rolled back (key {key:?}, sqlstate {sqlstate:?}): {message}"
    )]
    RemoteWriteNotCommitted {
        /// The writer's node.
        node: String,
        /// The request's idempotency key.
        key: String,
        /// The server's SQLSTATE, if it refused.
        sqlstate: Option<String>,
        /// The error's text.
        message: String,
    },

    /// The writer lost its connection to the primary while committing: it does not
    /// know whether the write committed; the key tells.
    #[error("the commit's outcome on the primary is unknown (key {key:?}): {message}")]
    RemoteWriteOutcomeUnknown {
        /// The writer's node.
        node: String,
        /// The request's idempotency key.
        key: String,
        /// The error's text.
        message: String,
    },

    /// The remote write committed, but the writer could not read its WAL position.
    #[error("the remote write committed but its WAL position could not be read: {reason}")]
    RemoteWalLookupFailed {
        /// The writer's text.
        reason: String,
    },
}

impl LsnError {
    /// Builds [`LsnError::InvalidLsn`] for `input`.
    pub(crate) fn invalid_lsn(input: &str, issue: LsnParseIssue) -> Self {
        LsnError::InvalidLsn {
            input: input.to_owned(),
            issue,
        }
    }

    /// For the `Remote*` errors of [`rpc_and_wait`](crate::rpc_and_wait()): whether the
    /// write may have committed although no success was reported (a lost reply, a lost
    /// connection, a writer that exited mid-call, an unknown commit outcome). Then the
    /// caller must not assume either way: resend with the same key or look it up with
    /// [`recorded_write`](crate::recorded_write). `false` for every other error.
    pub fn remote_write_may_have_committed(&self) -> bool {
        match self {
            LsnError::RemoteTimeout { .. }
            | LsnError::RemoteNoConnection { .. }
            | LsnError::RemoteWriteOutcomeUnknown { .. } => true,
            LsnError::RemoteCall { source, .. } => !matches!(**source, DistError::NoProc),
            _ => false,
        }
    }

    /// True when the error means the connection is (or was) unusable rather than that the
    /// server rejected a statement: connection failures, [`LsnError::NotConnected`], and
    /// query errors caused by a closed socket or by the server shutting the session down.
    pub fn is_connection(&self) -> bool {
        match self {
            LsnError::Connect { .. } | LsnError::NotConnected { .. } => true,
            LsnError::Db(e) => is_connection_error(e),
            _ => false,
        }
    }
}

/// Whether a `postgres` error means the session is gone: the socket is closed, an I/O error
/// occurred, or the server terminated the session (admin/crash shutdown, "cannot connect now").
fn is_connection_error(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code()
        && (*code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || code.code().starts_with("08"))
    {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lsn_message_names_the_input_and_the_issue() {
        let e = LsnError::invalid_lsn("something-else", LsnParseIssue::MissingSeparator);
        let msg = e.to_string();
        assert!(msg.contains("\"something-else\""), "{msg}");
        assert!(msg.contains("'/'"), "{msg}");
        assert!(!e.is_connection());
    }

    #[test]
    fn connection_classification_of_non_db_variants() {
        assert!(
            LsnError::NotConnected {
                target: "127.0.0.1:5432".into()
            }
            .is_connection()
        );
        assert!(!LsnError::UnexpectedNull { what: "x" }.is_connection());
        assert!(!LsnError::Timeout(Duration::from_millis(5)).is_connection());
    }
}
