//! A Tablestore Tunnel service **emulator** for tests and demos, as a library and as
//! the `tablestore-emulator` binary.
//!
//! **This is not the Tablestore service.** The real service cannot be reached
//! from here; this module is a small, in-process stand-in that speaks the
//! same wire protocol (see [`otp_threads_tablestore`]) so that the client, the worker
//! and their failure handling can be exercised end to end, deterministically
//! and offline. Its behaviour follows what the public SDKs expect of the
//! server; where the service's internals are unknown, the emulator makes a
//! simple, documented choice.
//!
//! ```
//! use otp_threads_tablestore::client::{TunnelClient, TunnelClientConfig};
//! use otp_threads_tablestore_emulator::{Emulator, EmulatorConfig};
//! use otp_threads_tablestore::plainbuffer::{PkValue, Value};
//! use otp_threads_tablestore::proto::{Tunnel, TunnelType};
//!
//! let emulator = Emulator::start(EmulatorConfig::new("inst", "akid", "secret"))?;
//! let client = TunnelClient::new(TunnelClientConfig::new(
//!     emulator.endpoint(), "inst", "akid", "secret",
//! ))?;
//! let tunnel_id = client
//!     .create_tunnel(Tunnel {
//!         table_name: "orders".into(),
//!         tunnel_name: "demo".into(),
//!         tunnel_type: TunnelType::Stream as i32,
//!         stream_tunnel_config: None,
//!         need_all_time_series_columns: None,
//!     })?
//!     .tunnel_id;
//! emulator.put_row(
//!     "orders",
//!     vec![("id".into(), PkValue::Integer(1))],
//!     vec![("total".into(), Value::Integer(42))],
//! )?;
//! let session = client.connect(&tunnel_id, None)?;
//! let assigned = client.heartbeat(&tunnel_id, &session.client_id, vec![])?;
//! assert_eq!(assigned.channels.len(), 4);
//! emulator.stop();
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it implements
//!
//! * **HTTP.** A real HTTP/1.1 server on `127.0.0.1:<ephemeral port>`
//!   (loopback only), served by one accept thread and one thread per
//!   connection (up to [`EmulatorConfig::max_connections`]), so slow clients
//!   cannot starve others; a request head must arrive within 2 s of its first
//!   byte. [`Emulator::stop`] (or drop) joins every thread. Keep-alive is
//!   supported; every response carries `x-ots-requestid` and `x-ots-date`.
//! * **Authentication.** Every request must carry the `x-ots-*` headers and a
//!   valid `x-ots-signature` for the configured access key (see
//!   [`otp_threads_tablestore::sign`]). A wrong key id, wrong secret, missing header or
//!   wrong instance name is answered `403 OTSPermissionDenied`; a body whose
//!   MD5 does not match `x-ots-contentmd5`, or another API version, is
//!   `400 OTSParameterInvalid`.
//! * **Tunnels.** `create` / `describe` / `list` / `delete` over a table name;
//!   tunnel names are unique per table (`409 OTSTunnelExist`). Each tunnel
//!   has [`EmulatorConfig::channels_per_tunnel`] channels.
//! * **Data.** [`Emulator::write`] (and [`put_row`](Emulator::put_row),
//!   [`update_row`](Emulator::update_row), [`delete_row`](Emulator::delete_row))
//!   apply row changes to an in-memory table. Each change gets a stream
//!   position ([`SequenceInfo`]: epoch 0, wall-clock µs, row index; strictly
//!   increasing), is encoded as a PlainBuffer row with that position in its
//!   extension, and is appended to one channel of every `Stream` /
//!   `BaseAndStream` tunnel over the table, chosen by a stable hash of the
//!   encoded primary key. Readers therefore see each channel's changes in
//!   write order. A change to a row that existed carries the row as it was
//!   (all its columns, as puts) in `origin_record`, the before-image.
//! * **Base data.** A `BaseData` tunnel snapshots the table's rows at
//!   creation (as put records without a stream position) and its channels
//!   are *sealed*: once a reader reaches the end, `readrecords` returns the
//!   finish token `"finished"`. A `BaseAndStream` tunnel starts with that
//!   snapshot and then streams (one phase; the service's separate base and
//!   stream channels are not modelled). [`Emulator::finish_stream`] seals a
//!   stream tunnel's channels too.
//! * **Reading.** `readrecords` returns at most
//!   [`EmulatorConfig::max_records_per_read`] records from the token's
//!   position and the next token, with `may_more_record`. When nothing new is
//!   there it returns no records and **the same token** (a stream channel).
//!   Tokens are `base64(Token)` version 2 (stream tokens carry an iterator,
//!   base-data tokens a primary key) and are opaque to clients; a token of
//!   another channel, or one that does not decode, is `OTSParameterInvalid`.
//!   Only the client a channel is assigned to may read it.
//! * **Clients and channels.** `connect` returns a client id. Channels are
//!   split evenly among connected clients (earlier clients get the
//!   remainder). When a client joins, channels of clients over their share go
//!   `CLOSING` (version + 1) and stay theirs until they report `CLOSE` (at a
//!   version not older than the server's); only then are they `OPEN`
//!   (version + 1) for the new client. A client may also give a channel up
//!   by reporting `CLOSE`, or report `TERMINATED` when it reached the finish
//!   token: terminated channels stay done and are never assigned again.
//!   The heartbeat response lists the client's `OPEN` and `CLOSING`
//!   channels. A client silent for longer than
//!   [`EmulatorConfig::heartbeat_timeout`] is dropped (checked whenever a
//!   request arrives) and its channels are released and reassigned;
//!   `shutdown` does the same at once. An unknown client id is
//!   `OTSResourceGone`.
//! * **Checkpoints.** `getcheckpoint` returns the stored token and sequence
//!   number (initially the channel's start and 0). `checkpoint` must come
//!   from the channel's owner and carry exactly the stored sequence number
//!   plus one (what the SDKs send after a `getcheckpoint`); anything else is
//!   `OTSSequenceNumberNotMatch`. [`Emulator::checkpoints`] exposes them.
//! * **Fault injection.** [`Emulator::fail_next`] / [`fail_next_on`]
//!   (answer the next requests with an error, e.g. bursts of
//!   `503 OTSTunnelServerUnavailable`), [`Emulator::drop_next_connections`]
//!   (close the connection after reading the request, without any response),
//!   [`Emulator::append_raw_record`] (a corrupt record mid-stream),
//!   [`Emulator::set_channel_version`], [`Emulator::set_checkpoint_sequence`]
//!   and [`Emulator::expire_tunnel`] (every session call then gets
//!   `OTSTunnelExpired`). Faults are applied before authentication, the way a
//!   front end would fail. [`Emulator::stats`] counts requests per URI and
//!   faults injected.
//! * **Robustness.** Malformed HTTP is answered `400` and the connection
//!   closed; bodies that are not the expected protobuf message, and requests
//!   missing required fields, are `400 OTSParameterInvalid`. Handlers do not
//!   panic on any input; as a last line of defence a panic would be caught,
//!   answered `500 OTSInternalServerError` and counted in
//!   [`EmulatorStats::internal_errors`].
//!
//! [`fail_next_on`]: Emulator::fail_next_on
//!
//! # What it does not implement
//!
//! TLS; STS token validation (an STS token is signed and checked like any
//! header, but not otherwise verified); request-date skew checks; quotas and
//! throttling other than injected faults; persistence (everything is lost on
//! stop); `StreamTunnelConfig` start/end offsets (stored and echoed, not
//! applied: a stream starts at the tunnel's creation); before-images as a tunnel
//! option (they are always sent); RPO figures (always 0); the `getrpo`, `schedule` and channel lock APIs
//! (answered `OTSParameterInvalid`); the service's record-size limits,
//! retention and tunnel expiry by time (only [`Emulator::expire_tunnel`]);
//! multiple instances or access keys.
#![forbid(unsafe_code)]

