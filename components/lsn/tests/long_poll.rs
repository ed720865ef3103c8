//! The long-poll mode against a real primary and hot standby (issue 14, after
//! fly_postgres's `watch_for_lsn_change`): one query in flight per tracker, released as
//! soon as replay passes the lowest awaited position, re-issued after its timeout, and
//! cancelled by a stop.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::sync::Arc;
use std::time::Duration;

use otp_threads::Runtime;
use otp_threads_lsn::{LsnTracker, TrackerConfig, Wait};
use postgres_support::*;

fn setup(application: &str, timeout: Duration) -> (Runtime, LsnTracker, postgres::Client) {
    init_logging();
    let mut primary = primary_client();
    let mut probe = standby_probe();
    ensure_table(&mut primary, &mut probe);
    ensure_long_poll_function(&mut primary, &mut probe);
    let conninfo = format!("{} application_name={application}", standby_conninfo());
    let config = TrackerConfig::new(conninfo).long_poll(timeout, Duration::from_millis(2));
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(&runtime, config).unwrap();
    (runtime, tracker, primary)
}

fn long_polls_in_flight(application: &str) -> usize {
    sessions_of(application)
        .iter()
        .filter(|(_, state, query)| {
            state.as_deref() == Some("active") && query.contains("otp_threads_lsn_await_replay")
        })
        .count()
}

#[test]
fn many_waits_share_one_long_poll_which_is_reissued_after_its_timeout_and_released_by_replay() {
    let _serial = serial();
    let application = format!("otp-lsn-long-poll-{}", std::process::id());
    let (runtime, tracker, mut primary) = setup(&application, Duration::from_millis(300));
    let note = unique_note("long-poll");
    let lsn = write_on_primary(&mut primary, &note);
    assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
    assert!(row_visible(&mut standby_client(), &note));

    let mut standby = standby_client();
    let _resume = pause_replay(&mut standby);
    let lsns: Vec<_> = (0..20)
        .map(|i| write_on_primary(&mut primary, &unique_note(&format!("held-{i}"))))
        .collect();
    let tracker = Arc::new(tracker);
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let (tracker, lsns) = (tracker.clone(), lsns.clone());
            std::thread::spawn(move || {
                let notifications: Vec<_> = (0..25)
                    .map(|i| tracker.request_notification(lsns[(thread * 25 + i) % lsns.len()]))
                    .collect();
                notifications
                    .iter()
                    .map(|notification| notification.wait(PATIENCE))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    poll_until(
        "200 waits to be pending",
        || tracker.waiting(),
        |waiting| *waiting == 200,
    );
    // One session, one long poll running in it, whatever the number of waits.
    poll_until(
        "the long poll to run on the standby",
        || long_polls_in_flight(&application),
        |in_flight| *in_flight == 1,
    );
    let queries = tracker.queries();
    // Nothing is replayed: each long poll ends by its timeout and the next one follows.
    poll_until(
        "the long poll to be re-issued after its timeout",
        || tracker.queries(),
        |now| *now >= queries + 2,
    );
    assert_eq!(sessions_of(&application).len(), 1, "one connection");
    assert!(long_polls_in_flight(&application) <= 1);
    assert_eq!(tracker.waiting(), 200);

    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    for thread in threads {
        assert!(
            thread
                .join()
                .unwrap()
                .iter()
                .all(|wait| *wait == Wait::Ready)
        );
    }
    assert_eq!(tracker.waiting(), 0);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn stopping_a_long_polling_tracker_cancels_its_query_and_ends_waits_as_stopped() {
    let _serial = serial();
    let application = format!("otp-lsn-long-poll-stop-{}", std::process::id());
    // A long poll far longer than the test's patience: only a cancel ends it in time.
    let (runtime, tracker, mut primary) = setup(&application, Duration::from_secs(600));
    let mut standby = standby_client();
    let _resume = pause_replay(&mut standby);
    let lsn = write_on_primary(&mut primary, &unique_note("stop"));
    let pending = tracker.request_notification(lsn);
    poll_until(
        "the long poll to run on the standby",
        || long_polls_in_flight(&application),
        |in_flight| *in_flight == 1,
    );
    tracker.stop(PATIENCE).unwrap();
    assert_eq!(pending.wait(PATIENCE), Wait::Stopped);
    assert_eq!(
        tracker.request_notification(lsn).wait(PATIENCE),
        Wait::Stopped
    );
    poll_until(
        "the cancelled long poll to end on the standby",
        || long_polls_in_flight(&application),
        |in_flight| *in_flight == 0,
    );
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_replica_database_without_the_long_poll_function_is_polled_at_the_interval_instead() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    ensure_table(&mut primary, &mut standby_probe());
    // Replay is cluster-wide, the function is per database: template1 never got it.
    let conninfo = format!("{} dbname=template1", standby_conninfo());
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(
        &runtime,
        TrackerConfig::new(conninfo)
            .long_poll(Duration::from_secs(2), Duration::from_millis(2))
            .frequency(Duration::from_millis(20)),
    )
    .unwrap();
    for i in 0..3 {
        let lsn = write_on_primary(&mut primary, &unique_note(&format!("fallback-{i}")));
        assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
    }
    runtime.shutdown(PATIENCE).unwrap();
}
