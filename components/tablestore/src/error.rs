//! The single error type of the tunnel component, [`TunnelError`], and the
//! classification of Tablestore Tunnel service error codes.
//!
//! Every fallible function under [`crate`] returns `TunnelError` (or
//! an error that converts into it with `?`). Callers that need to decide what
//! to do next use [`TunnelError::class`]:
//!
//! | class | meaning | examples |
//! |---|---|---|
//! | [`ErrorClass::Retryable`] | transient; retry the same call after a backoff | `OTSTunnelServerUnavailable`, throttling ([`THROTTLING_CODES`]), any 5xx, transport errors |
//! | [`ErrorClass::Fatal`] | retrying or reconnecting cannot help; stop the tunnel | `OTSParameterInvalid`, `OTSTunnelExpired`, `OTSPermissionDenied`, invalid options |
//! | [`ErrorClass::SequenceMismatch`] | the checkpoint sequence number is stale: re-read the checkpoint and go on | `OTSSequenceNumberNotMatch` |
//! | [`ErrorClass::Other`] | not retryable as-is, but a new session (reconnect) may succeed | `OTSResourceGone`, undecodable bodies |

use std::time::Duration;

use super::plainbuffer::PlainBufferError;
use super::worker::RecordError;

/// Error code: the tunnel server is temporarily unavailable (retryable, like the
/// [`THROTTLING_CODES`]).
pub const OTS_TUNNEL_SERVER_UNAVAILABLE: &str = "OTSTunnelServerUnavailable";
/// Error code: a request parameter is invalid (fatal).
pub const OTS_PARAMETER_INVALID: &str = "OTSParameterInvalid";
/// Error code: the tunnel has expired (fatal).
pub const OTS_TUNNEL_EXPIRED: &str = "OTSTunnelExpired";
/// Error code: the credentials may not use this tunnel (fatal).
pub const OTS_PERMISSION_DENIED: &str = "OTSPermissionDenied";
/// Error code: the checkpoint's sequence number does not match the server's;
/// re-read the checkpoint and continue.
pub const OTS_SEQUENCE_NUMBER_NOT_MATCH: &str = "OTSSequenceNumberNotMatch";
/// Error code: the resource (channel, client) is gone.
pub const OTS_RESOURCE_GONE: &str = "OTSResourceGone";
/// Error code: a tunnel with that name already exists.
pub const OTS_TUNNEL_EXIST: &str = "OTSTunnelExist";
/// Error code used by the SDKs for a non-2xx response whose body is not an
/// `Error` message and whose status is below 500.
pub const OTS_CLIENT_ERROR: &str = "OTSClientError";

/// Error code: throttled, `OTSQuotaExhausted`; retryable only with the message
/// [`QUOTA_THROTTLED_MESSAGE`] (other quota errors, e.g. too many tables, are not
/// transient).
pub const OTS_QUOTA_EXHAUSTED: &str = "OTSQuotaExhausted";
/// The message that makes `OTSQuotaExhausted` a throttling error.
pub const QUOTA_THROTTLED_MESSAGE: &str = "Too frequent table operations.";

/// Service codes that mean "busy or throttled: the same request may succeed later",
/// retried with backoff whatever their HTTP status (4xx included).
///
/// The official SDKs (Python, Go, Node.js, PHP `should_retry_no_matter_which_api`)
/// retry `OTSRowOperationConflict`, `OTSNotEnoughCapacityUnit`, `OTSTableNotReady`,
/// `OTSPartitionUnavailable`, `OTSServerBusy`, `OTSOperationThrottled` (and
/// `OTSQuotaExhausted` with [`QUOTA_THROTTLED_MESSAGE`]); the C++ SDK adds
/// `OTSCapacityUnitExhausted` and `OTSTooFrequentReservedThroughputAdjustment`;
/// ex_aliyun_ots adds `OTSStorageServerBusy`, `OTSTimeout`, `OTSServerUnavailable`
/// and `OTSInternalServerError` (which the SDKs retry on idempotent calls; every
/// tunnel call is safe to repeat, a repeated checkpoint being reconciled through its
/// sequence number).
pub const THROTTLING_CODES: &[&str] = &[
    "OTSRowOperationConflict",
    "OTSNotEnoughCapacityUnit",
    "OTSTableNotReady",
    "OTSPartitionUnavailable",
    "OTSServerBusy",
    "OTSOperationThrottled",
    "OTSCapacityUnitExhausted",
    "OTSTooFrequentReservedThroughputAdjustment",
    "OTSStorageServerBusy",
    "OTSTimeout",
    "OTSServerUnavailable",
    "OTSInternalServerError",
];