pub mod demo;
mod error;
#[cfg(test)]
mod fuzz;
mod http;
mod state;

pub use error::EmulatorError;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use self::http::{HttpRequest, Reply, Server, Service};
pub use self::state::{ChannelSnapshot, Checkpoint};
use self::state::{ServiceError, State, StateConfig};
use otp_threads_tablestore::error::{OTS_PARAMETER_INVALID, OTS_PERMISSION_DENIED};
use otp_threads_tablestore::options::MAX_DURATION;
use otp_threads_tablestore::plainbuffer::{
    ColumnChange, PkValue, Row, RowChange, SequenceInfo, Value,
};
use otp_threads_tablestore::proto;
use otp_threads_tablestore::sign::{self, SignError};

/// The largest [`EmulatorConfig::max_connections`].
pub const MAX_CONNECTIONS: usize = 16_384;

/// Error code the emulator answers when a handler panicked (it should not).
pub const OTS_INTERNAL_SERVER_ERROR: &str = "OTSInternalServerError";

/// Settings of an [`Emulator`]: [`new`](Self::new) with the instance and the one
/// access key, then the builder methods; [`Emulator::start`] checks them
/// ([`validate`](Self::validate)), naming a bad one.
///
/// | option | default | rule |
/// |---|---|---|
/// | `instance_name`, `access_key_id`, `access_key_secret` | required | not empty |
/// | [`channels_per_tunnel`](Self::channels_per_tunnel) | 4 | 1 to 1024 |
/// | [`max_records_per_read`](Self::max_records_per_read) | 100 | positive |
/// | [`heartbeat_timeout`](Self::heartbeat_timeout) | 30 s | positive, at most a week |
/// | [`max_connections`](Self::max_connections) | 1024 | 1 to [`MAX_CONNECTIONS`] |
#[derive(Clone)]
pub struct EmulatorConfig {
    pub(crate) instance_name: String,
    pub(crate) access_key_id: String,
    pub(crate) access_key_secret: String,
    pub(crate) channels_per_tunnel: usize,
    pub(crate) max_records_per_read: usize,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("instance_name", &self.instance_name)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("channels_per_tunnel", &self.channels_per_tunnel)
            .field("max_records_per_read", &self.max_records_per_read)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl EmulatorConfig {
    /// A configuration with the defaults above.
    pub fn new(
        instance_name: impl Into<String>,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Self {
        EmulatorConfig {
            instance_name: instance_name.into(),
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            channels_per_tunnel: 4,
            max_records_per_read: 100,
            heartbeat_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }

    /// Channels (partitions) per tunnel.
    pub fn channels_per_tunnel(mut self, channels: usize) -> Self {
        self.channels_per_tunnel = channels;
        self
    }

    /// Most records one readrecords response carries.
    pub fn max_records_per_read(mut self, records: usize) -> Self {
        self.max_records_per_read = records;
        self
    }

    /// A client that sends no request for longer than this is dropped and its
    /// channels reassigned.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Connections served at once, each on its own thread (more wait in the listen
    /// backlog).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// The instance name requests must carry (`x-ots-instancename`).
    pub fn instance_name(&self) -> &str {
        &self.instance_name
    }

    /// The access key id the emulator accepts.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Check every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let nonempty = |option, value: &str| {
            if value.trim().is_empty() {
                Err(EmulatorError::invalid_option(option, "must not be empty"))
            } else {
                Ok(())
            }
        };
        nonempty("instance_name", &self.instance_name)?;
        nonempty("access_key_id", &self.access_key_id)?;
        if self.access_key_secret.is_empty() {
            return Err(EmulatorError::invalid_option(
                "access_key_secret",
                "must not be empty",
            ));
        }
        if !(1..=1024).contains(&self.channels_per_tunnel) {
            return Err(EmulatorError::invalid_option(
                "channels_per_tunnel",
                "must be within 1..=1024",
            ));
        }
        if self.max_records_per_read == 0 {
            return Err(EmulatorError::invalid_option(
                "max_records_per_read",
                "must be positive",
            ));
        }
        if self.heartbeat_timeout.is_zero() || self.heartbeat_timeout > MAX_DURATION {
            return Err(EmulatorError::invalid_option(
                "heartbeat_timeout",
                format!("must be positive and at most {MAX_DURATION:?}"),
            ));
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(EmulatorError::invalid_option(
                "max_connections",
                format!("must be within 1..={MAX_CONNECTIONS}"),
            ));
        }
        Ok(())
    }
}

/// Counters, for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Requests received, by path (including faulted and rejected ones).
    pub requests: BTreeMap<String, u64>,
    /// TCP connections accepted.
    pub connections: u64,
    /// Requests answered with an injected error ([`Emulator::fail_next`]).
    pub injected_failures: u64,
    /// Connections closed without a response
    /// ([`Emulator::drop_next_connections`]).
    pub dropped_connections: u64,
    /// Requests rejected by authentication.
    pub auth_failures: u64,
    /// Malformed HTTP requests.
    pub malformed_http: u64,
    /// Handler panics caught (always 0 unless the emulator has a bug).
    pub internal_errors: u64,
}

