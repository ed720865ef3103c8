//! Port of zen_monitor's `test/stress_test.exs` (discord/zen_monitor@fe63a64), at full
//! size: 100,000 processes on a real BEAM node monitored from Rust, 10,000 of them
//! killed. Subscriptions leave in chunks of at most `connector_chunk_size`, every
//! killed process fires exactly once with its reason, none of the others fires, and no
//! process of the component dies.

#[path = "support/beam.rs"]
mod beam;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use beam::{Scene, fast_options};
use otp_threads::dist::{Atom, ToTerm};
use otp_threads_testkit::{Patience, poll_until};
use otp_threads_zen_monitor::{Target, ZenReason};

const MONITORED: usize = 100_000;
const KILLED: usize = 10_000;

#[test]
fn hundred_thousand_remote_pids_ten_thousand_killed() {
    let options = fast_options();
    let chunk = options.connector_chunk_size as u64;
    let scene = Scene::start(options, true);
    let (subscriber, downs, _process) = scene.channel();
    let victims = scene.victims(MONITORED);
    let started = Instant::now();
    let refs: Vec<_> = victims
        .iter()
        .map(|v| scene.zen().monitor(*v, subscriber.clone()).unwrap())
        .collect();
    let monitored_in = started.elapsed();
    let connector = scene.zen().connector_pid(&scene.beam.name).unwrap();
    let patience = Patience::new(Duration::from_secs(60), Duration::from_millis(20));
    let (casts, instructions, real, largest) = poll_until(
        "every subscription at the Proxy",
        patience,
        || scene.proxy_stats(),
        |s| s.2 == MONITORED as u64,
    );
    let subscribed_in = started.elapsed();
    assert_eq!(instructions, MONITORED as u64, "one subscribe per target");
    assert_eq!(real, MONITORED as u64);
    assert!(
        largest <= chunk,
        "a cast of {largest} instructions exceeds the chunk {chunk}"
    );
    assert!(casts >= MONITORED as u64 / chunk, "{casts} casts");

    let killed: Vec<_> = victims
        .iter()
        .step_by(MONITORED / KILLED)
        .copied()
        .collect();
    assert_eq!(killed.len(), KILLED);
    let kill_started = Instant::now();
    scene.ctl(&(
        Atom::from("kill_all"),
        scene.reporter.pid(),
        killed.clone(),
        Atom::from("boom"),
    ));
    scene.report("killed");
    let reference_of: HashMap<_, _> = victims.iter().copied().zip(refs.iter().copied()).collect();
    let mut fired = HashSet::new();
    let boom = ZenReason::exited(Atom::from("boom").to_term());
    while fired.len() < KILLED {
        let down = downs
            .recv_timeout(Duration::from_secs(60))
            .expect("all DOWNs within a minute");
        assert_eq!(down.reason, boom);
        assert!(fired.insert(down.reference), "a DOWN came twice");
        let Target::Pid(pid) = down.target else {
            panic!("a pid target")
        };
        assert_eq!(reference_of[&pid], down.reference);
    }
    let delivered_in = kill_started.elapsed();
    assert!(
        downs.recv_timeout(Duration::from_millis(200)).is_err(),
        "no other monitor fired"
    );
    assert_eq!(scene.zen().monitor_count(), MONITORED - KILLED);
    assert_eq!(
        scene.zen().connector_pid(&scene.beam.name),
        Some(connector),
        "the connector survived"
    );
    assert!(
        scene
            .runtime
            .as_ref()
            .unwrap()
            .is_alive(&scene.zen().proxy_pid())
    );
    eprintln!(
        "stress: {MONITORED} monitors placed in {monitored_in:?}, all subscribed after {subscribed_in:?} \
         in {casts} casts (largest {largest}); {KILLED} DOWNs delivered {delivered_in:?} after the kill"
    );
}
