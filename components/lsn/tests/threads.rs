//! No leaks (project rule): a tracker's threads are all joined when its runtime stops,
//! in both poll modes, after waits that were released, timed out and left pending.
//! Alone in its test binary, so that no other test's threads change the count.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::time::Duration;

use otp_threads::Runtime;
use otp_threads_lsn::{Lsn, LsnTracker, TrackerConfig, Wait};
use otp_threads_testkit::{os_thread_count, settles_at_thread_count};
use postgres_support::*;

#[test]
fn stopping_the_runtime_joins_every_thread_of_its_trackers() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    let mut probe = standby_probe();
    ensure_table(&mut primary, &mut probe);
    ensure_long_poll_function(&mut primary, &mut probe);
    let before = os_thread_count();
    let runtime = Runtime::new();
    let interval = LsnTracker::start(
        &runtime,
        TrackerConfig::new(standby_conninfo()).frequency(Duration::from_millis(20)),
    )
    .unwrap();
    let long_poll = LsnTracker::start(
        &runtime,
        TrackerConfig::new(standby_conninfo())
            .long_poll(Duration::from_millis(500), Duration::from_millis(2)),
    )
    .unwrap();
    let lsn = write_on_primary(&mut primary, &unique_note("threads"));
    for tracker in [&interval, &long_poll] {
        assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
        // Never replayed: times out, then one stays pending through the shutdown.
        assert_eq!(
            tracker.request_and_await(Lsn::MAX, Some(Duration::from_millis(50))),
            Wait::Timeout
        );
    }
    let pending = [
        interval.request_notification(Lsn::MAX),
        long_poll.request_notification(Lsn::MAX),
    ];
    runtime.shutdown(PATIENCE).unwrap();
    for notification in &pending {
        assert_eq!(notification.wait(PATIENCE), Wait::Stopped);
    }
    settles_at_thread_count(before, "every thread joined");
}