impl EmulatorStats {
    /// Requests received for `uri`.
    pub fn requests_to(&self, uri: &str) -> u64 {
        self.requests.get(uri).copied().unwrap_or(0)
    }

    /// Faults injected so far (failures plus dropped connections).
    pub fn faults_injected(&self) -> u64 {
        self.injected_failures + self.dropped_connections
    }
}

struct InjectedFailure {
    uri: Option<String>,
    status: u16,
    code: String,
    message: String,
}

#[derive(Default)]
struct Faults {
    drop_connections: usize,
    failures: VecDeque<InjectedFailure>,
}

struct Shared {
    config: EmulatorConfig,
    state: Mutex<State>,
    faults: Mutex<Faults>,
    stats: Mutex<EmulatorStats>,
}

fn reply(status: u16, code: &str, message: impl Into<String>) -> Reply {
    Reply::Respond {
        status,
        body: ServiceError::new(status, code, message).body(),
    }
}

impl Shared {
    fn authenticate(&self, request: &HttpRequest) -> Result<(), Reply> {
        let config = &self.config;
        let verified = sign::verify_request(&request.path, &request.headers, &request.body, |id| {
            (id == config.access_key_id).then(|| config.access_key_secret.clone())
        });
        let denied = |message: String| Err(reply(403, OTS_PERMISSION_DENIED, message));
        match verified {
            Ok(v) if v.instance_name != config.instance_name => {
                denied(format!("instance {:?} is not accessible", v.instance_name))
            }
            Ok(v) if v.api_version != sign::API_VERSION => Err(reply(
                400,
                OTS_PARAMETER_INVALID,
                format!("unsupported x-ots-apiversion {:?}", v.api_version),
            )),
            Ok(_) => Ok(()),
            Err(SignError::ContentMd5Mismatch) => Err(reply(
                400,
                OTS_PARAMETER_INVALID,
                "x-ots-contentmd5 does not match the body",
            )),
            Err(e @ SignError::MissingHeader(_)) => denied(e.to_string()),
            Err(SignError::UnknownAccessKey(_)) => {
                denied("the access key id is not valid".to_owned())
            }
            Err(SignError::SignatureMismatch) => denied(
                "the request signature does not match; check the access key secret".to_owned(),
            ),
        }
    }
}

