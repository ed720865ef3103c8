//! Where partitions start, against a real Kafka-API broker: Elsa's `begin_offset` as an
//! explicit offset, and its `offset_out_of_range` handling (resubscribe at the
//! configured begin offset; `group/offset_out_of_range_test.exs`).

#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka::*;
use otp_threads::Runtime;
use otp_threads_kafka::{BeginOffset, GroupConsumer, MemberEvent};

/// Where each `OffsetOutOfRange` event resumed.
fn out_of_range_resets(events: &[MemberEvent]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| match e {
            MemberEvent::OffsetOutOfRange { resumed_at, .. } => Some(*resumed_at),
            _ => None,
        })
        .collect()
}

/// A fresh group with `BeginOffset::Offset(30)` starts every partition at offset 30;
/// one beyond the log (`Offset(1000)` on 100 messages) is out of range and starts at
/// its end.
#[test]
fn an_integer_begin_offset_starts_partitions_without_a_committed_offset_there() {
    init_logging();
    let topic = create_topic("begin-int");
    produce_spread(&topic, 400);
    let runtime = Runtime::new();

    let record = Arc::new(Record::default());
    let config = test_config(
        &unique("begin-int"),
        &topic,
        Recorder::factory("a", record.clone(), ack_all()),
    )
    .begin_offset(BeginOffset::Offset(30));
    let consumer = GroupConsumer::start(&runtime, config).unwrap();
    poll_until("280 messages handled", || record.distinct(), |n| *n == 280);
    let thirty: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 30)).collect();
    assert_eq!(first_handled(&record), thirty);
    consumer.stop(PATIENCE).unwrap();

    let beyond = Arc::new(Record::default());
    let config = test_config(
        &unique("begin-beyond"),
        &topic,
        Recorder::factory("b", beyond.clone(), ack_all()),
    )
    .begin_offset(BeginOffset::Offset(1_000));
    let consumer = GroupConsumer::start(&runtime, config).unwrap();
    let mut events = Events::of(&consumer);
    let seen = events.until("four partitions moved to their ends", |events| {
        out_of_range_resets(events).len() == 4
    });
    assert!(
        out_of_range_resets(seen).iter().all(|r| *r == 100),
        "{seen:?}"
    );
    // Positioned at the end: only what is produced now is handled.
    produce_spread(&topic, 40);
    poll_until(
        "40 new messages handled",
        || beyond.distinct(),
        |n| *n == 40,
    );
    let hundred: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 100)).collect();
    assert_eq!(first_handled(&beyond), hundred);
    consumer.stop(PATIENCE).unwrap();
    runtime.shutdown(PATIENCE).unwrap();
}

/// A committed offset the broker does not have (beyond the log's end) makes the fetch
/// fail out of range: the partition moves to the configured begin offset, and the
/// member reports it.
#[test]
fn an_offset_out_of_range_resumes_at_the_begin_offset() {
    init_logging();
    let topic = create_topic("out-of-range");
    let group = unique("out-of-range");
    produce_spread(&topic, 400);
    commit_from_outside(&group, &topic, &[0, 1, 2, 3], 5_000);

    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let config = test_config(
        &group,
        &topic,
        Recorder::factory("a", record.clone(), ack_all()),
    )
    .begin_offset(BeginOffset::Offset(20));
    let consumer = GroupConsumer::start(&runtime, config).unwrap();
    let mut events = Events::of(&consumer);
    let seen = events.until("four out-of-range resets", |events| {
        out_of_range_resets(events).len() == 4
    });
    assert_eq!(out_of_range_resets(seen), [20; 4], "{seen:?}");
    poll_until("320 messages handled", || record.distinct(), |n| *n == 320);
    let twenty: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 20)).collect();
    assert_eq!(first_handled(&record), twenty);
    consumer.stop(PATIENCE).unwrap();
    let ends: BTreeMap<i32, Option<i64>> = (0..PARTITIONS).map(|p| (p, Some(100))).collect();
    assert_eq!(committed(&group, &topic), ends);
    runtime.shutdown(PATIENCE).unwrap();
}
