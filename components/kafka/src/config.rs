//! [`GroupConfig`]: the settings of a group consumer, and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use super::error::GroupError;
use super::handler::{Assignment, Handler, HandlerFactory};

/// Elsa's `worker_supervisor_max_restarts`: 30 restarts...
pub const DEFAULT_MAX_RESTARTS: u32 = 30;
/// ...within Elsa's `worker_supervisor_max_seconds`, 5 s.
pub const DEFAULT_RESTART_PERIOD: Duration = Duration::from_secs(5);
/// How long a stopping worker may take to finish its batch before it is killed (the
/// `shutdown` of Elsa's workers).
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(10);
/// Kafka's consumer session timeout default in librdkafka before 2.x was 10 s; kept here.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How often acknowledged offsets are committed while running.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The most messages handed to one `handle_messages`.
pub const DEFAULT_MAX_BATCH: usize = 500;
/// The eager assignors: a revocation revokes everything, then the new assignment comes.
pub const DEFAULT_ASSIGNMENT_STRATEGY: &str = "range,roundrobin";

/// librdkafka settings the consumer owns; [`GroupConfig::kafka_option`] refuses them.
const RESERVED: [&str; 8] = [
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
];

/// Where a partition with no committed offset starts (Elsa's `begin_offset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BeginOffset {
    /// From its first message.
    Earliest,
    /// From messages produced after the assignment (Elsa's default).
    #[default]
    Latest,
}

/// The settings of a [`GroupConsumer`](super::GroupConsumer).
///
/// Required: brokers, group id, topics and the handler factory (the arguments of
/// [`new`](Self::new)); everything else has Elsa's default.
#[derive(Clone)]
pub struct GroupConfig {
    pub(crate) brokers: Vec<String>,
    pub(crate) group_id: String,
    pub(crate) topics: Vec<String>,
    pub(crate) factory: HandlerFactory,
    pub(crate) begin_offset: BeginOffset,
    pub(crate) session_timeout: Duration,
    pub(crate) heartbeat_interval: Option<Duration>,
    pub(crate) max_restarts: u32,
    pub(crate) restart_period: Duration,
    pub(crate) worker_shutdown: Duration,
    pub(crate) commit_interval: Duration,
    pub(crate) max_batch: usize,
    pub(crate) assignment_strategy: String,
    pub(crate) kafka_options: Vec<(String, String)>,
    pub(crate) name: Option<String>,
}

