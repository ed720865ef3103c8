//! A blocking HTTP client for the Tablestore Tunnel API (ureq 3).
//!
//! Each call encodes its protobuf request, signs it (see
//! [`crate::sign`]), `POST`s it to `{endpoint}{uri}`, and decodes the
//! response: a 2xx body as the call's response message, a non-2xx body as an
//! [`Error`](super::proto::Error) message (→ [`TunnelError::Service`]), or,
//! when that fails, [`TunnelError::HttpStatus`].
//!
//! Retryable failures ([`TunnelError::is_retryable`]: transport errors,
//! `OTSTunnelServerUnavailable`, 5xx) are retried with exponential backoff
//! and jitter: [`TunnelClientConfig::read_records_retry`] for `readrecords`,
//! [`TunnelClientConfig::meta_retry`] for every other call. When the budget
//! runs out the call fails with [`TunnelError::RetriesExhausted`].
//!
//! ```no_run
//! use otp_threads_tablestore::client::{TunnelClient, TunnelClientConfig};
//!
//! let config = TunnelClientConfig::new(
//!     "https://my-instance.cn-hangzhou.ots.aliyuncs.com",
//!     "my-instance",
//!     "access-key-id",
//!     "access-key-secret",
//! );
//! let client = TunnelClient::new(config)?;
//! let session = client.connect("tunnel-id", None)?;
//! let assigned = client.heartbeat("tunnel-id", &session.client_id, vec![])?;
//! # Ok::<_, otp_threads_tablestore::TunnelError>(())
//! ```

use std::time::{Duration, Instant, SystemTime};

use prost::Message;

use super::backoff::{Backoff, BackoffConfig};
use super::error::TunnelError;
use super::options;
use super::proto;
use super::sign::{self, Credentials};

/// `POST /tunnel/connect`.
pub const URI_CONNECT: &str = "/tunnel/connect";
/// `POST /tunnel/heartbeat`.
pub const URI_HEARTBEAT: &str = "/tunnel/heartbeat";
/// `POST /tunnel/getcheckpoint`.
pub const URI_GET_CHECKPOINT: &str = "/tunnel/getcheckpoint";
/// `POST /tunnel/readrecords`.
pub const URI_READ_RECORDS: &str = "/tunnel/readrecords";
/// `POST /tunnel/checkpoint`.
pub const URI_CHECKPOINT: &str = "/tunnel/checkpoint";
/// `POST /tunnel/shutdown`.
pub const URI_SHUTDOWN: &str = "/tunnel/shutdown";
/// `POST /tunnel/create`.
pub const URI_CREATE: &str = "/tunnel/create";
/// `POST /tunnel/describe`.
pub const URI_DESCRIBE: &str = "/tunnel/describe";
/// `POST /tunnel/list`.
pub const URI_LIST: &str = "/tunnel/list";
/// `POST /tunnel/delete`.
pub const URI_DELETE: &str = "/tunnel/delete";

/// Settings of a [`TunnelClient`]: [`new`](Self::new) with the endpoint, instance
/// and credentials, then the builder methods for the rest. [`TunnelClient::new`]
/// checks them ([`validate`](Self::validate)); a bad one is a
/// [`TunnelError::InvalidOption`] naming it.
///
/// | option | default | rule |
/// |---|---|---|
/// | `endpoint` | required | `http://` or `https://` host\[:port\], no path |
/// | `instance_name`, `access_key_id`, `access_key_secret` | required | not empty |
/// | [`sts_token`](Self::sts_token) | none | not empty when set |
/// | [`request_timeout`](Self::request_timeout) | 60 s | positive, at most a week |
/// | [`meta_retry`](Self::meta_retry) | [`BackoffConfig::meta`] | see [`BackoffConfig::validate`] |
/// | [`read_records_retry`](Self::read_records_retry) | [`BackoffConfig::read_records`] | see [`BackoffConfig::validate`] |
/// | [`max_response_bytes`](Self::max_response_bytes) | 64 MiB | positive |
#[derive(Clone)]
pub struct TunnelClientConfig {
    pub(crate) endpoint: String,
    pub(crate) instance_name: String,
    pub(crate) access_key_id: String,
    pub(crate) access_key_secret: String,
    pub(crate) sts_token: Option<String>,
    pub(crate) request_timeout: Duration,
    pub(crate) meta_retry: BackoffConfig,
    pub(crate) read_records_retry: BackoffConfig,
    pub(crate) max_response_bytes: u64,
}