/// What a caller should do about an error; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient: retry the same request after a backoff.
    Retryable,
    /// Permanent: give up on the tunnel.
    Fatal,
    /// `OTSSequenceNumberNotMatch`: re-read the checkpoint, then continue.
    SequenceMismatch,
    /// Neither retryable nor fatal: a new session may succeed.
    Other,
}

/// Classify a service error code (and the HTTP status and message it came with).
///
/// Fatal codes win over the status; `OTSTunnelServerUnavailable`, the
/// [`THROTTLING_CODES`], `OTSQuotaExhausted` with [`QUOTA_THROTTLED_MESSAGE`] and any
/// 5xx status are retryable.
pub fn classify_code(code: &str, http_status: u16, message: &str) -> ErrorClass {
    match code {
        OTS_PARAMETER_INVALID | OTS_TUNNEL_EXPIRED | OTS_PERMISSION_DENIED => ErrorClass::Fatal,
        OTS_SEQUENCE_NUMBER_NOT_MATCH => ErrorClass::SequenceMismatch,
        OTS_TUNNEL_SERVER_UNAVAILABLE => ErrorClass::Retryable,
        OTS_QUOTA_EXHAUSTED if message == QUOTA_THROTTLED_MESSAGE => ErrorClass::Retryable,
        _ if THROTTLING_CODES.contains(&code) => ErrorClass::Retryable,
        _ if http_status >= 500 => ErrorClass::Retryable,
        _ => ErrorClass::Other,
    }
}

