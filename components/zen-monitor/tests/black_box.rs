//! Ports of zen_monitor's `test/black_box_test.exs` and `test/local/connector_test.exs`
//! (discord/zen_monitor@fe63a64): a Rust node monitors processes of a real BEAM node
//! whose Proxy and Batcher (tests/erlang/zen_proxy.erl) speak the library's wire terms.

#[path = "support/beam.rs"]
mod beam;

use beam::{Scene, fast_options, next_down};
use otp_threads::ExitReason;
use otp_threads::dist::{Atom, Term, ToTerm};
use otp_threads_testkit::{Patience, poll_until};
use otp_threads_zen_monitor::{CachedCompatibility, Compatibility, Target, ZenReason};

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

#[test]
fn compatible_remote_down_carries_the_original_reason() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victims = scene.victims(2);
    let first = scene.zen().monitor(victims[0], subscriber.clone()).unwrap();
    let second = scene.zen().monitor(victims[1], subscriber).unwrap();
    assert_eq!(
        scene.zen().connect(&scene.beam.name).unwrap(),
        Compatibility::Compatible
    );
    // Wait until the Proxy holds both monitors before killing.
    poll_until(
        "two real monitors at the Proxy",
        Patience::default(),
        || scene.proxy_stats().2,
        |n| *n == 2,
    );
    scene.kill(victims[0], atom("boom"));
    let down = next_down(&downs);
    assert_eq!(down.reference, first);
    assert_eq!(down.target, Target::Pid(victims[0]));
    assert_eq!(down.reason, ZenReason::exited(atom("boom")));
    assert_eq!(down.reason.to_term().to_string(), "{'zen_monitor','boom'}");
    let shutdown = (atom("shutdown"), atom("x")).to_term();
    scene.kill(victims[1], shutdown.clone());
    let down = next_down(&downs);
    assert_eq!(down.reference, second);
    assert_eq!(down.reason, ZenReason::exited(shutdown));
    assert_eq!(
        scene.zen().compatibility(&scene.beam.name),
        Compatibility::Compatible
    );
}

#[test]
fn only_the_first_monitor_per_target_is_subscribed_and_both_fire() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victim = scene.victims(1)[0];
    let a = scene.zen().monitor(victim, subscriber.clone()).unwrap();
    let b = scene.zen().monitor(victim, subscriber).unwrap();
    let stats = poll_until(
        "one subscribe at the Proxy",
        Patience::default(),
        || scene.proxy_stats(),
        |s| s.1 >= 1,
    );
    assert_eq!(
        (stats.1, stats.2),
        (1, 1),
        "one instruction, one real monitor"
    );
    scene.kill(victim, atom("killed"));
    let mut fired = vec![next_down(&downs).reference, next_down(&downs).reference];
    fired.sort();
    assert_eq!(fired, vec![a, b]);
    // No third DOWN, no second subscribe.
    assert!(downs.try_recv().is_err());
    assert_eq!(scene.proxy_stats().1, 1);
}

#[test]
fn monitoring_a_dead_pid_fires_noproc() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victim = scene.victims(1)[0];
    scene.ctl(&(
        Atom::from("kill_all"),
        scene.reporter.pid(),
        vec![victim],
        atom("normal"),
    ));
    scene.report("killed");
    scene.zen().monitor(victim, subscriber).unwrap();
    assert_eq!(next_down(&downs).reason, ZenReason::NoProc);
}

#[test]
fn a_name_target_is_subscribed_as_name_node_and_fires() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    scene.ctl(&(
        Atom::from("spawn_named"),
        scene.reporter.pid(),
        Atom::from("target_3"),
    ));
    let (_, pid): (Atom, otp_threads::Pid) =
        otp_threads::dist::FromTerm::from_term(scene.report("named")).unwrap();
    let target = Target::name("target_3", scene.beam.name.as_str());
    let reference = scene.zen().monitor(target.clone(), subscriber).unwrap();
    poll_until(
        "the name monitored",
        Patience::default(),
        || scene.proxy_stats().2,
        |n| *n == 1,
    );
    scene.kill(pid, atom("boom"));
    let down = next_down(&downs);
    assert_eq!(
        (down.reference, down.target, down.reason),
        (reference, target, ZenReason::exited(atom("boom")))
    );
}

#[test]
fn demonitor_without_and_with_flush_means_no_down() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victims = scene.victims(3);
    let a = scene.zen().monitor(victims[0], subscriber.clone()).unwrap();
    let b = scene.zen().monitor(victims[1], subscriber.clone()).unwrap();
    let c = scene.zen().monitor(victims[2], subscriber).unwrap();
    poll_until(
        "three monitors",
        Patience::default(),
        || scene.proxy_stats().2,
        |n| *n == 3,
    );
    assert!(scene.zen().demonitor(a, false));
    assert!(scene.zen().demonitor(b, true));
    assert!(
        !scene.zen().demonitor(a, true),
        "a second demonitor finds nothing"
    );
    // The last demonitor of each target unsubscribes: 3 subscribes + 2 unsubscribes.
    poll_until(
        "unsubscribes at the Proxy",
        Patience::default(),
        || scene.proxy_stats().1,
        |n| *n == 5,
    );
    scene.ctl(&(
        Atom::from("kill_all"),
        scene.reporter.pid(),
        victims.clone(),
        atom("boom"),
    ));
    scene.report("killed");
    let down = next_down(&downs);
    assert_eq!(down.reference, c, "only the monitor left fires");
    assert!(
        downs
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
}

