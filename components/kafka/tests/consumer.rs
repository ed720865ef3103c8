//! The group consumer against a real Kafka-API broker (started by `scripts/test.sh`).
//! Scenarios after Elsa's integration tests (`consumer_test.exs`,
//! `group/dead_subscriber_test.exs`) and its acknowledger unit tests.

#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka::*;
use otp_threads::Runtime;
use otp_threads_kafka::{Ack, AckOutcome, GroupConsumer, GroupError, MemberEvent, WorkerInfo};

fn partitions_of(consumer: &GroupConsumer) -> Vec<i32> {
    consumer.workers().iter().map(|w| w.partition).collect()
}

fn all_partitions() -> Vec<i32> {
    (0..PARTITIONS).collect()
}

/// Ten thousand messages over four partitions: each is handled exactly once and
/// acknowledged, and the group's committed offsets end at the partitions' ends.
#[test]
fn ten_thousand_messages_are_each_handled_acknowledged_and_committed() {
    init_logging();
    let topic = create_topic("group-all");
    let group = unique("group-all");
    produce_spread(&topic, 10_000);
    let ends: BTreeMap<i32, i64> = all_partitions().into_iter().map(|p| (p, 2_500)).collect();

    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let config = test_config(
        &group,
        &topic,
        Recorder::factory("a", record.clone(), ack_all()),
    );
    let consumer = GroupConsumer::start(&runtime, config).unwrap();

    poll_until(
        "10,000 messages handled",
        || record.distinct(),
        |n| *n == 10_000,
    );
    // Committed while running (the periodic commit), to the end of each partition.
    let expected: BTreeMap<i32, Option<i64>> = ends.iter().map(|(p, o)| (*p, Some(*o))).collect();
    poll_until(
        "committed offsets at the ends",
        || committed(&group, &topic),
        |c| *c == expected,
    );

    let workers = consumer.workers();
    assert_eq!(
        workers.iter().map(|w| w.partition).collect::<Vec<_>>(),
        all_partitions(),
        "one worker per partition: {workers:?}"
    );
    let generation = consumer.generation().unwrap();
    for worker in &workers {
        assert_eq!(worker.generation, generation);
        assert!(worker.pid.is_some());
        assert_eq!(worker.restarts, 0);
        assert_eq!(worker.latest_offset, Some(ends[&worker.partition]));
    }
    consumer.stop(PATIENCE).unwrap();
    assert_eq!(committed(&group, &topic), expected);
    assert_eq!(record.total(), 10_000, "no message handled twice");
    assert!(!record.overlap.load(Ordering::SeqCst));
    runtime.shutdown(PATIENCE).unwrap();
}

/// A handler that panics on one message is restarted (same generation) and the message
/// comes again from the latest acknowledged offset; nothing is lost.
#[test]
fn a_panicking_handler_is_restarted_and_redelivered_from_the_last_ack() {
    init_logging();
    let topic = create_topic("group-panic");
    let group = unique("group-panic");
    produce(&topic, &all_partitions(), 500);

    let panicked = Arc::new(AtomicBool::new(false));
    let decide: Decide = {
        let panicked = panicked.clone();
        Arc::new(move |assignment, messages| {
            let poison = assignment.partition == 1 && messages.iter().any(|m| m.offset == 250);
            if poison && !panicked.swap(true, Ordering::SeqCst) {
                panic!("poison message 1/250");
            }
            Ack::Ack
        })
    };
    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let config = test_config(
        &group,
        &topic,
        Recorder::factory("a", record.clone(), decide),
    )
    .max_batch(20);
    let consumer = GroupConsumer::start(&runtime, config).unwrap();

    poll_until(
        "2,000 messages handled",
        || record.distinct(),
        |n| *n == 2_000,
    );
    assert!(panicked.load(Ordering::SeqCst));
    assert_eq!(
        record.handled.lock().unwrap()[&(1, 250)],
        1,
        "handled after the restart"
    );

    let workers = consumer.workers();
    let crashed: &WorkerInfo = workers.iter().find(|w| w.partition == 1).unwrap();
    assert_eq!(crashed.restarts, 1, "{workers:?}");
    assert!(workers.iter().all(|w| w.generation == crashed.generation));

    // The restarted handler had the same generation, resumed at the latest ack (the
    // first offset of the batch that panicked), and that is where delivery resumed.
    let starts = record.starts.lock().unwrap().clone();
    let restarted: Vec<_> = starts
        .iter()
        .filter(|(_, a)| a.partition == 1 && a.restarts == 1)
        .collect();
    assert_eq!(restarted.len(), 1, "{starts:?}");
    let begin = restarted[0].1.begin_offset.expect("a resume offset");
    assert!(begin <= 250 && begin > 250 - 20, "resumed at {begin}");
    assert_eq!(restarted[0].1.generation, crashed.generation);
    let firsts = record.firsts.lock().unwrap().clone();
    assert!(
        firsts.contains(&(1, 1, Some(begin), begin)),
        "redelivered from {begin}: {firsts:?}"
    );
    consumer.stop(PATIENCE).unwrap();
    let ends: BTreeMap<i32, Option<i64>> = all_partitions()
        .into_iter()
        .map(|p| (p, Some(500)))
        .collect();
    assert_eq!(committed(&group, &topic), ends);
    runtime.shutdown(PATIENCE).unwrap();
}

