//! A member that went through failures, restarts and a killed, hung worker leaves no
//! thread behind once it stopped, the stuck handler was released and the runtime shut
//! down (the project's no-leak rule). Alone in its test binary, so that the process's
//! thread count is this test's.

#[path = "support/kafka.rs"]
mod kafka;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka::*;
use otp_threads::Runtime;
use otp_threads_kafka::{Ack, GroupConsumer};
use otp_threads_testkit::os_thread_count;

#[test]
fn a_stopped_member_leaves_no_thread_behind() {
    init_logging();
    let topic = create_topic("no-leaks");
    produce(&topic, &[0, 1, 2, 3], 50);
    let before = os_thread_count();

    let runtime = Runtime::new();
    let record = Arc::new(Record::default());
    let (release, stuck) = crossbeam_channel::bounded::<()>(0);
    let hung = Arc::new(AtomicBool::new(false));
    let decide: Decide = {
        let hung = hung.clone();
        Arc::new(move |assignment, messages| match assignment.partition {
            // Partition 0's first handler never returns (until released).
            0 if !hung.swap(true, Ordering::SeqCst) => {
                let _ = stuck.recv();
                Ack::Ack
            }
            // Partition 2 fails on offset 25, for ever.
            2 if messages.iter().any(|m| m.offset == 25) => panic!("poison 2/25"),
            _ => Ack::Ack,
        })
    };
    let config = test_config(
        &unique("no-leaks"),
        &topic,
        Recorder::factory("a", record.clone(), decide),
    )
    .max_batch(5)
    .worker_shutdown_timeout(Duration::from_secs(1));
    let consumer = GroupConsumer::start(&runtime, config).unwrap();
    poll_until(
        "partitions 1 and 3 handled, 2 restarted a few times, 0 hung",
        || {
            let restarts = consumer.workers().get(2).map_or(0, |w| w.restarts);
            (record.distinct(), restarts, hung.load(Ordering::SeqCst))
        },
        |(n, restarts, hung)| *n >= 100 + 25 && *restarts >= 3 && *hung,
    );
    // Leaving kills the hung worker at the shutdown timeout; its thread stays in the
    // handler until released.
    consumer.stop(PATIENCE).unwrap();
    assert!(!runtime.zombies().is_empty());
    drop(release);
    poll_until(
        "the released thread left the handler",
        || runtime.zombies(),
        |z| z.is_empty(),
    );
    runtime.shutdown(PATIENCE).unwrap();
    poll_until("the thread count back where it was", os_thread_count, |n| {
        *n == before
    });
}
