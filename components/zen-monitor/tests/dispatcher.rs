//! Ports of zen_monitor's `test/local/dispatcher_test.exs` (discord/zen_monitor@fe63a64):
//! the Dispatcher delivers at most `demand_amount` DOWNs per `demand_interval` and
//! skips those whose monitor was demonitored. Runs on a manual clock: each advance of
//! one `demand_interval` is one delivery round, so counts are exact.

#[path = "support/solo.rs"]
mod solo;

use std::time::Duration;

use otp_threads_testkit::{Patience, poll_until};
use otp_threads_zen_monitor::{Options, ZenReason};
use solo::{GHOST, Solo, ghost_pid};

fn options() -> Options {
    Options {
        // The sweep (50 ms) comes before the first demand round (100 ms).
        connector_sweep_interval: Duration::from_millis(50),
        demand_interval: Duration::from_millis(100),
        demand_amount: 10,
        ..Options::default()
    }
}

/// Monitors `n` ghost pids and lets the Connector fire them into the Dispatcher.
fn queue_downs(
    solo: &Solo,
    n: u32,
    subscriber: &otp_threads_zen_monitor::SharedSubscriber,
) -> Vec<otp_threads_zen_monitor::ZenRef> {
    let refs: Vec<_> = (1..=n)
        .map(|i| {
            solo.zen()
                .monitor(ghost_pid(i), subscriber.clone())
                .unwrap()
        })
        .collect();
    // Up to the Connector's first sweep, before any demand round.
    poll_until(
        "all queued",
        Patience::default(),
        || {
            solo.clock.advance(Duration::from_millis(1));
            solo.zen().pending_downs().unwrap()
        },
        |n| *n > 0 || solo.zen().dispatcher_stats().delivered() > 0,
    );
    refs
}

#[test]
fn at_most_demand_amount_downs_per_interval() {
    let solo = Solo::start(options());
    let (subscriber, downs, _process) = solo.channel();
    queue_downs(&solo, 35, &subscriber);
    let mut rounds = Vec::new();
    let mut received = 0;
    while received < 35 {
        solo.clock.advance(Duration::from_millis(100));
        let _ = solo.zen().pending_downs().unwrap(); // after the round
        let now = downs.try_iter().count();
        received += now;
        rounds.push(now);
    }
    assert!(rounds.iter().all(|n| *n <= 10), "rounds {rounds:?}");
    assert!(rounds.contains(&10));
    assert_eq!(received, 35);
    assert_eq!(solo.zen().dispatcher_stats().most_in_one_interval(), 10);
}

#[test]
fn demonitored_events_are_skipped_and_do_not_count() {
    let solo = Solo::start(options());
    let (subscriber, downs, _process) = solo.channel();
    let refs = queue_downs(&solo, 20, &subscriber);
    assert_eq!(solo.zen().pending_downs().unwrap(), 20);
    // Demonitor every other one while their DOWNs wait at the Dispatcher.
    for r in refs.iter().step_by(2) {
        assert!(solo.zen().demonitor(*r, true));
    }
    solo.clock.advance(Duration::from_millis(100));
    solo.zen().pending_downs().unwrap();
    let delivered: Vec<_> = downs.try_iter().collect();
    // Skipped ones do not use the round's demand: the 10 live ones all come at once.
    assert_eq!(delivered.len(), 10);
    assert!(delivered.iter().all(|d| d.reason == ZenReason::NodeDown));
    let expected: Vec<_> = refs.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(
        delivered.iter().map(|d| d.reference).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(solo.zen().dispatcher_stats().skipped(), 10);
    assert_eq!(
        solo.zen().cached_compatibility(GHOST),
        otp_threads_zen_monitor::CachedCompatibility::Unavailable
    );
}

/// A subscriber that takes batches (`BatchChannelSubscriber`) gets each round's DOWNs
/// for it as one message, in insertion order, still at most `demand_amount` per round.
#[test]
fn a_batch_subscriber_gets_each_rounds_downs_in_one_message_in_order() {
    let solo = Solo::start(options());
    let process: otp_threads::Process<()> = solo.runtime().process().unwrap();
    let (sender, batches) = crossbeam_channel::unbounded();
    let batched: otp_threads_zen_monitor::SharedSubscriber =
        std::sync::Arc::new(otp_threads_zen_monitor::BatchChannelSubscriber {
            pid: process.pid(),
            sender,
        });
    let refs = queue_downs(&solo, 15, &batched);
    solo.clock.advance(Duration::from_millis(100));
    solo.zen().pending_downs().unwrap();
    let first: Vec<_> = batches.try_iter().collect();
    assert_eq!(first.len(), 1, "one message for the round");
    assert_eq!(
        first[0].iter().map(|d| d.reference).collect::<Vec<_>>(),
        refs[..10].to_vec(),
        "demand_amount (10) of them, in insertion order"
    );
    solo.clock.advance(Duration::from_millis(100));
    solo.zen().pending_downs().unwrap();
    let second: Vec<_> = batches.try_iter().collect();
    assert_eq!(
        second
            .iter()
            .flatten()
            .map(|d| d.reference)
            .collect::<Vec<_>>(),
        refs[10..].to_vec()
    );
    assert!(
        second
            .iter()
            .flatten()
            .all(|d| d.reason == ZenReason::NodeDown)
    );
}