/// A second member joins: the partitions split between the two, every message is still
/// handled, and no partition is ever handled by two workers at once; when the second
/// member leaves, its partitions come back to the first.
#[test]
fn a_second_member_splits_the_partitions_and_gives_them_back_when_it_leaves() {
    init_logging();
    let topic = create_topic("group-split");
    let group = unique("group-split");
    let record = Arc::new(Record::default());
    // Slow batches, so that revocations happen while batches are in progress.
    let decide: Decide = Arc::new(|_, _| {
        std::thread::sleep(Duration::from_millis(2));
        Ack::Ack
    });
    let runtime = Runtime::new();
    let config = |member| {
        test_config(
            &group,
            &topic,
            Recorder::factory(member, record.clone(), decide.clone()),
        )
        .max_batch(50)
    };
    let a = GroupConsumer::start(&runtime, config("a")).unwrap();
    poll_until(
        "a owns all partitions",
        || partitions_of(&a),
        |p| *p == all_partitions(),
    );
    let first_generation = a.generation().unwrap();
    produce_spread(&topic, 4_000);

    let b = GroupConsumer::start(&runtime, config("b")).unwrap();
    let split = poll_until(
        "the partitions split between a and b",
        || (partitions_of(&a), partitions_of(&b)),
        |(pa, pb)| {
            let mut all: Vec<i32> = pa.iter().chain(pb).copied().collect();
            all.sort();
            !pa.is_empty() && !pb.is_empty() && all == all_partitions()
        },
    );
    assert!(a.generation().unwrap() > first_generation);
    produce_spread(&topic, 4_000);
    poll_until(
        "8,000 messages handled",
        || record.distinct(),
        |n| *n == 8_000,
    );
    let starts = record.starts.lock().unwrap().clone();
    for (_, partition) in starts
        .iter()
        .filter(|(m, _)| *m == "b")
        .map(|(m, a)| (m, a.partition))
    {
        assert!(
            split.1.contains(&partition),
            "b handled only its partitions"
        );
    }

    b.stop(PATIENCE).unwrap();
    poll_until(
        "a owns all partitions again",
        || partitions_of(&a),
        |p| *p == all_partitions(),
    );
    produce_spread(&topic, 2_000);
    poll_until(
        "10,000 messages handled",
        || record.distinct(),
        |n| *n == 10_000,
    );
    a.stop(PATIENCE).unwrap();

    assert!(
        !record.overlap.load(Ordering::SeqCst),
        "a partition was handled by two workers at once"
    );
    let ends: BTreeMap<i32, Option<i64>> = all_partitions()
        .into_iter()
        .map(|p| (p, Some(2_500)))
        .collect();
    assert_eq!(committed(&group, &topic), ends);
    log::info!(
        "split test: {} duplicates of 10,000 after two rebalances",
        record.duplicates()
    );
    runtime.shutdown(PATIENCE).unwrap();
}