impl Service for Shared {
    fn handle(&self, request: HttpRequest) -> Reply {
        *self
            .stats
            .lock()
            .requests
            .entry(request.path.clone())
            .or_default() += 1;
        {
            let mut faults = self.faults.lock();
            if faults.drop_connections > 0 {
                faults.drop_connections -= 1;
                drop(faults);
                self.stats.lock().dropped_connections += 1;
                log::debug!("tunnel emulator: dropping connection ({})", request.path);
                return Reply::Drop;
            }
            let position = faults
                .failures
                .iter()
                .position(|f| f.uri.as_deref().is_none_or(|u| u == request.path));
            if let Some(f) = position.and_then(|i| faults.failures.remove(i)) {
                drop(faults);
                self.stats.lock().injected_failures += 1;
                log::debug!(
                    "tunnel emulator: injected {} {} ({})",
                    f.status,
                    f.code,
                    request.path
                );
                return reply(f.status, &f.code, f.message);
            }
        }
        if request.method != "POST" {
            return reply(
                405,
                OTS_PARAMETER_INVALID,
                format!("method {} is not allowed; use POST", request.method),
            );
        }
        if let Err(rejected) = self.authenticate(&request) {
            self.stats.lock().auth_failures += 1;
            return rejected;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            self.state
                .lock()
                .dispatch(&request.path, &request.body, Instant::now())
        }));
        match outcome {
            Ok(Ok(body)) => Reply::Respond { status: 200, body },
            Ok(Err(e)) => Reply::Respond {
                status: e.status,
                body: e.body(),
            },
            Err(_) => {
                self.stats.lock().internal_errors += 1;
                log::error!("tunnel emulator: handler panicked on {}", request.path);
                reply(500, OTS_INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    fn malformed(&self, reason: &str) -> Reply {
        self.stats.lock().malformed_http += 1;
        reply(
            400,
            OTS_PARAMETER_INVALID,
            format!("malformed request: {reason}"),
        )
    }

    fn accepted(&self) {
        self.stats.lock().connections += 1;
    }
}

/// A running emulator; see the module docs. Dropping it stops it.
pub struct Emulator {
    shared: Arc<Shared>,
    server: Server,
    endpoint: String,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("endpoint", &self.endpoint)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Emulator {
    /// Validate `config`, bind `127.0.0.1:0` and start serving.
    pub fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        config.validate()?;
        let state = State::new(StateConfig {
            instance_name: config.instance_name.clone(),
            channels_per_tunnel: config.channels_per_tunnel,
            max_records_per_read: config.max_records_per_read,
            heartbeat_timeout: config.heartbeat_timeout,
        });
        let max_connections = config.max_connections;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(state),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(EmulatorStats::default()),
        });
        let server =
            Server::start(shared.clone(), max_connections).map_err(EmulatorError::Start)?;
        let endpoint = format!("http://{}", server.addr());
        log::info!("tunnel emulator listening on {endpoint}");
        Ok(Emulator {
            shared,
            server,
            endpoint,
        })
    }

    /// `http://127.0.0.1:PORT`, for [`TunnelClientConfig::new`](otp_threads_tablestore::client::TunnelClientConfig::new).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The configuration.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// Stop serving and join every thread (dropping the emulator does the
    /// same). In-flight requests are answered; idle connections are closed.
    pub fn stop(mut self) {
        self.server.stop();
    }

    // ------------------------------------------------------------ data

    /// Apply row changes to `table` (created on first use) and append them
    /// to the tunnels over it; returns each change's stream position.
    ///
    /// A row needs at least one primary key column of integer, string or
    /// binary type; a put row may only put columns; a delete row carries no
    /// columns. The rows' `sequence` is ignored (the emulator assigns it).
    /// On a validation error nothing is written.
    pub fn write(&self, table: &str, rows: Vec<Row>) -> Result<Vec<SequenceInfo>, EmulatorError> {
        self.shared.state.lock().write(table, rows)
    }

    /// Write a whole row (its columns without timestamps).
    pub fn put_row(
        &self,
        table: &str,
        primary_key: Vec<(String, PkValue)>,
        columns: Vec<(String, Value)>,
    ) -> Result<SequenceInfo, EmulatorError> {
        let columns = columns
            .into_iter()
            .map(|(name, value)| ColumnChange::Put {
                name,
                value,
                timestamp: None,
            })
            .collect();
        self.write_one(table, primary_key, RowChange::Put, columns)
    }

    /// Update some columns of a row.
    pub fn update_row(
        &self,
        table: &str,
        primary_key: Vec<(String, PkValue)>,
        changes: Vec<ColumnChange>,
    ) -> Result<SequenceInfo, EmulatorError> {
        self.write_one(table, primary_key, RowChange::Update, changes)
    }

    /// Delete a row.
    pub fn delete_row(
        &self,
        table: &str,
        primary_key: Vec<(String, PkValue)>,
    ) -> Result<SequenceInfo, EmulatorError> {
        self.write_one(table, primary_key, RowChange::Delete, Vec::new())
    }

    fn write_one(
        &self,
        table: &str,
        primary_key: Vec<(String, PkValue)>,
        kind: RowChange,
        columns: Vec<ColumnChange>,
    ) -> Result<SequenceInfo, EmulatorError> {
        let row = Row {
            primary_key,
            kind,
            columns,
            sequence: None,
        };
        let mut seqs = self.write(table, vec![row])?;
        seqs.pop().ok_or_else(|| EmulatorError::InvalidRow {
            table: table.to_owned(),
            reason: "nothing was written".into(),
        })
    }

    // ------------------------------------------------------------ tunnels

    /// Create a tunnel directly (without HTTP); returns its id.
    pub fn create_tunnel(
        &self,
        table: &str,
        tunnel_name: &str,
        kind: proto::TunnelType,
    ) -> Result<String, EmulatorError> {
        let tunnel = proto::Tunnel {
            table_name: table.to_owned(),
            tunnel_name: tunnel_name.to_owned(),
            tunnel_type: kind as i32,
            stream_tunnel_config: None,
            need_all_time_series_columns: None,
        };
        self.shared
            .state
            .lock()
            .create_tunnel(tunnel)
            .map_err(|e| EmulatorError::Refused {
                operation: "create_tunnel",
                status: e.status,
                code: e.code,
                message: e.message,
            })
    }

    /// The id of the tunnel `tunnel_name` on `table`.
    pub fn tunnel_id(&self, table: &str, tunnel_name: &str) -> Option<String> {
        self.shared.state.lock().tunnel_id(table, tunnel_name)
    }

    /// Seal a tunnel's channels: readers get the finish token once they
    /// reach the end, and later writes no longer reach them. False if there
    /// is no such tunnel.
    pub fn finish_stream(&self, tunnel_id: &str) -> bool {
        self.shared.state.lock().finish_stream(tunnel_id)
    }

    /// The stored checkpoint of every channel of a tunnel, by channel id.
    pub fn checkpoints(&self, tunnel_id: &str) -> Option<BTreeMap<String, Checkpoint>> {
        self.shared.state.lock().checkpoints(tunnel_id)
    }

    /// The server-side state of a tunnel's channels, in channel order.
    pub fn channels(&self, tunnel_id: &str) -> Option<Vec<ChannelSnapshot>> {
        self.shared.state.lock().channels(tunnel_id)
    }

    /// The connected clients of a tunnel, in the order they connected
    /// (after dropping clients whose heartbeat timed out).
    pub fn clients(&self, tunnel_id: &str) -> Option<Vec<String>> {
        let mut state = self.shared.state.lock();
        state.sweep(Instant::now());
        state.clients(tunnel_id)
    }

    // ------------------------------------------------------------ faults

    /// Answer the next `n` requests (any URI) with `status` and an `Error`
    /// body with `code`, e.g. `fail_next(3, 503, OTS_TUNNEL_SERVER_UNAVAILABLE)`.
    pub fn fail_next(&self, n: usize, status: u16, code: &str) {
        self.push_failures(None, n, status, code);
    }

    /// Like [`fail_next`](Self::fail_next), for requests to `uri` only
    /// (e.g. [`URI_READ_RECORDS`](otp_threads_tablestore::client::URI_READ_RECORDS)).
    pub fn fail_next_on(&self, uri: &str, n: usize, status: u16, code: &str) {
        self.push_failures(Some(uri), n, status, code);
    }

    /// Like [`fail_next_on`](Self::fail_next_on) (`uri: None` for any URI), with
    /// the error's message, e.g. `OTSQuotaExhausted` with "Too frequent table
    /// operations." (throttling) or another (an exhausted quota).
    pub fn fail_next_with(
        &self,
        uri: Option<&str>,
        n: usize,
        status: u16,
        code: &str,
        message: &str,
    ) {
        let mut faults = self.shared.faults.lock();
        for _ in 0..n {
            faults.failures.push_back(InjectedFailure {
                uri: uri.map(str::to_owned),
                status,
                code: code.to_owned(),
                message: message.to_owned(),
            });
        }
    }

    fn push_failures(&self, uri: Option<&str>, n: usize, status: u16, code: &str) {
        self.fail_next_with(uri, n, status, code, "injected fault");
    }

    /// Close the connection of each of the next `n` requests after reading
    /// it, without writing a response.
    pub fn drop_next_connections(&self, n: usize) {
        self.shared.faults.lock().drop_connections += n;
    }

    /// Forget injected faults that have not fired yet.
    pub fn clear_faults(&self) {
        *self.shared.faults.lock() = Faults::default();
    }

    /// Append `record` as it is to a stream channel's records (fault injection: a
    /// corrupt PlainBuffer, an unknown action type, a bad `origin_record`). Readers
    /// get it in order with the channel's other records. False if there is no such
    /// unsealed stream channel.
    pub fn append_raw_record(
        &self,
        tunnel_id: &str,
        channel_id: &str,
        record: proto::Record,
    ) -> bool {
        self.shared
            .state
            .lock()
            .append_raw_record(tunnel_id, channel_id, record)
    }

    /// Set the server-side version of a channel (fault injection, e.g. `i64::MAX`
    /// to check that clients do not overflow). False if there is no such channel.
    pub fn set_channel_version(&self, tunnel_id: &str, channel_id: &str, version: i64) -> bool {
        self.shared
            .state
            .lock()
            .set_channel_version(tunnel_id, channel_id, version)
    }

    /// Set the stored checkpoint sequence number of a channel (fault injection: as
    /// if another writer had checkpointed it). False if there is no such channel.
    pub fn set_checkpoint_sequence(
        &self,
        tunnel_id: &str,
        channel_id: &str,
        sequence: i64,
    ) -> bool {
        self.shared
            .state
            .lock()
            .set_checkpoint_sequence(tunnel_id, channel_id, sequence)
    }

    /// Mark a tunnel expired: session calls on it then get
    /// `OTSTunnelExpired`. False if there is no such tunnel.
    pub fn expire_tunnel(&self, tunnel_id: &str) -> bool {
        self.shared.state.lock().expire_tunnel(tunnel_id)
    }

    /// A copy of the counters.
    pub fn stats(&self) -> EmulatorStats {
        self.shared.stats.lock().clone()
    }
}
