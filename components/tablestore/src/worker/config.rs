//! [`TunnelWorkerConfig`]: the options of a tunnel worker, with the rules of the
//! original (`ExAliyunOts.Tunnel.Worker.validate/1`) and the SDKs.

use std::time::Duration;

use crate::backoff::BackoffConfig;
use crate::client::TunnelClientConfig;
use crate::error::TunnelError;
use crate::options;
use crate::proto;

use super::record::OnUndecodable;

/// Default [`TunnelWorkerConfig::heartbeat_interval`]: 30 s.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Default [`TunnelWorkerConfig::heartbeat_timeout`]: 300 s.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default [`TunnelWorkerConfig::connect_timeout`]: 300 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default [`TunnelWorkerConfig::read_ahead`]: one batch fetched ahead per channel.
pub const DEFAULT_READ_AHEAD: usize = 1;
/// The largest [`TunnelWorkerConfig::read_ahead`]: 16 batches per channel.
pub const MAX_READ_AHEAD: usize = 16;
/// The smallest heartbeat interval users may set: 5 s (the original's and the Java
/// SDK's `@min_heartbeat_interval`).
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Options of a tunnel worker: [`new`](Self::new) with the tunnel and the client
/// settings, then the builder methods; [`TunnelWorker::start`](super::TunnelWorker::start)
/// checks them ([`validate`](Self::validate)).
///
/// | option | default | rule |
/// |---|---|---|
/// | `tunnel_id` | required | not empty |
/// | `client` | required | endpoint, instance and credentials ([`TunnelClientConfig::validate`]) |
/// | [`heartbeat_interval`](Self::heartbeat_interval) | 30 s | at least 5 s ([`MIN_HEARTBEAT_INTERVAL`]), at most a week |
/// | [`heartbeat_timeout`](Self::heartbeat_timeout) | 300 s | greater than `heartbeat_interval`, at most a week |
/// | [`connect_timeout`](Self::connect_timeout) | 300 s | 1 s to a week; sent (in whole seconds) as the session timeout |
/// | [`client_tag`](Self::client_tag) | none | not blank when set |
/// | [`poll_backoff`](Self::poll_backoff) | [`BackoffConfig::stream_poll`] | the pause while a channel reads nothing |
/// | [`on_undecodable`](Self::on_undecodable) | [`OnUndecodable::Deliver`] | what to do with a record that cannot be decoded |
/// | [`read_ahead`](Self::read_ahead) | 1 | batches fetched ahead per channel, at most [`MAX_READ_AHEAD`] |
/// | [`min_heartbeat_interval`](Self::min_heartbeat_interval) | 5 s | tests only: the floor, positive and at most 5 s |
///
/// A bad option is a [`TunnelError::InvalidOption`] naming it.
#[derive(Clone, Debug)]
pub struct TunnelWorkerConfig {
    pub(crate) tunnel_id: String,
    pub(crate) client: TunnelClientConfig,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) client_tag: Option<String>,
    pub(crate) poll_backoff: BackoffConfig,
    pub(crate) on_undecodable: OnUndecodable,
    pub(crate) read_ahead: usize,
    pub(crate) min_heartbeat_interval: Duration,
}

impl TunnelWorkerConfig {
    /// A configuration with the defaults above.
    pub fn new(tunnel_id: impl Into<String>, client: TunnelClientConfig) -> Self {
        TunnelWorkerConfig {
            tunnel_id: tunnel_id.into(),
            client,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            client_tag: None,
            poll_backoff: BackoffConfig::stream_poll(),
            on_undecodable: OnUndecodable::default(),
            read_ahead: DEFAULT_READ_AHEAD,
            min_heartbeat_interval: MIN_HEARTBEAT_INTERVAL,
        }
    }

    /// Replace the client settings (endpoint, credentials, timeouts, retries).
    pub fn client(mut self, client: TunnelClientConfig) -> Self {
        self.client = client;
        self
    }

    /// Time between heartbeats (the first one is sent at once after connect).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// A worker whose heartbeats have not succeeded for this long stops with
    /// [`TunnelError::HeartbeatTimeout`] (and its supervisor starts a new session).
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// The session timeout sent with connect (`ClientConfig.timeout`, seconds).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Free-form tag sent with connect (`ClientConfig.client_tag`).
    pub fn client_tag(mut self, tag: impl Into<String>) -> Self {
        self.client_tag = Some(tag.into());
        self
    }

    /// Backoff between reads of a channel whose reads come back empty; reset by the
    /// first non-empty batch. Also the pause between rounds of reconciling a
    /// mismatching checkpoint sequence number.
    pub fn poll_backoff(mut self, policy: BackoffConfig) -> Self {
        self.poll_backoff = policy;
        self
    }

    /// What a reader does with a record it cannot decode.
    pub fn on_undecodable(mut self, policy: OnUndecodable) -> Self {
        self.on_undecodable = policy;
        self
    }

    /// Batches a reader fetches ahead while the subscriber works on the delivered
    /// one (0 reads only after the ack). They are delivered in order, each after the
    /// previous one was acknowledged and checkpointed; a nack or a crash drops them
    /// unseen.
    pub fn read_ahead(mut self, batches: usize) -> Self {
        self.read_ahead = batches;
        self
    }

    /// The floor `heartbeat_interval` is checked against: [`MIN_HEARTBEAT_INTERVAL`]
    /// (5 s) unless lowered.
    ///
    /// **Tests and demos only.** The 5 s floor protects the service; an emulator on
    /// loopback does not need it, and tests want a session loop that turns over in
    /// milliseconds. Lowering it is an explicit, separate decision (it must be
    /// positive and may not exceed 5 s), so a plain `heartbeat_interval` typo is still
    /// rejected.
    pub fn min_heartbeat_interval(mut self, floor: Duration) -> Self {
        self.min_heartbeat_interval = floor;
        self
    }