/// After a rebalance, an ack carrying the previous generation is ignored: it moves
/// neither the member's latest offset nor the group's committed offset.
#[test]
fn an_ack_from_a_stale_generation_is_ignored() {
    init_logging();
    let topic = create_topic("group-stale");
    let group = unique("group-stale");
    produce_spread(&topic, 400);
    let record = Arc::new(Record::default());
    let runtime = Runtime::new();
    let config = |member| {
        test_config(
            &group,
            &topic,
            Recorder::factory(member, record.clone(), ack_all()),
        )
    };
    let a = GroupConsumer::start(&runtime, config("a")).unwrap();
    poll_until("400 messages handled", || record.distinct(), |n| *n == 400);
    let old = a.generation().unwrap();

    let b = GroupConsumer::start(&runtime, config("b")).unwrap();
    let (kept, _) = poll_until(
        "the partitions split between a and b",
        || (partitions_of(&a), partitions_of(&b)),
        |(pa, pb)| !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4,
    );
    let current = a.generation().unwrap();
    assert!(current > old);
    let acks = a.acknowledger();
    let partition = kept[0];
    let latest = acks.latest_offset(&topic, partition);
    assert_eq!(
        acks.ack(&topic, partition, old, 1_000_000),
        AckOutcome::StaleGeneration {
            current: Some(current)
        }
    );
    assert_eq!(acks.latest_offset(&topic, partition), latest);
    let lost = (0..PARTITIONS).find(|p| !kept.contains(p)).unwrap();
    assert_eq!(
        acks.ack(&topic, lost, old, 1_000_000),
        AckOutcome::StaleGeneration { current: None }
    );
    // The current generation is accepted.
    assert_eq!(
        acks.ack(&topic, partition, current, 0),
        AckOutcome::Behind { latest: 100 }
    );

    b.stop(PATIENCE).unwrap();
    a.stop(PATIENCE).unwrap();
    let ends: BTreeMap<i32, Option<i64>> = all_partitions()
        .into_iter()
        .map(|p| (p, Some(100)))
        .collect();
    assert_eq!(
        committed(&group, &topic),
        ends,
        "the stale ack was not committed"
    );
    runtime.shutdown(PATIENCE).unwrap();
}

/// `AckAt` commits up to the given offset; `NoAck` and `Continue` commit nothing while
/// delivery goes on.
#[test]
fn ack_at_commits_up_to_its_offset_and_no_ack_and_continue_commit_nothing() {
    init_logging();
    let topic = create_topic("group-acks");
    let group = unique("group-acks");
    produce(&topic, &all_partitions(), 100);
    let decide: Decide = Arc::new(|assignment, messages| match assignment.partition {
        0 => Ack::Ack,
        1 => Ack::NoAck,
        2 => Ack::AckAt(messages.last().unwrap().offset.min(49)),
        _ => Ack::Continue,
    });
    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let consumer = GroupConsumer::start(
        &runtime,
        test_config(
            &group,
            &topic,
            Recorder::factory("a", record.clone(), decide),
        ),
    )
    .unwrap();
    poll_until("400 messages handled", || record.distinct(), |n| *n == 400);
    // The handler records a batch just before the worker acknowledges it: wait for that.
    poll_until(
        "latest offsets 100, none, 50, none; all consumed to 100",
        || {
            let workers = consumer.workers();
            let latest: Vec<_> = workers.iter().map(|w| w.latest_offset).collect();
            let consumed: Vec<_> = workers.iter().map(|w| w.consumed_offset).collect();
            (latest, consumed)
        },
        |(latest, consumed)| {
            *latest == [Some(100), None, Some(50), None] && *consumed == [Some(100); 4]
        },
    );
    // The lag per partition: high watermark (100) minus what was committed.
    let status = poll_until(
        "lags 0, unknown, 50, unknown",
        || consumer.status(),
        |s| {
            s.partitions.iter().map(|w| w.lag).collect::<Vec<_>>()
                == [Some(0), None, Some(50), None]
        },
    );
    assert!(
        status
            .partitions
            .iter()
            .all(|w| w.high_watermark == Some(100))
    );
    assert_eq!(status.total_lag(), 50);
    consumer.stop(PATIENCE).unwrap();
    let committed = committed(&group, &topic);
    assert_eq!(
        committed.values().copied().collect::<Vec<_>>(),
        [Some(100), None, Some(50), None]
    );
    runtime.shutdown(PATIENCE).unwrap();
}

