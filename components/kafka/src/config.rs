//! [`GroupConfig`]: the settings of a group consumer, and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use super::backoff::RestartDelay;
use super::dead_letter::{DeadLetter, DeadLetterAction, DeadLetterPolicy};
use super::error::GroupError;
use super::handler::{Assignment, Handler, HandlerFactory};
use super::lifecycle::{Lifecycle, NoHooks};

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
/// How often librdkafka reports the partitions' high watermarks (for the lag).
pub const DEFAULT_STATISTICS_INTERVAL: Duration = Duration::from_secs(1);
/// How many member events wait for a reader before new ones are dropped.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// librdkafka settings the consumer owns; [`GroupConfig::kafka_option`] refuses them.
const RESERVED: [&str; 9] = [
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "statistics.interval.ms",
];

/// Where a partition with no committed offset starts (Elsa's `begin_offset`), and
/// where it goes when a fetch asks for an offset the broker does not have (Elsa's
/// `offset_out_of_range` resubscribe).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BeginOffset {
    /// From its first message.
    Earliest,
    /// From messages produced after the assignment (Elsa's default).
    #[default]
    Latest,
    /// From this offset; one outside the partition's log is moved to its nearer end.
    Offset(i64),
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
    pub(crate) restart_delay: RestartDelay,
    pub(crate) dead_letter: Option<DeadLetterPolicy>,
    pub(crate) lifecycle: Arc<dyn Lifecycle>,
    pub(crate) worker_shutdown: Duration,
    pub(crate) commit_interval: Duration,
    pub(crate) max_batch: usize,
    pub(crate) assignment_strategy: String,
    pub(crate) kafka_options: Vec<(String, String)>,
    pub(crate) statistics_interval: Duration,
    pub(crate) event_capacity: usize,
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
            .field("restart_delay", &self.restart_delay)
            .field(
                "dead_letter_attempts",
                &self.dead_letter.as_ref().map(|d| d.attempts),
            )
            .field("worker_shutdown", &self.worker_shutdown)
            .field("commit_interval", &self.commit_interval)
            .field("max_batch", &self.max_batch)
            .field("assignment_strategy", &self.assignment_strategy)
            .field("kafka_options", &self.kafka_options)
            .field("statistics_interval", &self.statistics_interval)
            .field("event_capacity", &self.event_capacity)
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
            restart_delay: RestartDelay::default(),
            dead_letter: None,
            lifecycle: Arc::new(NoHooks),
            worker_shutdown: DEFAULT_WORKER_SHUTDOWN,
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            max_batch: DEFAULT_MAX_BATCH,
            assignment_strategy: DEFAULT_ASSIGNMENT_STRATEGY.to_owned(),
            kafka_options: Vec::new(),
            statistics_interval: DEFAULT_STATISTICS_INTERVAL,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            name: None,
        }
    }

    /// Where partitions without a committed offset start, and where a partition goes
    /// when its offset is out of range (default [`BeginOffset::Latest`]; an
    /// [`Offset`](BeginOffset::Offset) must not be negative).
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

    /// The restart delay of a failing partition worker (Elsa's `delay`): the first
    /// restart waits `base`, each further consecutive failure twice as long, at most
    /// `cap` (default 500 ms doubling up to 5 s). Only that partition waits; `base`
    /// must be above zero and at most `cap`.
    pub fn restart_delay(mut self, base: Duration, cap: Duration) -> Self {
        self.restart_delay = RestartDelay { base, cap };
        self
    }

    /// Opts in to a dead-letter handler: once a partition's worker has failed
    /// `attempts` times in a row (at least 1) on the same batch, `handler` gets that
    /// batch and decides whether to skip it (see [`dead_letter`](crate::dead_letter)).
    pub fn dead_letter(
        mut self,
        attempts: u32,
        handler: impl Fn(&DeadLetter<'_>) -> DeadLetterAction + Send + Sync + 'static,
    ) -> Self {
        self.dead_letter = Some(DeadLetterPolicy {
            attempts,
            handler: Arc::new(handler),
        });
        self
    }

    /// The member's lifecycle hooks (see [`Lifecycle`]); default none.
    pub fn lifecycle(mut self, hooks: impl Lifecycle) -> Self {
        self.lifecycle = Arc::new(hooks);
        self
    }

    /// How often librdkafka reports the partitions' high watermarks, from which the
    /// consumer lag is computed (default 1 s; at least 1 ms, at most `i32::MAX` ms).
    pub fn statistics_interval(mut self, interval: Duration) -> Self {
        self.statistics_interval = interval;
        self
    }

    /// How many member events wait for a reader before new ones are dropped (default
    /// 1024, at least 1).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
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
        check_brokers(&self.brokers)?;
        check_not_blank("group_id", &self.group_id)?;
        check_topics(&self.topics)?;
        check_begin_offset(self.begin_offset)?;
        let session_ms = millis_i32("session_timeout", self.session_timeout)?;
        let heartbeat = self.heartbeat_interval.unwrap_or(self.session_timeout / 4);
        let heartbeat_ms = check_heartbeat(heartbeat, session_ms)?;
        check_restart_delay(&self.restart_delay)?;
        check_dead_letter(self.dead_letter.as_ref())?;
        check_positive("worker_shutdown_timeout", self.worker_shutdown)?;
        check_positive("commit_interval", self.commit_interval)?;
        check_at_least_one("max_batch", self.max_batch)?;
        check_not_blank("assignment_strategy", &self.assignment_strategy)?;
        let statistics_ms = millis_i32("statistics_interval", self.statistics_interval)?;
        check_at_least_one("event_capacity", self.event_capacity)?;
        check_kafka_options(&self.kafka_options)?;
        let mut config = ClientConfig::new();
        for (key, value) in &self.kafka_options {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Every assignment is positioned explicitly (committed offset, else the
            // begin offset); an offset out of range comes to the partition's worker as
            // an error, which moves it to the begin offset and reports it.
            .set("auto.offset.reset", "error")
            .set("session.timeout.ms", session_ms.to_string())
            .set("heartbeat.interval.ms", heartbeat_ms.to_string())
            .set("partition.assignment.strategy", &self.assignment_strategy)
            .set("statistics.interval.ms", statistics_ms.to_string());
        Ok(config)
    }
}

fn invalid(option: &'static str, reason: impl Into<String>) -> GroupError {
    GroupError::InvalidOption {
        option,
        reason: reason.into(),
    }
}

fn check_brokers(brokers: &[String]) -> Result<(), GroupError> {
    if brokers.is_empty() || brokers.iter().any(|b| b.trim().is_empty()) {
        return Err(invalid("brokers", "give at least one broker, none empty"));
    }
    Ok(())
}

fn check_topics(topics: &[String]) -> Result<(), GroupError> {
    if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
        return Err(invalid("topics", "give at least one topic, none empty"));
    }
    Ok(())
}