    /// Check every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), TunnelError> {
        if self.tunnel_id.trim().is_empty() {
            return Err(TunnelError::invalid_option("tunnel_id", "is required"));
        }
        if self.min_heartbeat_interval.is_zero()
            || self.min_heartbeat_interval > MIN_HEARTBEAT_INTERVAL
        {
            return Err(TunnelError::invalid_option(
                "min_heartbeat_interval",
                format!("must be positive and at most {MIN_HEARTBEAT_INTERVAL:?}"),
            ));
        }
        options::duration_within(
            "heartbeat_interval",
            self.heartbeat_interval,
            self.min_heartbeat_interval,
        )?;
        options::duration_within("heartbeat_timeout", self.heartbeat_timeout, Duration::ZERO)?;
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(TunnelError::invalid_option(
                "heartbeat_timeout",
                format!(
                    "{:?} must be greater than heartbeat_interval ({:?})",
                    self.heartbeat_timeout, self.heartbeat_interval
                ),
            ));
        }
        // Sent in whole seconds.
        options::duration_within(
            "connect_timeout",
            self.connect_timeout,
            Duration::from_secs(1),
        )?;
        if self
            .client_tag
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(TunnelError::invalid_option(
                "client_tag",
                "must not be blank when set",
            ));
        }
        self.poll_backoff.validate("poll_backoff")?;
        if self.read_ahead > MAX_READ_AHEAD {
            return Err(TunnelError::invalid_option(
                "read_ahead",
                format!(
                    "{} is above the maximum of {MAX_READ_AHEAD}",
                    self.read_ahead
                ),
            ));
        }
        self.client.validate()
    }

    /// The `ClientConfig` sent with connect.
    pub(crate) fn connect_config(&self) -> proto::ClientConfig {
        proto::ClientConfig {
            // Validation bounds it far below i64::MAX seconds.
            timeout: Some(i64::try_from(self.connect_timeout.as_secs()).unwrap_or(i64::MAX)),
            client_tag: self.client_tag.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TunnelWorkerConfig {
        TunnelWorkerConfig::new(
            "t1",
            TunnelClientConfig::new("http://127.0.0.1:1", "inst", "akid", "secret"),
        )
    }

    fn option_of(f: impl FnOnce(&mut TunnelWorkerConfig)) -> &'static str {
        let mut c = config();
        f(&mut c);
        match c.validate() {
            Err(TunnelError::InvalidOption { option, .. }) => option,
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_original() {
        let c = config();
        assert!(c.validate().is_ok());
        assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(300));
        assert_eq!(c.connect_config().timeout, Some(300));
        assert_eq!(c.connect_config().client_tag, None);
        assert_eq!(c.on_undecodable, OnUndecodable::Deliver);
        assert_eq!(c.read_ahead, DEFAULT_READ_AHEAD);
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(option_of(|c| c.tunnel_id = " ".into()), "tunnel_id");
        assert_eq!(
            option_of(|c| c.heartbeat_interval = Duration::from_secs(4)),
            "heartbeat_interval"
        );
        assert_eq!(
            option_of(|c| c.heartbeat_timeout = c.heartbeat_interval),
            "heartbeat_timeout"
        );
        assert_eq!(
            option_of(|c| c.connect_timeout = Duration::from_millis(999)),
            "connect_timeout"
        );
        assert_eq!(
            option_of(|c| c.client_tag = Some(String::new())),
            "client_tag"
        );
        assert_eq!(
            option_of(|c| c.read_ahead = MAX_READ_AHEAD + 1),
            "read_ahead"
        );
        assert_eq!(
            option_of(|c| c.poll_backoff.multiplier = 0.5),
            "poll_backoff"
        );
        assert_eq!(
            option_of(|c| c.min_heartbeat_interval = Duration::ZERO),
            "min_heartbeat_interval"
        );
        assert_eq!(
            option_of(|c| c.min_heartbeat_interval = Duration::from_secs(6)),
            "min_heartbeat_interval"
        );
        assert_eq!(
            option_of(|c| c.client.endpoint = "ftp://x".into()),
            "endpoint"
        );
    }

    #[test]
    fn duration_max_options_are_rejected_naming_the_option() {
        assert_eq!(
            option_of(|c| c.heartbeat_timeout = Duration::MAX),
            "heartbeat_timeout"
        );
        assert_eq!(
            option_of(|c| {
                c.heartbeat_interval = Duration::MAX - Duration::from_secs(1);
                c.heartbeat_timeout = Duration::MAX;
            }),
            "heartbeat_interval"
        );
        assert_eq!(
            option_of(|c| c.connect_timeout = Duration::MAX),
            "connect_timeout"
        );
        assert_eq!(
            option_of(|c| c.poll_backoff.max_interval = Duration::MAX),
            "poll_backoff"
        );
        assert_eq!(
            option_of(|c| c.client.request_timeout = Duration::MAX),
            "request_timeout"
        );
        assert_eq!(
            option_of(|c| c.client.meta_retry.max_interval = Duration::MAX),
            "meta_retry"
        );
        assert_eq!(
            option_of(|c| c.client.read_records_retry.max_elapsed = Some(Duration::MAX)),
            "read_records_retry"
        );
    }

    #[test]
    fn the_test_floor_is_a_separate_explicit_setting() {
        let mut c = config();
        c.heartbeat_interval = Duration::from_millis(50);
        c.heartbeat_timeout = Duration::from_secs(2);
        assert!(c.validate().is_err());
        c.min_heartbeat_interval = Duration::from_millis(10);
        assert!(c.validate().is_ok());
    }
}