/// `AckAt` naming an offset outside the batch it answers — the next, never delivered
/// offset; `i64::MAX`; an offset of an earlier batch — is refused: a typed error on
/// the member's events, and nothing committed changes.
#[test]
fn an_ack_at_outside_the_batch_is_refused_and_commits_nothing() {
    init_logging();
    let topic = create_topic("group-ack-outside");
    let group = unique("group-ack-outside");
    produce(&topic, &all_partitions(), 100);
    let decide: Decide = Arc::new(|assignment, messages| {
        let (first, last) = (messages[0].offset, messages.last().unwrap().offset);
        match assignment.partition {
            0 => Ack::Ack,
            1 => Ack::AckAt(last + 1),
            2 => Ack::AckAt(i64::MAX),
            _ => Ack::AckAt(first - 1),
        }
    });
    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let consumer = GroupConsumer::start(
        &runtime,
        test_config(
            &group,
            &topic,
            Recorder::factory("a", record.clone(), decide),
        ),
    )
    .unwrap();
    let mut events = Events::of(&consumer);
    poll_until("400 messages handled", || record.distinct(), |n| *n == 400);
    let refused = |events: &[MemberEvent]| -> Vec<GroupError> {
        events
            .iter()
            .filter_map(|e| match e {
                MemberEvent::AckRefused { error } => Some(error.clone()),
                _ => None,
            })
            .collect()
    };
    let seen = events.until("refusals for partitions 1, 2 and 3", |e| {
        let partitions: std::collections::BTreeSet<i32> = refused(e)
            .iter()
            .filter_map(|r| match r {
                GroupError::AckOutsideBatch { partition, .. } => Some(*partition),
                _ => None,
            })
            .collect();
        partitions.len() == 3
    });
    for error in refused(seen) {
        match error {
            GroupError::AckOutsideBatch {
                topic: t,
                partition,
                offset,
                first,
                last,
            } => {
                assert_eq!(&*t, topic.as_str());
                assert!([1, 2, 3].contains(&partition));
                assert!(
                    !(first..=last).contains(&offset),
                    "{offset} in {first}..={last}"
                );
            }
            other => panic!("unexpected refusal {other:?}"),
        }
    }
    poll_until(
        "partition 0 committed, the others not",
        || {
            let workers = consumer.workers();
            workers.iter().map(|w| w.latest_offset).collect::<Vec<_>>()
        },
        |latest| *latest == [Some(100), None, None, None],
    );
    consumer.stop(PATIENCE).unwrap();
    assert_eq!(
        committed(&group, &topic)
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [Some(100), None, None, None]
    );
    runtime.shutdown(PATIENCE).unwrap();
}

/// With the cooperative-sticky assignor the rebalances are incremental: when a second
/// member joins, the partitions the first keeps stay in their generation (their workers
/// are not stopped), and every message is handled exactly once through both moves.
#[test]
fn cooperative_rebalances_keep_the_partitions_that_stay_and_lose_nothing() {
    init_logging();
    let topic = create_topic("group-coop");
    let group = unique("group-coop");
    produce_spread(&topic, 400);
    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let config = |member| {
        test_config(
            &group,
            &topic,
            Recorder::factory(member, record.clone(), ack_all()),
        )
        .assignment_strategy("cooperative-sticky")
    };
    let a = GroupConsumer::start(&runtime, config("a")).unwrap();
    poll_until("400 messages handled", || record.distinct(), |n| *n == 400);
    let before: BTreeMap<i32, (u64, Option<otp_threads::Pid>)> = a
        .workers()
        .iter()
        .map(|w| (w.partition, (w.generation.0, w.pid)))
        .collect();
    let b = GroupConsumer::start(&runtime, config("b")).unwrap();
    let (kept, _) = poll_until(
        "the partitions split between a and b",
        || (partitions_of(&a), partitions_of(&b)),
        |(pa, pb)| !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4,
    );
    for worker in a.workers() {
        assert_eq!(
            before[&worker.partition],
            (worker.generation.0, worker.pid),
            "a kept {} with its worker",
            worker.partition
        );
    }
    produce_spread(&topic, 400);
    poll_until("800 messages handled", || record.distinct(), |n| *n == 800);
    b.stop(PATIENCE).unwrap();
    poll_until(
        "a owns all partitions again",
        || partitions_of(&a),
        |p| *p == all_partitions(),
    );
    a.stop(PATIENCE).unwrap();
    assert_eq!(
        record.total(),
        800,
        "each message handled once ({kept:?} kept)"
    );
    let ends: BTreeMap<i32, Option<i64>> = all_partitions()
        .into_iter()
        .map(|p| (p, Some(200)))
        .collect();
    assert_eq!(committed(&group, &topic), ends);
    runtime.shutdown(PATIENCE).unwrap();
}