fn check_not_blank(option: &'static str, value: &str) -> Result<(), GroupError> {
    if value.trim().is_empty() {
        return Err(invalid(option, "must not be empty"));
    }
    Ok(())
}

fn check_begin_offset(begin: BeginOffset) -> Result<(), GroupError> {
    if let BeginOffset::Offset(offset) = begin
        && offset < 0
    {
        return Err(invalid(
            "begin_offset",
            format!("an offset must not be negative, got {offset}"),
        ));
    }
    Ok(())
}

/// A duration librdkafka takes as an `i32` count of milliseconds, at least 1.
fn millis_i32(option: &'static str, value: Duration) -> Result<i32, GroupError> {
    match i32::try_from(value.as_millis()) {
        Ok(ms) if ms >= 1 => Ok(ms),
        _ => Err(invalid(
            option,
            "must be at least 1 ms and fit in i32 milliseconds",
        )),
    }
}

fn check_heartbeat(heartbeat: Duration, session_ms: i32) -> Result<i32, GroupError> {
    let heartbeat_ms = millis_i32(
        "heartbeat_interval",
        heartbeat.max(Duration::from_millis(1)),
    )?;
    if heartbeat_ms >= session_ms {
        return Err(invalid(
            "heartbeat_interval",
            "must be below the session timeout",
        ));
    }
    Ok(heartbeat_ms)
}

fn check_restart_delay(delay: &RestartDelay) -> Result<(), GroupError> {
    if delay.base.is_zero() {
        return Err(invalid(
            "restart_delay",
            "the base delay must be above zero",
        ));
    }
    if delay.base > delay.cap {
        return Err(invalid(
            "restart_delay",
            format!(
                "the base delay ({:?}) must not exceed the cap ({:?})",
                delay.base, delay.cap
            ),
        ));
    }
    Ok(())
}

fn check_dead_letter(policy: Option<&DeadLetterPolicy>) -> Result<(), GroupError> {
    if policy.is_some_and(|p| p.attempts == 0) {
        return Err(invalid("dead_letter", "attempts must be at least 1"));
    }
    Ok(())
}

fn check_positive(option: &'static str, value: Duration) -> Result<(), GroupError> {
    if value.is_zero() {
        return Err(invalid(option, "must be greater than zero"));
    }
    Ok(())
}

fn check_at_least_one(option: &'static str, value: usize) -> Result<(), GroupError> {
    if value == 0 {
        return Err(invalid(option, "must be at least 1"));
    }
    Ok(())
}

fn check_kafka_options(options: &[(String, String)]) -> Result<(), GroupError> {
    if let Some((key, _)) = options
        .iter()
        .find(|(key, _)| RESERVED.contains(&key.as_str()))
    {
        return Err(invalid(
            "kafka_option",
            format!("`{key}` is set by the group consumer itself"),
        ));
    }
    Ok(())
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
            option_of(config().begin_offset(BeginOffset::Offset(-1))),
            "begin_offset"
        );
        assert!(
            config()
                .begin_offset(BeginOffset::Offset(0))
                .client_config()
                .is_ok()
        );
        assert_eq!(
            option_of(config().restart_delay(Duration::ZERO, Duration::from_secs(1))),
            "restart_delay"
        );
        assert_eq!(
            option_of(config().restart_delay(Duration::from_secs(2), Duration::from_secs(1))),
            "restart_delay"
        );
        assert_eq!(
            option_of(config().dead_letter(0, |_| DeadLetterAction::Skip)),
            "dead_letter"
        );
        assert_eq!(
            option_of(config().statistics_interval(Duration::ZERO)),
            "statistics_interval"
        );
        assert_eq!(
            option_of(config().statistics_interval(Duration::from_secs(u64::MAX))),
            "statistics_interval"
        );
        assert_eq!(option_of(config().event_capacity(0)), "event_capacity");
        assert_eq!(
            option_of(config().session_timeout(Duration::from_secs(u64::MAX))),
            "session_timeout"
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
