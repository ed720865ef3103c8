//! Elsa's lifecycle hooks against a real Kafka-API broker (after
//! `unit/elsa/group/lifecycle_hooks_test.exs` and `consumer_test.exs`'s forced
//! rebalance): `assignment_received` per partition before its worker starts,
//! `assignments_complete` once per assignment, `assignments_revoked` after the
//! workers stopped and before the commit — where a user flushes what its handlers
//! buffered.

#[path = "support/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kafka::*;
use otp_threads::{ExitReason, Runtime};
use otp_threads_kafka::{
    Ack, AckOutcome, Acknowledger, AssignedPartition, Assignment, GroupConsumer, GroupError,
    Handler, Lifecycle, MemberEvent, Message, RefusalError,
};

/// What happened, in order, across hooks and handlers.
#[derive(Default)]
struct Journal {
    steps: Mutex<Vec<String>>,
    /// The last offset each partition's handler buffered (acknowledged nothing).
    buffered: Mutex<BTreeMap<i32, i64>>,
    /// How many times each (partition, offset) was handled.
    handled: Mutex<BTreeMap<(i32, i64), usize>>,
}

impl Journal {
    fn log(&self, step: String) {
        self.steps.lock().unwrap().push(step);
    }

    fn steps(&self) -> Vec<String> {
        self.steps.lock().unwrap().clone()
    }
}

/// Buffers instead of acknowledging; the revoked hook flushes.
struct Buffering {
    journal: Arc<Journal>,
    partition: i32,
}

impl Handler for Buffering {
    fn handle_messages(&mut self, messages: &[Message]) -> Ack {
        let mut handled = self.journal.handled.lock().unwrap();
        for m in messages {
            *handled.entry((m.partition, m.offset)).or_default() += 1;
        }
        let last = messages.last().unwrap().offset;
        self.journal
            .buffered
            .lock()
            .unwrap()
            .insert(self.partition, last);
        Ack::NoAck
    }

    fn terminate(&mut self, _: &ExitReason) {
        self.journal.log(format!("terminate {}", self.partition));
    }
}

struct Hooks {
    member: &'static str,
    journal: Arc<Journal>,
    refuse: Option<i32>,
}

impl Lifecycle for Hooks {
    fn assignment_received(&self, p: &AssignedPartition) -> Result<(), RefusalError> {
        if self.refuse == Some(p.partition) {
            return Err(format!("partition {} is not for {}", p.partition, self.member).into());
        }
        self.journal.log(format!(
            "{} received {} {}",
            self.member, p.partition, p.generation.0
        ));
        Ok(())
    }

    fn assignments_complete(
        &self,
        generation: otp_threads_kafka::Generation,
        partitions: &[AssignedPartition],
        refused: Option<&GroupError>,
    ) {
        self.journal.log(format!(
            "{} complete {} {:?} refused={}",
            self.member,
            generation.0,
            partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
            refused.is_some()
        ));
    }

    fn assignments_revoked(&self, partitions: &[AssignedPartition], acks: &Acknowledger) {
        self.journal.log(format!(
            "{} revoked {:?}",
            self.member,
            partitions.iter().map(|p| p.partition).collect::<Vec<_>>()
        ));
        // The flush: acknowledge what the handlers buffered; the commit that follows
        // takes it.
        let buffered = self.journal.buffered.lock().unwrap().clone();
        for p in partitions {
            if let Some(last) = buffered.get(&p.partition) {
                // Behind: flushed at an earlier revocation already.
                let outcome = acks.ack(&p.topic, p.partition, p.generation, *last);
                assert!(
                    matches!(outcome, AckOutcome::Accepted | AckOutcome::Behind { .. }),
                    "{outcome:?}"
                );
            }
        }
    }
}

fn config(
    group: &str,
    topic: &str,
    member: &'static str,
    journal: &Arc<Journal>,
    refuse: Option<i32>,
) -> otp_threads_kafka::GroupConfig {
    let factory = {
        let journal = journal.clone();
        move |a: &Assignment| Buffering {
            journal: journal.clone(),
            partition: a.partition,
        }
    };
    test_config(group, topic, factory).lifecycle(Hooks {
        member,
        journal: journal.clone(),
        refuse,
    })
}

