//! The LSN tracker against a real PostgreSQL 15 primary and hot standby (started by
//! `scripts/test.sh`). Scenarios after fly_postgres's `lsn_tracker_test.exs` and
//! `lsn_reader_test.exs`, run on a real replica instead of a fake repo.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use otp_threads::Runtime;
use otp_threads_lsn::{
    LsnError, LsnTracker, ReplicaProbe, ReplicaRole, Replicated, TrackerConfig, Wait,
    current_wal_insert_lsn, write_and_wait,
};
use postgres_support::*;

fn tracker_of(runtime: &Runtime, conninfo: String) -> LsnTracker {
    let config = TrackerConfig::new(conninfo)
        .frequency(Duration::from_millis(20))
        .timeout(PATIENCE)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(500));
    LsnTracker::start(runtime, config).expect("the tracker starts")
}

fn setup() -> (Runtime, LsnTracker, postgres::Client) {
    init_logging();
    let mut primary = primary_client();
    let mut probe = ReplicaProbe::connect_str(&standby_conninfo()).unwrap();
    ensure_table(&mut primary, &mut probe);
    let runtime = Runtime::new();
    let tracker = tracker_of(&runtime, standby_conninfo());
    (runtime, tracker, primary)
}

#[test]
fn a_write_awaited_on_the_tracker_is_readable_on_the_standby() {
    let _serial = serial();
    let (runtime, tracker, mut primary) = setup();
    let note = unique_note("ryw");
    let written = write_and_wait(&mut primary, &tracker, None, |transaction| {
        transaction.execute(
            "INSERT INTO otp_threads_lsn_probe (note) VALUES ($1)",
            &[&note],
        )
    })
    .unwrap();
    assert!(
        matches!(written.replicated, Replicated::Ready),
        "{written:?}"
    );
    assert_eq!(written.value, 1);
    assert!(
        row_visible(&mut standby_client(), &note),
        "read your write on the standby"
    );
    assert_eq!(tracker.role(), ReplicaRole::Standby);
    assert!(tracker.last_replay().unwrap() >= written.lsn.unwrap());
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn paused_replay_makes_a_waiter_time_out_and_resume_releases_new_ones() {
    let _serial = serial();
    let (runtime, tracker, mut primary) = setup();
    let mut standby = standby_client();
    let _resume = pause_replay(&mut standby);
    let lsn = write_on_primary(&mut primary, &unique_note("paused"));
    assert_eq!(
        tracker.request_and_await(lsn, Some(Duration::from_millis(300))),
        Wait::Timeout
    );
    // The timed-out wait removed itself.
    assert_eq!(tracker.waiting(), 0);
    let pending = tracker.request_notification(lsn);
    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    assert_eq!(pending.wait(PATIENCE), Wait::Ready);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn the_waiter_table_survives_a_restart_of_the_poller() {
    let _serial = serial();
    let (runtime, tracker, mut primary) = setup();
    let mut standby = standby_client();
    let _resume = pause_replay(&mut standby);
    let lsn = write_on_primary(&mut primary, &unique_note("restart"));
    let pending = tracker.request_notification(lsn);
    let children = tracker.supervisor().which_children().unwrap();
    let poller = children
        .iter()
        .find(|child| child.id == "poller")
        .unwrap()
        .state
        .pid()
        .unwrap();
    let down = runtime.monitor(&poller);
    runtime.exit(&poller, otp_threads::ExitReason::error("injected crash"));
    down.wait(PATIENCE).unwrap();
    assert_eq!(tracker.waiting(), 1, "the table keeps the wait");
    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    assert_eq!(pending.wait(PATIENCE), Wait::Ready);
    let restarted = tracker.supervisor().which_children().unwrap();
    let new_poller = restarted
        .iter()
        .find(|child| child.id == "poller")
        .unwrap()
        .state
        .pid()
        .unwrap();
    assert_ne!(new_poller, poller);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn the_tracker_recovers_when_the_standby_restarts_mid_wait() {
    let _serial = serial();
    let (runtime, tracker, mut primary) = setup();
    // Connected first, so the restart drops a live connection.
    let warm = write_on_primary(&mut primary, &unique_note("warm"));
    assert_eq!(tracker.request_and_await(warm, None), Wait::Ready);
    service("stop-standby");
    let lsn = write_on_primary(&mut primary, &unique_note("while-down"));
    let pending = tracker.request_notification(lsn);
    // Polls fail while it is down; the wait stays pending.
    poll_until(
        "the poller to notice the standby is down",
        || tracker.poller_status().unwrap().connected,
        |connected| !connected,
    );
    service("start");
    assert_eq!(pending.wait(PATIENCE), Wait::Ready);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_tracker_of_a_primary_makes_every_wait_ready_at_once() {
    let _serial = serial();
    init_logging();
    let runtime = Runtime::new();
    // The primary's answer is trusted for the whole test.
    let config = TrackerConfig::new(primary_conninfo())
        .frequency(Duration::from_millis(20))
        .role_check_interval(PATIENCE);
    let tracker = LsnTracker::start(&runtime, config).unwrap();
    let mut primary = primary_client();
    let lsn = current_wal_insert_lsn(&mut primary).unwrap();
    // The first wait wakes the poller, which finds a primary.
    assert_eq!(tracker.request_and_await(lsn, None), Wait::Ready);
    assert_eq!(tracker.role(), ReplicaRole::Primary);
    // From then on without any query.
    let queries = tracker.queries();
    assert_eq!(
        tracker.request_and_await(otp_threads_lsn::Lsn(u64::MAX - 1), None),
        Wait::Ready
    );
    assert_eq!(tracker.queries(), queries);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_thousand_concurrent_waiters_from_sixteen_threads_are_all_released_once() {
    let _serial = serial();
    let (runtime, tracker, mut primary) = setup();
    let tracker = Arc::new(tracker);
    let mut standby = standby_client();
    let _resume = pause_replay(&mut standby);
    let mut lsns = Vec::new();
    for i in 0..50 {
        lsns.push(write_on_primary(
            &mut primary,
            &unique_note(&format!("many-{i}")),
        ));
    }
    let barrier = Arc::new(Barrier::new(17));
    let threads: Vec<_> = (0..16)
        .map(|thread| {
            let (tracker, barrier, lsns) = (tracker.clone(), barrier.clone(), lsns.clone());
            std::thread::spawn(move || {
                let notifications: Vec<_> = (0..1000 / 16 + 1)
                    .filter(|i| thread * (1000 / 16 + 1) + i < 1000)
                    .map(|i| tracker.request_notification(lsns[(thread + i) % lsns.len()]))
                    .collect();
                barrier.wait();
                let mut released = 0;
                for notification in &notifications {
                    assert_eq!(notification.wait(PATIENCE), Wait::Ready);
                    // Exactly one release per wait.
                    assert!(notification.receiver().try_recv().is_err());
                    released += 1;
                }
                released
            })
        })
        .collect();
    barrier.wait();
    assert_eq!(tracker.waiting(), 1000);
    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    let released: usize = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum();
    assert_eq!(released, 1000);
    assert_eq!(tracker.waiting(), 0);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn the_poller_sleeps_without_queries_while_nobody_waits() {
    let _serial = serial();
    let (runtime, tracker, mut primary) = setup();
    // Nobody has waited yet: no query at all.
    let status = tracker.poller_status().unwrap();
    assert!(status.idle && status.pending_timers == 0, "{status:?}");
    assert_eq!(tracker.queries(), 0);
    let lsn = write_on_primary(&mut primary, &unique_note("idle"));
    assert_eq!(tracker.request_and_await(lsn, None), Wait::Ready);
    // After the last wait the poller goes back to sleep with no timer: no query can
    // come until a new wait wakes it.
    let status = poll_until(
        "the poller to go idle",
        || tracker.poller_status().unwrap(),
        |status| status.idle,
    );
    assert_eq!(status.pending_timers, 0);
    let queries = tracker.queries();
    assert_eq!(tracker.poller_status().unwrap().pending_timers, 0);
    assert_eq!(tracker.queries(), queries);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_write_whose_wal_position_cannot_be_read_does_not_wait_and_says_why() {
    let _serial = serial();
    let (runtime, tracker, _) = setup();
    // On a standby a read-only "write" commits, but pg_current_wal_insert_lsn() fails
    // ("recovery is in progress"): the same failure as fly_postgres issue #29.
    let mut standby = standby_client();
    let written = write_and_wait(&mut standby, &tracker, None, |transaction| {
        transaction
            .query_one("SELECT 41 + 1", &[])
            .map(|row| row.get::<_, i32>(0))
    })
    .unwrap();
    assert_eq!(written.value, 42);
    assert!(written.lsn.is_none());
    assert!(
        matches!(
            written.replicated,
            Replicated::NotAwaited(LsnError::WalLookupFailed(_))
        ),
        "{written:?}"
    );
    // A failing write is rolled back and not awaited.
    let mut primary = primary_client();
    let failed = write_and_wait(&mut primary, &tracker, None, |transaction| {
        transaction.execute("INSERT INTO no_such_table VALUES (1)", &[])
    });
    assert!(matches!(failed, Err(LsnError::WriteFailed(_))));
    assert_eq!(tracker.waiting(), 0);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn invalid_tracker_options_are_rejected_naming_the_option() {
    let runtime = Runtime::new();
    let bad = [
        (
            TrackerConfig::new("host=127.0.0.1").frequency(Duration::ZERO),
            "frequency",
        ),
        (
            TrackerConfig::new("host=127.0.0.1").timeout(Duration::ZERO),
            "timeout",
        ),
        (
            TrackerConfig::new("host=127.0.0.1")
                .reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1)),
            "reconnect_backoff",
        ),
        (
            TrackerConfig::new("host=127.0.0.1").role_check_interval(Duration::ZERO),
            "role_check_interval",
        ),
        (TrackerConfig::new("host=127.0.0.1").name(""), "name"),
        (
            TrackerConfig::new("host=127.0.0.1")
                .long_poll(Duration::ZERO, Duration::from_millis(1)),
            "long_poll_timeout",
        ),
        (
            TrackerConfig::new("host=127.0.0.1").long_poll(
                Duration::from_secs(30 * 24 * 3600),
                Duration::from_millis(1),
            ),
            "long_poll_timeout",
        ),
        (
            TrackerConfig::new("host=127.0.0.1")
                .long_poll(Duration::from_secs(2), Duration::from_micros(500)),
            "long_poll_nap",
        ),
        (
            TrackerConfig::new("host=127.0.0.1")
                .long_poll(Duration::from_secs(2), Duration::from_secs(2)),
            "long_poll_nap",
        ),
        (
            TrackerConfig::new("host=127.0.0.1").primary_by_region("", "lax"),
            "my_region",
        ),
        (
            TrackerConfig::new("host=127.0.0.1").primary_by_region("lax", ""),
            "primary_region",
        ),
    ];
    for (config, option) in bad {
        match LsnTracker::start(&runtime, config) {
            Err(LsnError::InvalidOption { option: named, .. }) => assert_eq!(named, option),
            other => panic!("expected InvalidOption({option}), got {:?}", other.err()),
        }
    }
    assert!(matches!(
        LsnTracker::start(
            &runtime,
            TrackerConfig::new("this is not = a valid conninfo '")
        ),
        Err(LsnError::InvalidConfig(_))
    ));
    let unique: HashSet<_> = runtime.processes().into_iter().collect();
    assert!(unique.is_empty(), "a rejected config starts nothing");
    runtime.shutdown(PATIENCE).unwrap();
}