impl std::fmt::Debug for TunnelClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelClientConfig")
            .field("endpoint", &self.endpoint)
            .field("instance_name", &self.instance_name)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("sts_token", &self.sts_token.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .field("meta_retry", &self.meta_retry)
            .field("read_records_retry", &self.read_records_retry)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl TunnelClientConfig {
    /// A configuration with the default timeouts and retry policies.
    pub fn new(
        endpoint: impl Into<String>,
        instance_name: impl Into<String>,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
    ) -> Self {
        TunnelClientConfig {
            endpoint: endpoint.into(),
            instance_name: instance_name.into(),
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            sts_token: None,
            request_timeout: Duration::from_secs(60),
            meta_retry: BackoffConfig::meta(),
            read_records_retry: BackoffConfig::read_records(),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }

    /// An STS token, sent as `x-ots-ststoken` and signed.
    pub fn sts_token(mut self, token: impl Into<String>) -> Self {
        self.sts_token = Some(token.into());
        self
    }

    /// Timeout of one HTTP request (connect + send + receive).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retry policy of every call but readrecords.
    pub fn meta_retry(mut self, policy: BackoffConfig) -> Self {
        self.meta_retry = policy;
        self
    }

    /// Retry policy of readrecords.
    pub fn read_records_retry(mut self, policy: BackoffConfig) -> Self {
        self.read_records_retry = policy;
        self
    }

    /// Largest response body accepted.
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Check every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), TunnelError> {
        let endpoint = self.endpoint.trim();
        if endpoint.is_empty() {
            return Err(TunnelError::invalid_option("endpoint", "must not be empty"));
        }
        let rest = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .ok_or_else(|| {
                TunnelError::invalid_option(
                    "endpoint",
                    format!("{endpoint:?} must start with http:// or https://"),
                )
            })?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') || host.contains('?') || host.contains('#') {
            return Err(TunnelError::invalid_option(
                "endpoint",
                format!("{endpoint:?} must be a scheme and host[:port] without a path"),
            ));
        }
        if self.instance_name.trim().is_empty() {
            return Err(TunnelError::invalid_option(
                "instance_name",
                "must not be empty",
            ));
        }
        if self.access_key_id.trim().is_empty() {
            return Err(TunnelError::invalid_option(
                "access_key_id",
                "must not be empty",
            ));
        }
        if self.access_key_secret.is_empty() {
            return Err(TunnelError::invalid_option(
                "access_key_secret",
                "must not be empty",
            ));
        }
        if self
            .sts_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(TunnelError::invalid_option(
                "sts_token",
                "must not be empty when set",
            ));
        }
        options::positive_duration("request_timeout", self.request_timeout)?;
        self.meta_retry.validate("meta_retry")?;
        self.read_records_retry.validate("read_records_retry")?;
        if self.max_response_bytes == 0 {
            return Err(TunnelError::invalid_option(
                "max_response_bytes",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// A decoded response plus transport facts.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply<T> {
    /// The decoded response message.
    pub message: T,
    /// `x-ots-requestid`, when the server sent one.
    pub request_id: Option<String>,
    /// Size of the response body in bytes (the SDKs use it to decide whether
    /// a stream channel should back off).
    pub body_len: usize,
}

/// A blocking, retrying Tablestore Tunnel API client; see the module docs.
///
/// Cheap to clone (the HTTP agent and its connection pool are shared).
#[derive(Clone)]
pub struct TunnelClient {
    config: TunnelClientConfig,
    base: String,
    credentials: Credentials,
    agent: ureq::Agent,
}

impl std::fmt::Debug for TunnelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelClient")
            .field("config", &self.config)
            .finish()
    }
}

impl TunnelClient {
    /// Validate `config` and build a client.
    pub fn new(config: TunnelClientConfig) -> Result<Self, TunnelError> {
        config.validate()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.request_timeout))
            .build()
            .into();
        Ok(TunnelClient {
            base: config.endpoint.trim().trim_end_matches('/').to_owned(),
            credentials: Credentials {
                access_key_id: config.access_key_id.trim().to_owned(),
                access_key_secret: config.access_key_secret.clone(),
                sts_token: config.sts_token.clone(),
            },
            agent,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TunnelClientConfig {
        &self.config
    }

    /// Call `uri` with retries (see the module docs).
    pub fn call<Req, Resp>(&self, uri: &str, request: &Req) -> Result<Reply<Resp>, TunnelError>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let body = request.encode_to_vec();
        let policy = if uri == URI_READ_RECORDS {
            self.config.read_records_retry
        } else {
            self.config.meta_retry
        };
        let mut backoff = Backoff::new(policy);
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts = attempts.saturating_add(1);
            let error = match self.call_once(uri, &body) {
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            match backoff.next_delay_after(started.elapsed()) {
                Some(delay) => {
                    log::warn!("{uri}: attempt {attempts} failed ({error}); retrying in {delay:?}");
                    std::thread::sleep(delay);
                }
                None => {
                    return Err(TunnelError::RetriesExhausted {
                        uri: uri.to_owned(),
                        attempts,
                        elapsed: started.elapsed(),
                        last: Box::new(error),
                    });
                }
            }
        }
    }

    /// Send `body` to `uri` once, without retries.
    pub fn call_once<Resp>(&self, uri: &str, body: &[u8]) -> Result<Reply<Resp>, TunnelError>
    where
        Resp: Message + Default,
    {
        let date = sign::format_date(SystemTime::now());
        let headers = sign::request_headers(
            uri,
            body,
            &self.config.instance_name,
            &self.credentials,
            &date,
        );
        let url = format!("{}{uri}", self.base);
        let mut req = self.agent.post(&url);
        for (name, value) in &headers {
            req = req.header(*name, value.as_str());
        }
        let transport = |e: ureq::Error| TunnelError::Transport {
            uri: uri.to_owned(),
            source: e,
        };
        log::debug!("POST {url} ({} bytes)", body.len());
        let mut resp = req.send(body).map_err(transport)?;
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get(sign::HEADER_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(self.config.max_response_bytes)
            .read_to_vec()
            .map_err(transport)?;
        if (200..300).contains(&status) {
            let message = Resp::decode(bytes.as_slice()).map_err(|source| TunnelError::Decode {
                what: std::any::type_name::<Resp>(),
                source,
            })?;
            return Ok(Reply {
                message,
                request_id,
                body_len: bytes.len(),
            });
        }
        match proto::Error::decode(bytes.as_slice()) {
            Ok(err) if !err.code.is_empty() => Err(TunnelError::Service {
                uri: uri.to_owned(),
                status,
                code: err.code,
                message: err.message.unwrap_or_default(),
                tunnel_id: err.tunnel_id,
                request_id,
            }),
            _ => Err(TunnelError::HttpStatus {
                uri: uri.to_owned(),
                status,
                request_id,
            }),
        }
    }

    /// Join a tunnel: returns the new client session id.
    pub fn connect(
        &self,
        tunnel_id: &str,
        client_config: Option<proto::ClientConfig>,
    ) -> Result<proto::ConnectResponse, TunnelError> {
        let req = proto::ConnectRequest {
            tunnel_id: tunnel_id.to_owned(),
            client_config,
        };
        Ok(self.call(URI_CONNECT, &req)?.message)
    }

    /// Report the client's channels; returns the server's assignment.
    pub fn heartbeat(
        &self,
        tunnel_id: &str,
        client_id: &str,
        channels: Vec<proto::Channel>,
    ) -> Result<proto::HeartbeatResponse, TunnelError> {
        let req = proto::HeartbeatRequest {
            tunnel_id: tunnel_id.to_owned(),
            client_id: client_id.to_owned(),
            channels,
        };
        Ok(self.call(URI_HEARTBEAT, &req)?.message)
    }

    /// The checkpoint (token and sequence number) of a channel.
    pub fn get_checkpoint(
        &self,
        tunnel_id: &str,
        client_id: &str,
        channel_id: &str,
    ) -> Result<proto::GetCheckpointResponse, TunnelError> {
        let req = proto::GetCheckpointRequest {
            tunnel_id: tunnel_id.to_owned(),
            client_id: client_id.to_owned(),
            channel_id: channel_id.to_owned(),
        };
        Ok(self.call(URI_GET_CHECKPOINT, &req)?.message)
    }

    /// Read a batch of records from `token`; the reply carries the body size.
    pub fn read_records(
        &self,
        tunnel_id: &str,
        client_id: &str,
        channel_id: &str,
        token: &str,
    ) -> Result<Reply<proto::ReadRecordsResponse>, TunnelError> {
        let req = proto::ReadRecordsRequest {
            tunnel_id: tunnel_id.to_owned(),
            client_id: client_id.to_owned(),
            channel_id: channel_id.to_owned(),
            token: token.to_owned(),
        };
        self.call(URI_READ_RECORDS, &req)
    }

    /// Store a channel checkpoint. An `OTSSequenceNumberNotMatch` error
    /// ([`TunnelError::is_sequence_mismatch`]) means: re-read the checkpoint
    /// with [`get_checkpoint`](Self::get_checkpoint) and go on.
    pub fn checkpoint(
        &self,
        tunnel_id: &str,
        client_id: &str,
        channel_id: &str,
        checkpoint: &str,
        sequence_number: i64,
    ) -> Result<proto::CheckpointResponse, TunnelError> {
        let req = proto::CheckpointRequest {
            tunnel_id: tunnel_id.to_owned(),
            client_id: client_id.to_owned(),
            channel_id: channel_id.to_owned(),
            checkpoint: checkpoint.to_owned(),
            sequence_number,
        };
        Ok(self.call(URI_CHECKPOINT, &req)?.message)
    }

    /// End a client session.
    pub fn shutdown(
        &self,
        tunnel_id: &str,
        client_id: &str,
    ) -> Result<proto::ShutdownResponse, TunnelError> {
        let req = proto::ShutdownRequest {
            tunnel_id: tunnel_id.to_owned(),
            client_id: client_id.to_owned(),
        };
        Ok(self.call(URI_SHUTDOWN, &req)?.message)
    }

    /// Create a tunnel; returns its id.
    pub fn create_tunnel(
        &self,
        tunnel: proto::Tunnel,
    ) -> Result<proto::CreateTunnelResponse, TunnelError> {
        Ok(self
            .call(URI_CREATE, &proto::CreateTunnelRequest { tunnel })?
            .message)
    }

    /// Describe a tunnel and its channels.
    pub fn describe_tunnel(
        &self,
        table_name: &str,
        tunnel_name: &str,
    ) -> Result<proto::DescribeTunnelResponse, TunnelError> {
        let req = proto::DescribeTunnelRequest {
            table_name: table_name.to_owned(),
            tunnel_name: tunnel_name.to_owned(),
            tunnel_id: None,
        };
        Ok(self.call(URI_DESCRIBE, &req)?.message)
    }

    /// List tunnels, optionally of one table.
    pub fn list_tunnels(
        &self,
        table_name: Option<&str>,
    ) -> Result<proto::ListTunnelResponse, TunnelError> {
        let req = proto::ListTunnelRequest {
            table_name: table_name.map(str::to_owned),
        };
        Ok(self.call(URI_LIST, &req)?.message)
    }

    /// Delete a tunnel.
    pub fn delete_tunnel(
        &self,
        table_name: &str,
        tunnel_name: &str,
    ) -> Result<proto::DeleteTunnelResponse, TunnelError> {
        let req = proto::DeleteTunnelRequest {
            table_name: table_name.to_owned(),
            tunnel_name: tunnel_name.to_owned(),
            tunnel_id: None,
        };
        Ok(self.call(URI_DELETE, &req)?.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{OTS_PARAMETER_INVALID, OTS_TUNNEL_SERVER_UNAVAILABLE};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread;

    /// One request as the fake server saw it.
    #[derive(Debug)]
    struct Seen {
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    /// A canned response.
    struct Canned {
        status: u16,
        body: Vec<u8>,
    }

    fn read_request(stream: &mut TcpStream) -> Seen {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse::<usize>().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        Seen {
            path,
            headers,
            body,
        }
    }

    /// Serve the canned responses in order (one per connection), reporting
    /// each request on the returned channel.
    fn fake_server(responses: Vec<Canned>) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for canned in responses {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let seen = read_request(&mut stream);
                let _ = tx.send(seen);
                let head = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nx-ots-requestid: req-1\r\nconnection: close\r\n\r\n",
                    canned.status,
                    canned.body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&canned.body);
            }
        });
        (endpoint, rx)
    }

    fn fast_retry() -> BackoffConfig {
        BackoffConfig::new(Duration::from_millis(2), Duration::from_millis(10))
            .jitter(0.33)
            .max_elapsed(Some(Duration::from_millis(300)))
    }

    /// An endpoint nothing listens on: a port that was free a moment ago.
    fn closed_endpoint() -> String {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}")
    }

    fn client(endpoint: &str) -> TunnelClient {
        let config = TunnelClientConfig::new(endpoint, "inst", "akid", "secret")
            .request_timeout(Duration::from_secs(5))
            .meta_retry(fast_retry())
            .read_records_retry(fast_retry());
        TunnelClient::new(config).unwrap()
    }

    fn error_body(code: &str) -> Vec<u8> {
        proto::Error {
            code: code.into(),
            message: Some("boom".into()),
            tunnel_id: Some("t1".into()),
        }
        .encode_to_vec()
    }

    #[test]
    fn signed_connect_round_trip() {
        let ok = proto::ConnectResponse {
            client_id: "client-9".into(),
        };
        let (endpoint, seen) = fake_server(vec![Canned {
            status: 200,
            body: ok.encode_to_vec(),
        }]);
        let resp = client(&format!("{endpoint}/")).connect("t1", None).unwrap();
        assert_eq!(resp.client_id, "client-9");
        let req = seen.recv().unwrap();
        assert_eq!(req.path, URI_CONNECT);
        assert_eq!(req.body, vec![0x0a, 0x02, b't', b'1']);
        let verified = sign::verify_request(URI_CONNECT, &req.headers, &req.body, |id| {
            (id == "akid").then(|| "secret".to_owned())
        })
        .unwrap();
        assert_eq!(verified.instance_name, "inst");
        assert_eq!(verified.api_version, sign::API_VERSION);
    }

    #[test]
    fn retryable_service_error_is_retried() {
        let ok = proto::HeartbeatResponse {
            channels: vec![proto::Channel::new("c1", 0, proto::ChannelStatus::Open)],
        };
        let (endpoint, seen) = fake_server(vec![
            Canned {
                status: 503,
                body: error_body(OTS_TUNNEL_SERVER_UNAVAILABLE),
            },
            Canned {
                status: 500,
                body: b"not protobuf \xff".to_vec(),
            },
            Canned {
                status: 200,
                body: ok.encode_to_vec(),
            },
        ]);
        let resp = client(&endpoint).heartbeat("t1", "c", vec![]).unwrap();
        assert_eq!(resp, ok);
        assert_eq!(seen.try_iter().count(), 3);
    }

    #[test]
    fn fatal_service_error_is_not_retried() {
        let (endpoint, seen) = fake_server(vec![Canned {
            status: 400,
            body: error_body(OTS_PARAMETER_INVALID),
        }]);
        let err = client(&endpoint)
            .get_checkpoint("t1", "c", "ch")
            .unwrap_err();
        assert!(err.is_fatal(), "{err}");
        match &err {
            TunnelError::Service {
                code,
                message,
                tunnel_id,
                request_id,
                status,
                ..
            } => {
                assert_eq!(code, OTS_PARAMETER_INVALID);
                assert_eq!(message, "boom");
                assert_eq!(tunnel_id.as_deref(), Some("t1"));
                assert_eq!(request_id.as_deref(), Some("req-1"));
                assert_eq!(*status, 400);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(seen.recv().unwrap().path, URI_GET_CHECKPOINT);
        assert!(seen.try_recv().is_err());
    }

    #[test]
    fn read_records_reports_body_size() {
        let ok = proto::ReadRecordsResponse {
            records: vec![proto::Record {
                action_type: proto::ActionType::PutRow as i32,
                record: vec![1, 2, 3],
                origin_record: None,
            }],
            next_token: "finished".into(),
            may_more_record: Some(false),
        };
        let body = ok.encode_to_vec();
        let (endpoint, _seen) = fake_server(vec![Canned {
            status: 200,
            body: body.clone(),
        }]);
        let reply = client(&endpoint)
            .read_records("t1", "c", "ch", "tok")
            .unwrap();
        assert_eq!(reply.message, ok);
        assert_eq!(reply.body_len, body.len());
        assert_eq!(reply.request_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn a_refused_connection_keeps_the_http_client_error_as_a_typed_source() {
        let err = client(&closed_endpoint())
            .call_once::<proto::ShutdownResponse>(URI_SHUTDOWN, b"")
            .unwrap_err();
        assert!(matches!(err, TunnelError::Transport { .. }), "{err:?}");
        let source = std::error::Error::source(&err)
            .and_then(|source| source.downcast_ref::<ureq::Error>())
            .expect("the ureq error is the source");
        assert!(
            matches!(source, ureq::Error::Io(_) | ureq::Error::ConnectionFailed),
            "{source:?}"
        );
    }

    #[test]
    fn retries_stop_when_the_budget_is_spent() {
        let err = client(&closed_endpoint()).shutdown("t1", "c").unwrap_err();
        match &err {
            TunnelError::RetriesExhausted { attempts, last, .. } => {
                // Retried, and stopped by the 300 ms budget: with delays of at least
                // 2 ms, at most 150 retries fit in it (a count, not a clock).
                assert!(*attempts > 1);
                assert!(*attempts <= 151, "{attempts} attempts");
                assert!(matches!(**last, TunnelError::Transport { .. }), "{last:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
        // The chain of sources reaches the HTTP client's error, typed.
        let mut source = std::error::Error::source(&err);
        let mut found = false;
        while let Some(cause) = source {
            found |= cause.is::<ureq::Error>();
            source = cause.source();
        }
        assert!(found, "no ureq::Error among the sources of {err:?}");
    }

    #[test]
    fn config_validation_names_the_option() {
        let base = TunnelClientConfig::new("https://x.example.com", "inst", "akid", "secret");
        assert!(base.validate().is_ok());
        let option_of = |c: TunnelClientConfig| match TunnelClient::new(c) {
            Err(TunnelError::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption, got {other:?}"),
        };
        let with = |f: &dyn Fn(&mut TunnelClientConfig)| {
            let mut c = base.clone();
            f(&mut c);
            c
        };
        assert_eq!(option_of(with(&|c| c.endpoint = String::new())), "endpoint");
        assert_eq!(
            option_of(with(&|c| c.endpoint = "ftp://x".into())),
            "endpoint"
        );
        assert_eq!(
            option_of(with(&|c| c.endpoint = "https://x/path".into())),
            "endpoint"
        );
        assert_eq!(
            option_of(with(&|c| c.instance_name = " ".into())),
            "instance_name"
        );
        assert_eq!(
            option_of(with(&|c| c.access_key_id = String::new())),
            "access_key_id"
        );
        assert_eq!(
            option_of(with(&|c| c.access_key_secret = String::new())),
            "access_key_secret"
        );
        assert_eq!(
            option_of(with(&|c| c.sts_token = Some(String::new()))),
            "sts_token"
        );
        assert_eq!(
            option_of(with(&|c| c.request_timeout = Duration::ZERO)),
            "request_timeout"
        );
        assert_eq!(
            option_of(with(&|c| c.meta_retry.jitter = 2.0)),
            "meta_retry"
        );
        assert_eq!(
            option_of(with(&|c| c.read_records_retry.multiplier = 0.5)),
            "read_records_retry"
        );
        assert_eq!(
            option_of(with(&|c| c.max_response_bytes = 0)),
            "max_response_bytes"
        );
        assert!(base.clone().sts_token("tok").validate().is_ok());
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let c = TunnelClientConfig::new("https://x", "inst", "akid", "s3cr3t").sts_token("t0k3n");
        let s = format!("{c:?}");
        assert!(!s.contains("s3cr3t") && !s.contains("t0k3n"), "{s}");
    }
}