impl fmt::Debug for GroupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("begin_offset", &self.begin_offset)
            .field("session_timeout", &self.session_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_restarts", &self.max_restarts)
            .field("restart_period", &self.restart_period)
            .field("worker_shutdown", &self.worker_shutdown)
            .field("commit_interval", &self.commit_interval)
            .field("max_batch", &self.max_batch)
            .field("assignment_strategy", &self.assignment_strategy)
            .field("kafka_options", &self.kafka_options)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl GroupConfig {
    /// A consumer of `topics` in group `group_id` on `brokers` (`host:port` each);
    /// `factory` makes the handler of every partition worker (a restarted worker gets a
    /// fresh one).
    pub fn new<H: Handler>(
        brokers: impl IntoIterator<Item = impl Into<String>>,
        group_id: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
        factory: impl Fn(&Assignment) -> H + Send + Sync + 'static,
    ) -> GroupConfig {
        GroupConfig {
            brokers: brokers.into_iter().map(Into::into).collect(),
            group_id: group_id.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            factory: Arc::new(move |assignment| Box::new(factory(assignment))),
            begin_offset: BeginOffset::default(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            heartbeat_interval: None,
            max_restarts: DEFAULT_MAX_RESTARTS,
            restart_period: DEFAULT_RESTART_PERIOD,
            worker_shutdown: DEFAULT_WORKER_SHUTDOWN,
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            max_batch: DEFAULT_MAX_BATCH,
            assignment_strategy: DEFAULT_ASSIGNMENT_STRATEGY.to_owned(),
            kafka_options: Vec::new(),
            name: None,
        }
    }

    /// Where partitions without a committed offset start (default
    /// [`BeginOffset::Latest`]).
    pub fn begin_offset(mut self, begin: BeginOffset) -> Self {
        self.begin_offset = begin;
        self
    }

    /// The group session timeout (default 10 s; the broker bounds it with its
    /// `group.min/max.session.timeout.ms`).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// The heartbeat interval (default a quarter of the session timeout); must be below
    /// the session timeout.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// At most `max_restarts` worker restarts within `period` (default 30 in 5 s, as
    /// Elsa); beyond that the consumer stops with [`GroupError::HandlerKeptFailing`].
    pub fn worker_restart_intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.restart_period = period;
        self
    }

    /// How long a stopping worker may take to finish its batch before it is killed
    /// (default 10 s).
    pub fn worker_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.worker_shutdown = timeout;
        self
    }

    /// How often acknowledged offsets are committed while running (default 1 s); they
    /// are also committed at every revocation and at shutdown.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// The most messages in one batch (default 500).
    pub fn max_batch(mut self, max: usize) -> Self {
        self.max_batch = max;
        self
    }

    /// librdkafka's `partition.assignment.strategy` (default `"range,roundrobin"`, the
    /// eager assignors; `"cooperative-sticky"` revokes only the partitions that move).
    pub fn assignment_strategy(mut self, strategy: impl Into<String>) -> Self {
        self.assignment_strategy = strategy.into();
        self
    }

    /// Any other librdkafka consumer setting (`client.id`, `fetch.min.bytes`, ...). The
    /// settings the consumer owns are refused at start, naming them.
    pub fn kafka_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.kafka_options.push((key.into(), value.into()));
        self
    }

    /// Registers the consumer's manager worker under `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Checks every option and builds the librdkafka configuration.
    pub(crate) fn client_config(&self) -> Result<ClientConfig, GroupError> {
        let invalid = |option: &'static str, reason: &str| GroupError::InvalidOption {
            option,
            reason: reason.to_owned(),
        };
        if self.brokers.is_empty() || self.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(invalid("brokers", "give at least one broker, none empty"));
        }
        if self.group_id.trim().is_empty() {
            return Err(invalid("group_id", "must not be empty"));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(invalid("topics", "give at least one topic, none empty"));
        }
        let session_ms = self.session_timeout.as_millis();
        if session_ms == 0 || session_ms > i32::MAX as u128 {
            return Err(invalid(
                "session_timeout",
                "must be at least 1 ms and fit in i32 milliseconds",
            ));
        }
        let heartbeat = self.heartbeat_interval.unwrap_or(self.session_timeout / 4);
        let heartbeat_ms = heartbeat.as_millis().max(1);
        if heartbeat_ms >= session_ms {
            return Err(invalid(
                "heartbeat_interval",
                "must be below the session timeout",
            ));
        }
        if self.restart_period.is_zero() {
            return Err(invalid(
                "worker_restart_intensity",
                "the period must be greater than zero",
            ));
        }
        if self.worker_shutdown.is_zero() {
            return Err(invalid(
                "worker_shutdown_timeout",
                "must be greater than zero",
            ));
        }
        if self.commit_interval.is_zero() {
            return Err(invalid("commit_interval", "must be greater than zero"));
        }
        if self.max_batch == 0 {
            return Err(invalid("max_batch", "must be at least 1"));
        }
        if self.assignment_strategy.trim().is_empty() {
            return Err(invalid("assignment_strategy", "must not be empty"));
        }
        if let Some((key, _)) = self
            .kafka_options
            .iter()
            .find(|(key, _)| RESERVED.contains(&key.as_str()))
        {
            return Err(GroupError::InvalidOption {
                option: "kafka_option",
                reason: format!("`{key}` is set by the group consumer itself"),
            });
        }
        let mut config = ClientConfig::new();
        for (key, value) in &self.kafka_options {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match self.begin_offset {
                    BeginOffset::Earliest => "earliest",
                    BeginOffset::Latest => "latest",
                },
            )
            .set("session.timeout.ms", session_ms.to_string())
            .set("heartbeat.interval.ms", heartbeat_ms.to_string())
            .set("partition.assignment.strategy", &self.assignment_strategy);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ack, Message};

    struct Nop;
    impl Handler for Nop {
        fn handle_messages(&mut self, _: &[Message]) -> Ack {
            Ack::Ack
        }
    }

    fn config() -> GroupConfig {
        GroupConfig::new(["127.0.0.1:9092"], "g", ["t"], |_| Nop)
    }

    fn option_of(config: GroupConfig) -> &'static str {
        match config.client_config() {
            Err(GroupError::InvalidOption { option, .. }) => option,
            other => panic!("expected an invalid option, got {other:?}"),
        }
    }

    #[test]
    fn each_invalid_option_is_named() {
        assert!(config().client_config().is_ok());
        let none: [&str; 0] = [];
        assert_eq!(
            option_of(GroupConfig::new(none, "g", ["t"], |_| Nop)),
            "brokers"
        );
        assert_eq!(
            option_of(GroupConfig::new(["b:1"], " ", ["t"], |_| Nop)),
            "group_id"
        );
        assert_eq!(
            option_of(GroupConfig::new(["b:1"], "g", none, |_| Nop)),
            "topics"
        );
        assert_eq!(
            option_of(config().session_timeout(Duration::ZERO)),
            "session_timeout"
        );
        assert_eq!(
            option_of(config().heartbeat_interval(Duration::from_secs(60))),
            "heartbeat_interval"
        );
        assert_eq!(
            option_of(config().worker_restart_intensity(3, Duration::ZERO)),
            "worker_restart_intensity"
        );
        assert_eq!(
            option_of(config().worker_shutdown_timeout(Duration::ZERO)),
            "worker_shutdown_timeout"
        );
        assert_eq!(
            option_of(config().commit_interval(Duration::ZERO)),
            "commit_interval"
        );
        assert_eq!(option_of(config().max_batch(0)), "max_batch");
        assert_eq!(
            option_of(config().assignment_strategy("")),
            "assignment_strategy"
        );
        assert_eq!(
            option_of(config().kafka_option("group.id", "x")),
            "kafka_option"
        );
    }
}
