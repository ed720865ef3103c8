//! Group consumer settings are checked before anything connects: an invalid one is an
//! error naming the option (no broker needed).

use std::time::Duration;

use otp_threads::Runtime;
use otp_threads_kafka::{Ack, GroupConfig, GroupConsumer, GroupError, Handler, Message};

struct Nop;

impl Handler for Nop {
    fn handle_messages(&mut self, _: &[Message]) -> Ack {
        Ack::Ack
    }
}

fn option_rejected(config: GroupConfig) -> &'static str {
    let runtime = Runtime::new();
    match GroupConsumer::start(&runtime, config) {
        Err(GroupError::InvalidOption { option, reason }) => {
            assert!(!reason.is_empty());
            option
        }
        other => panic!("expected an invalid option, got {other:?}"),
    }
}

#[test]
fn invalid_options_are_rejected_naming_the_option() {
    let config = || GroupConfig::new(["127.0.0.1:1"], "g", ["t"], |_| Nop);
    assert_eq!(
        option_rejected(GroupConfig::new(["127.0.0.1:1"], "", ["t"], |_| Nop)),
        "group_id"
    );
    assert_eq!(
        option_rejected(GroupConfig::new(
            ["127.0.0.1:1"],
            "g",
            Vec::<String>::new(),
            |_| Nop
        )),
        "topics"
    );
    assert_eq!(
        option_rejected(GroupConfig::new(Vec::<String>::new(), "g", ["t"], |_| Nop)),
        "brokers"
    );
    assert_eq!(
        option_rejected(config().restart_delay(Duration::ZERO, Duration::from_secs(5))),
        "restart_delay"
    );
    assert_eq!(
        option_rejected(config().begin_offset(otp_threads_kafka::BeginOffset::Offset(-3))),
        "begin_offset"
    );
    assert_eq!(
        option_rejected(config().dead_letter(0, |_| otp_threads_kafka::DeadLetterAction::Skip)),
        "dead_letter"
    );
    assert_eq!(
        option_rejected(config().statistics_interval(Duration::ZERO)),
        "statistics_interval"
    );
    assert_eq!(
        option_rejected(config().event_capacity(0)),
        "event_capacity"
    );
    assert_eq!(
        option_rejected(config().worker_shutdown_timeout(Duration::ZERO)),
        "worker_shutdown_timeout"
    );
    assert_eq!(
        option_rejected(
            config()
                .session_timeout(Duration::from_millis(100))
                .heartbeat_interval(Duration::from_secs(1))
        ),
        "heartbeat_interval"
    );
    assert_eq!(
        option_rejected(config().kafka_option("enable.auto.commit", "true")),
        "kafka_option"
    );
}

#[test]
fn an_unknown_librdkafka_setting_is_a_kafka_error() {
    let runtime = Runtime::new();
    let config = GroupConfig::new(["127.0.0.1:1"], "g", ["t"], |_| Nop)
        .assignment_strategy("no-such-assignor");
    match GroupConsumer::start(&runtime, config) {
        Err(GroupError::Kafka { action, .. }) => assert_eq!(action, "create the consumer"),
        other => panic!("expected a Kafka error, got {other:?}"),
    }
}

#[test]
fn a_start_on_a_stopped_runtime_keeps_the_runtime_error_as_a_typed_source() {
    let runtime = Runtime::new();
    let handle = runtime.handle();
    runtime
        .shutdown(Duration::from_secs(30))
        .expect("the empty runtime stops");
    let config = GroupConfig::new(["127.0.0.1:1"], "g", ["t"], |_| Nop);
    let error = GroupConsumer::start(&handle, config).expect_err("the runtime is stopped");
    assert!(matches!(error, GroupError::Start(_)), "{error:?}");
    let source = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<otp_threads::Error>());
    assert_eq!(source, Some(&otp_threads::Error::RuntimeStopped));
}
