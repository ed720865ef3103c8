//! A standby restart while 1,000 waits are pending, in both poll modes (issue 14):
//! every wait ends, released or failed by its own timeout; none hangs.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use otp_threads::Runtime;
use otp_threads_lsn::{LsnTracker, TrackerConfig, Wait};
use postgres_support::*;

const WAITS: usize = 1000;
const THREADS: usize = 16;

/// Waits of even threads have a short timeout of their own (most end during the
/// restart), those of odd threads the whole patience (all must be released).
fn timeout_of(thread: usize) -> Duration {
    if thread.is_multiple_of(2) {
        Duration::from_millis(50 * (thread as u64 + 1))
    } else {
        PATIENCE
    }
}

fn thousand_waits_survive_a_standby_restart(config: TrackerConfig) {
    let mut primary = primary_client();
    let runtime = Runtime::new();
    let tracker = Arc::new(LsnTracker::start(&runtime, config).unwrap());
    let warm = write_on_primary(&mut primary, &unique_note("warm"));
    assert_eq!(tracker.request_and_await(warm, Some(PATIENCE)), Wait::Ready);

    let mut standby = standby_client();
    let resume = pause_replay(&mut standby);
    let lsns: Vec<_> = (0..50)
        .map(|i| write_on_primary(&mut primary, &unique_note(&format!("restart-{i}"))))
        .collect();
    let (results, outcomes) = crossbeam_channel::unbounded();
    let per_thread = WAITS / THREADS + 1;
    let mut threads = Vec::new();
    for thread in 0..THREADS {
        let (tracker, lsns, results) = (tracker.clone(), lsns.clone(), results.clone());
        threads.push(std::thread::spawn(move || {
            let notifications: Vec<_> = (0..per_thread)
                .filter(|i| thread * per_thread + i < WAITS)
                .map(|i| tracker.request_notification(lsns[(thread + i) % lsns.len()]))
                .collect();
            for notification in &notifications {
                let _ = results.send((thread, notification.wait(timeout_of(thread))));
            }
        }));
    }
    drop(results);
    poll_until(
        "the waits to be registered",
        || tracker.waiting() + outcomes.len(),
        |seen| *seen >= WAITS,
    );
    // The restart drops the tracker's connection; replay resumes with the new server
    // process (a pause does not survive a restart).
    service("restart-standby");
    drop(resume);

    let (mut ready, mut timed_out) = (0, 0);
    for _ in 0..WAITS {
        match outcomes.recv_timeout(PATIENCE * 2) {
            Ok((_, Wait::Ready)) => ready += 1,
            Ok((thread, Wait::Timeout)) => {
                assert!(
                    thread % 2 == 0,
                    "a wait of thread {thread} ran out of patience"
                );
                timed_out += 1;
            }
            Ok((thread, other)) => panic!("thread {thread}: unexpected {other:?}"),
            Err(RecvTimeoutError::Timeout) => {
                panic!("a wait hangs: {} of {WAITS} ended", ready + timed_out)
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    assert_eq!(ready + timed_out, WAITS, "every wait ended");
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(
        ready >= WAITS / 2,
        "{ready} released, {timed_out} timed out"
    );
    assert_eq!(tracker.waiting(), 0, "ended waits leave nothing behind");
    log::info!("{ready} released, {timed_out} ended by their own timeout");
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_standby_restart_under_a_thousand_polled_waits_ends_each_of_them() {
    let _serial = serial();
    init_logging();
    ensure_table(&mut primary_client(), &mut standby_probe());
    let config = TrackerConfig::new(standby_conninfo())
        .frequency(Duration::from_millis(20))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300));
    thousand_waits_survive_a_standby_restart(config);
}

#[test]
fn a_standby_restart_under_a_thousand_long_polled_waits_ends_each_of_them() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    let mut probe = standby_probe();
    ensure_table(&mut primary, &mut probe);
    ensure_long_poll_function(&mut primary, &mut probe);
    let config = TrackerConfig::new(standby_conninfo())
        .long_poll(Duration::from_secs(2), Duration::from_millis(2))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300));
    thousand_waits_survive_a_standby_restart(config);
}