/// The error type of the tunnel component.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// A configuration option is missing or out of range.
    #[error("invalid tunnel option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name, as the user spells it (e.g. `endpoint`).
        option: &'static str,
        /// Why the value was rejected.
        reason: String,
    },

    /// The request never produced an HTTP response (DNS, connect, TLS, I/O,
    /// timeout), or its body could not be read. Retryable.
    #[error("transport error calling {uri}: {source}")]
    Transport {
        /// The tunnel URI that was called (e.g. `/tunnel/heartbeat`).
        uri: String,
        /// The HTTP client's error, typed; also
        /// [`source`](std::error::Error::source).
        #[source]
        source: ureq::Error,
    },

    /// The service answered with a non-2xx status and a decodable `Error`
    /// body.
    #[error("tunnel service error {code} (HTTP {status}) calling {uri}: {message}")]
    Service {
        /// The tunnel URI that was called.
        uri: String,
        /// HTTP status of the response.
        status: u16,
        /// The service error code, e.g. `OTSTunnelServerUnavailable`.
        code: String,
        /// The service's message (empty when absent).
        message: String,
        /// The tunnel id the error refers to, when the service sent one.
        tunnel_id: Option<String>,
        /// The `x-ots-requestid` response header, when present.
        request_id: Option<String>,
    },

    /// The service answered with a non-2xx status whose body is not an
    /// `Error` message. Retryable for 5xx.
    #[error("HTTP {status} calling {uri} with an undecodable error body")]
    HttpStatus {
        /// The tunnel URI that was called.
        uri: String,
        /// HTTP status of the response.
        status: u16,
        /// The `x-ots-requestid` response header, when present.
        request_id: Option<String>,
    },

    /// A protobuf message could not be decoded.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// Which message was being decoded.
        what: &'static str,
        /// The protobuf decoder's error.
        #[source]
        source: prost::DecodeError,
    },

    /// A PlainBuffer record could not be decoded.
    #[error(transparent)]
    PlainBuffer(#[from] PlainBufferError),

    /// A channel token is not `base64(Token)` with a known content version.
    #[error("invalid tunnel token: {reason}")]
    InvalidToken {
        /// Why the token was rejected.
        reason: String,
    },

    /// A request was retried until its backoff budget ran out.
    #[error("giving up on {uri} after {attempts} attempts in {elapsed:?}: {last}")]
    RetriesExhausted {
        /// The tunnel URI that was called.
        uri: String,
        /// How many times the request was sent.
        attempts: u32,
        /// Wall-clock time spent, including backoff sleeps.
        elapsed: Duration,
        /// The error of the last attempt; also the
        /// [`source`](std::error::Error::source) (as the `Box`, whose own source is
        /// the last error's, so a walk of the chain reaches, say, the `ureq::Error`).
        #[source]
        last: Box<TunnelError>,
    },

    /// A tunnel worker for this tunnel already runs in this runtime.
    #[error("tunnel {tunnel_id} already has a worker in this runtime")]
    AlreadyRunning {
        /// The tunnel.
        tunnel_id: String,
    },

    /// No tunnel worker runs for this tunnel in this runtime.
    #[error("no worker runs for tunnel {tunnel_id}")]
    NotRunning {
        /// The tunnel.
        tunnel_id: String,
    },

    /// No heartbeat succeeded within `heartbeat_timeout`: the session is
    /// presumed lost.
    #[error(
        "tunnel {tunnel_id}: no heartbeat succeeded for {elapsed:?} (heartbeat_timeout {timeout:?})"
    )]
    HeartbeatTimeout {
        /// The tunnel.
        tunnel_id: String,
        /// Time since the last successful heartbeat (or the connect).
        elapsed: Duration,
        /// The configured `heartbeat_timeout`.
        timeout: Duration,
    },

    /// A number from the service (a channel version, a checkpoint sequence number)
    /// cannot be advanced without overflowing. Fatal: the service will not move it
    /// back, and wrapping it would corrupt the session.
    #[error("{what} of {subject} is {value}: it cannot be advanced without overflowing")]
    OutOfRange {
        /// Which number (`"channel version"`, `"checkpoint sequence number"`).
        what: &'static str,
        /// What it belongs to (a channel id).
        subject: String,
        /// The value received.
        value: i64,
    },

    /// A record could not be decoded and the tunnel's policy is
    /// [`OnUndecodable::Stop`](crate::worker::OnUndecodable::Stop). Fatal: reading the
    /// channel again would meet the same record.
    #[error("tunnel {tunnel_id} channel {channel_id}: record {index} of a read cannot be decoded")]
    UndecodableRecord {
        /// The tunnel.
        tunnel_id: String,
        /// The channel.
        channel_id: String,
        /// Its position in the read.
        index: usize,
        /// Why.
        #[source]
        error: RecordError,
    },

    /// The otp-threads runtime could not start or reach a worker.
    #[error("the otp-threads runtime failed")]
    Runtime(#[source] otp_threads::Error),

    /// A supervisor of tunnel workers could not start, stop or find a child.
    #[error("the tunnel workers' supervisor failed")]
    Supervisor(#[source] otp_threads::SupervisorError),
}

impl TunnelError {
    /// Build an [`TunnelError::InvalidOption`].
    pub fn invalid_option(option: &'static str, reason: impl Into<String>) -> Self {
        TunnelError::InvalidOption {
            option,
            reason: reason.into(),
        }
    }

    /// How a caller should react to this error; see the module docs.
    pub fn class(&self) -> ErrorClass {
        match self {
            TunnelError::InvalidOption { .. } => ErrorClass::Fatal,
            TunnelError::Transport { .. } => ErrorClass::Retryable,
            TunnelError::Service {
                code,
                status,
                message,
                ..
            } => classify_code(code, *status, message),
            TunnelError::HttpStatus { status, .. } if *status >= 500 => ErrorClass::Retryable,
            TunnelError::HttpStatus { .. } => ErrorClass::Other,
            TunnelError::Decode { .. }
            | TunnelError::PlainBuffer(_)
            | TunnelError::InvalidToken { .. } => ErrorClass::Other,
            TunnelError::RetriesExhausted { last, .. } => last.class(),
            TunnelError::AlreadyRunning { .. }
            | TunnelError::OutOfRange { .. }
            | TunnelError::UndecodableRecord { .. } => ErrorClass::Fatal,
            TunnelError::NotRunning { .. }
            | TunnelError::HeartbeatTimeout { .. }
            | TunnelError::Runtime(_)
            | TunnelError::Supervisor(_) => ErrorClass::Other,
        }
    }

    /// Shorthand for `self.class() == ErrorClass::Retryable`.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// Shorthand for `self.class() == ErrorClass::Fatal`.
    pub fn is_fatal(&self) -> bool {
        self.class() == ErrorClass::Fatal
    }

    /// Shorthand for `self.class() == ErrorClass::SequenceMismatch`.
    pub fn is_sequence_mismatch(&self) -> bool {
        self.class() == ErrorClass::SequenceMismatch
    }

    /// The service error code, if this is (or wraps) a service error.
    pub fn service_code(&self) -> Option<&str> {
        match self {
            TunnelError::Service { code, .. } => Some(code),
            TunnelError::RetriesExhausted { last, .. } => last.service_code(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> TunnelError {
        service_with(code, status, "")
    }

    fn service_with(code: &str, status: u16, message: &str) -> TunnelError {
        TunnelError::Service {
            uri: "/tunnel/heartbeat".into(),
            status,
            code: code.into(),
            message: message.into(),
            tunnel_id: None,
            request_id: None,
        }
    }

    #[test]
    fn classification_follows_the_sdks() {
        assert_eq!(
            service(OTS_TUNNEL_SERVER_UNAVAILABLE, 503).class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            service("OTSInternalServerError", 500).class(),
            ErrorClass::Retryable
        );
        assert!(service(OTS_PARAMETER_INVALID, 400).is_fatal());
        assert!(service(OTS_TUNNEL_EXPIRED, 400).is_fatal());
        assert!(service(OTS_PERMISSION_DENIED, 403).is_fatal());
        // fatal codes stay fatal even on a 5xx status
        assert!(service(OTS_PERMISSION_DENIED, 500).is_fatal());
        assert!(service(OTS_SEQUENCE_NUMBER_NOT_MATCH, 400).is_sequence_mismatch());
        assert_eq!(service(OTS_RESOURCE_GONE, 400).class(), ErrorClass::Other);
        let transport = TunnelError::Transport {
            uri: "/tunnel/connect".into(),
            source: ureq::Error::ConnectionFailed,
        };
        assert!(transport.is_retryable());
        let http = |status| TunnelError::HttpStatus {
            uri: "/tunnel/connect".into(),
            status,
            request_id: None,
        };
        assert!(http(502).is_retryable());
        assert_eq!(http(404).class(), ErrorClass::Other);
        assert!(TunnelError::invalid_option("endpoint", "empty").is_fatal());
    }

    #[test]
    fn throttling_codes_are_retryable_even_with_a_4xx_status() {
        for code in THROTTLING_CODES {
            assert!(service(code, 400).is_retryable(), "{code}");
            assert!(service(code, 403).is_retryable(), "{code}");
        }
        assert!(service_with(OTS_QUOTA_EXHAUSTED, 403, QUOTA_THROTTLED_MESSAGE).is_retryable());
        // a quota that is simply used up is not throttling
        assert_eq!(
            service_with(OTS_QUOTA_EXHAUSTED, 403, "Too many tables.").class(),
            ErrorClass::Other
        );
        assert_eq!(service("OTSSomethingElse", 400).class(), ErrorClass::Other);
    }

    #[test]
    fn exhausted_retries_keep_the_last_class_and_code() {
        let e = TunnelError::RetriesExhausted {
            uri: "/tunnel/readrecords".into(),
            attempts: 3,
            elapsed: Duration::from_millis(10),
            last: Box::new(service(OTS_TUNNEL_SERVER_UNAVAILABLE, 503)),
        };
        assert!(e.is_retryable());
        assert_eq!(e.service_code(), Some(OTS_TUNNEL_SERVER_UNAVAILABLE));
    }

    #[test]
    fn invalid_option_names_the_option() {
        let e = TunnelError::invalid_option("access_key_id", "must not be empty");
        assert!(e.to_string().contains("`access_key_id`"), "{e}");
    }
}