/// Member a gets every partition (received ×4, then complete); a second member joins:
/// a's workers stop, its revoked hook flushes the buffered offsets, the commit takes
/// them, and only then does b get partitions — so b reads nothing again.
#[test]
fn lifecycle_hooks_run_in_order_on_assignment_and_revocation() {
    init_logging();
    let topic = create_topic("hooks");
    let group = unique("hooks");
    produce(&topic, &[0, 1, 2, 3], 100);
    let runtime = Runtime::new();
    let journal = Arc::new(Journal::default());
    let a = GroupConsumer::start(&runtime, config(&group, &topic, "a", &journal, None)).unwrap();
    let mut a_events = Events::of(&a);
    poll_until(
        "400 messages handled",
        || journal.handled.lock().unwrap().len(),
        |n| *n == 400,
    );
    poll_until(
        "every partition's last offset buffered",
        || journal.buffered.lock().unwrap().clone(),
        |b| b.len() == 4 && b.values().all(|o| *o == 99),
    );
    let steps = journal.steps();
    assert_eq!(
        steps,
        [
            "a received 0 0",
            "a received 1 0",
            "a received 2 0",
            "a received 3 0",
            "a complete 0 [0, 1, 2, 3] refused=false"
        ]
    );
    assert!(
        committed(&group, &topic).values().all(Option::is_none),
        "nothing acknowledged yet"
    );

    let b = GroupConsumer::start(&runtime, config(&group, &topic, "b", &journal, None)).unwrap();
    poll_until(
        "b has partitions",
        || b.workers().len(),
        |n| *n > 0 && *n < 4,
    );
    let steps = poll_until(
        "a's next assignment completed",
        || journal.steps(),
        |steps| steps.iter().any(|s| s.starts_with("a complete 1")),
    );
    let revoked = steps
        .iter()
        .position(|s| s == "a revoked [0, 1, 2, 3]")
        .expect("a's partitions were revoked");
    let terminated: Vec<&String> = steps[5..revoked].iter().collect();
    assert_eq!(
        terminated.len(),
        4,
        "every worker stopped before the hook: {steps:?}"
    );
    assert!(terminated.iter().all(|s| s.starts_with("terminate ")));
    let later = &steps[revoked + 1..];
    let b_received = later.iter().position(|s| s.starts_with("b received"));
    assert!(b_received.is_some(), "{steps:?}");
    // The flush was committed before b took over: b read nothing again.
    let flushed: BTreeMap<i32, Option<i64>> = (0..PARTITIONS).map(|p| (p, Some(100))).collect();
    assert_eq!(committed(&group, &topic), flushed);
    assert!(journal.handled.lock().unwrap().values().all(|n| *n == 1));

    // The same steps as events, in order.
    let seen = a_events.until("a's second assignment completed", |e| {
        e.iter()
            .filter(|e| matches!(e, MemberEvent::AssignmentsComplete { .. }))
            .count()
            == 2
    });
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e {
            MemberEvent::AssignmentReceived { .. } => "received",
            MemberEvent::AssignmentsComplete { .. } => "complete",
            MemberEvent::AssignmentsRevoked { .. } => "revoked",
            _ => "other",
        })
        .collect();
    let second = kinds.len() - 1;
    assert_eq!(
        kinds[..6],
        [
            "received", "received", "received", "received", "complete", "revoked"
        ]
    );
    assert!(kinds[6..second].iter().all(|k| *k == "received"));
    assert_eq!(kinds[second], "complete");
    b.stop(PATIENCE).unwrap();
    a.stop(PATIENCE).unwrap();
    runtime.shutdown(PATIENCE).unwrap();
}

/// `assignment_received` refusing a partition: no worker of that assignment starts,
/// `assignments_complete` is told, and the member stops with the hook's error (as
/// Elsa's manager stops on `{:error, reason}`).
#[test]
fn a_refused_assignment_starts_no_worker_and_stops_the_member() {
    init_logging();
    let topic = create_topic("refused");
    let group = unique("refused");
    produce(&topic, &[0, 1, 2, 3], 10);
    let runtime = Runtime::new();
    let journal = Arc::new(Journal::default());
    let a = GroupConsumer::start(&runtime, config(&group, &topic, "a", &journal, Some(2))).unwrap();
    match a.wait(PATIENCE).expect("the member stops") {
        Err(GroupError::AssignmentRefused {
            partition, source, ..
        }) => {
            assert_eq!(partition, 2);
            assert!(source.to_string().contains("not for a"), "{source}");
        }
        other => panic!("expected AssignmentRefused, got {other:?}"),
    }
    let steps = journal.steps();
    assert_eq!(
        steps.last().unwrap(),
        "a complete 0 [0, 1, 2, 3] refused=true",
        "{steps:?}"
    );
    assert!(
        !steps.iter().any(|s| s.starts_with("terminate")),
        "no worker ran: {steps:?}"
    );
    assert!(journal.handled.lock().unwrap().is_empty());
    assert!(committed(&group, &topic).values().all(Option::is_none));
    runtime.shutdown(PATIENCE).unwrap();
}