#[test]
fn incompatible_remote_fires_nodedown_and_is_cached_with_a_penalty() {
    // A BEAM node without a Proxy: the ping fails (noproc), the node is incompatible.
    let scene = Scene::start(fast_options(), false);
    let (subscriber, downs, _process) = scene.channel();
    let victim = scene.victims(1)[0];
    let reference = scene.zen().monitor(victim, subscriber).unwrap();
    let down = next_down(&downs);
    assert_eq!(
        (down.reference, down.reason),
        (reference, ZenReason::NodeDown)
    );
    assert_eq!(
        scene.zen().cached_compatibility(&scene.beam.name),
        CachedCompatibility::Incompatible
    );
    assert_eq!(
        scene.zen().compatibility(&scene.beam.name),
        Compatibility::Incompatible
    );
}

#[test]
fn becoming_incompatible_mid_flight_fires_every_monitor_with_nodedown() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victims = scene.victims(3);
    let refs: Vec<_> = victims
        .iter()
        .map(|v| scene.zen().monitor(*v, subscriber.clone()).unwrap())
        .collect();
    poll_until(
        "three monitors",
        Patience::default(),
        || scene.proxy_stats().2,
        |n| *n == 3,
    );
    scene.ctl(&(Atom::from("stop_proxy"), scene.reporter.pid()));
    scene.report("proxy_stopped");
    let fired: Vec<_> = (0..3).map(|_| next_down(&downs)).collect();
    assert!(fired.iter().all(|d| d.reason == ZenReason::NodeDown));
    assert_eq!(
        fired.iter().map(|d| d.reference).collect::<Vec<_>>(),
        refs,
        "insertion order"
    );
    assert_eq!(
        scene.zen().compatibility(&scene.beam.name),
        Compatibility::Incompatible
    );
    // A monitor placed now fires nodedown at the next sweep.
    let late = scene.zen().monitor(victims[0], subscriber).unwrap();
    let down = next_down(&downs);
    assert_eq!((down.reference, down.reason), (late, ZenReason::NodeDown));
}

#[test]
fn nodedown_fans_out_to_all_monitors_in_insertion_order() {
    let mut scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victims = scene.victims(50);
    let refs: Vec<_> = victims
        .iter()
        .map(|v| scene.zen().monitor(*v, subscriber.clone()).unwrap())
        .collect();
    poll_until(
        "fifty monitors",
        Patience::default(),
        || scene.proxy_stats().2,
        |n| *n == 50,
    );
    scene.beam.kill();
    let fired: Vec<_> = (0..50).map(|_| next_down(&downs)).collect();
    assert!(fired.iter().all(|d| d.reason == ZenReason::NodeDown));
    assert_eq!(fired.iter().map(|d| d.reference).collect::<Vec<_>>(), refs);
    assert_eq!(
        scene.zen().cached_compatibility(&scene.beam.name),
        CachedCompatibility::Unavailable
    );
}

#[test]
fn a_crashed_connector_loses_no_monitor() {
    let scene = Scene::start(fast_options(), true);
    let (subscriber, downs, _process) = scene.channel();
    let victims = scene.victims(4);
    let refs: Vec<_> = victims
        .iter()
        .map(|v| scene.zen().monitor(*v, subscriber.clone()).unwrap())
        .collect();
    poll_until(
        "four monitors",
        Patience::default(),
        || scene.proxy_stats().2,
        |n| *n == 4,
    );
    let old = scene.zen().connector_pid(&scene.beam.name).unwrap();
    scene.runtime.as_ref().unwrap().exit(&old, ExitReason::Kill);
    let new = poll_until(
        "a new connector",
        Patience::default(),
        || scene.zen().connector_pid(&scene.beam.name),
        |pid| pid.is_some_and(|p| p != old),
    );
    assert!(new.is_some());
    // The new connector resubscribed all four targets (4 + 4 instructions).
    poll_until(
        "resubscribed",
        Patience::default(),
        || scene.proxy_stats().1,
        |n| *n == 8,
    );
    scene.ctl(&(
        Atom::from("kill_all"),
        scene.reporter.pid(),
        victims.clone(),
        atom("boom"),
    ));
    scene.report("killed");
    let mut fired: Vec<_> = (0..4).map(|_| next_down(&downs)).collect();
    assert!(
        fired
            .iter()
            .all(|d| d.reason == ZenReason::exited(atom("boom")))
    );
    fired.sort_by_key(|d| d.reference);
    assert_eq!(fired.iter().map(|d| d.reference).collect::<Vec<_>>(), refs);
    // Exactly once.
    assert!(
        downs
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
}

#[test]
fn periodic_sweep_chunks_subscriptions() {
    let mut options = fast_options();
    options.connector_chunk_size = 2;
    let scene = Scene::start(options, true);
    let (subscriber, _downs, _process) = scene.channel();
    let victims = scene.victims(5);
    for v in &victims {
        scene.zen().monitor(*v, subscriber.clone()).unwrap();
    }
    let (casts, instructions, _, max) = poll_until(
        "five instructions",
        Patience::default(),
        || scene.proxy_stats(),
        |s| s.1 == 5,
    );
    assert!(
        casts >= 3,
        "chunk 2 needs at least 3 casts for 5 instructions, got {casts}"
    );
    assert_eq!((instructions, max), (5, 2));
}
