//! Ports of zen_monitor's `test/proxy/proxy_test.exs` and `test/proxy/batcher_test.exs`
//! (discord/zen_monitor@fe63a64): a real BEAM node's Connector side
//! (tests/erlang/zen_proxy.erl, the library's wire terms) monitors Rust processes
//! through the Rust Proxy registered as `'Elixir.ZenMonitor.Proxy'`.

#[path = "support/beam.rs"]
mod beam;

use std::collections::HashMap;

use beam::{Scene, fast_options};
use otp_threads::dist::{Atom, FromTerm, Term, ToTerm};
use otp_threads::{ExitReason, Pid, Worker, WorkerRef};
use otp_threads_testkit::{Patience, poll_until};
use otp_threads_zen_monitor::{Target, exit_reason_to_term};

struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

fn idle(scene: &Scene, n: usize) -> Vec<WorkerRef<Idle>> {
    (0..n)
        .map(|_| scene.runtime.as_ref().unwrap().spawn_worker(Idle).unwrap())
        .collect()
}

/// Starts a BEAM-side connector subscribing `targets`; returns its pid.
fn beam_connector(scene: &Scene, targets: &[Term]) -> Pid {
    scene.ctl(&(
        Atom::from("connector"),
        scene.reporter.pid(),
        Atom::from(scene.node().name()),
        targets.to_vec(),
        scene.reporter.pid(),
    ));
    let (_, conn): (Atom, Pid) = FromTerm::from_term(scene.report("connector")).unwrap();
    scene.report("compatible");
    conn
}

/// Collects summary reports until `n` certificates have come.
fn certificates(scene: &Scene, n: usize) -> HashMap<Term, Term> {
    let mut seen = HashMap::new();
    while seen.len() < n {
        let (_, certs): (Atom, Vec<(Term, Term)>) =
            FromTerm::from_term(scene.report("summary")).unwrap();
        seen.extend(certs);
    }
    seen
}

#[test]
fn ping_answers_pong() {
    let scene = Scene::start(fast_options(), true);
    scene.ctl(&(
        Atom::from("ping"),
        scene.reporter.pid(),
        Atom::from(scene.node().name()),
    ));
    let (_, answer): (Atom, Atom) = FromTerm::from_term(scene.report("ping_result")).unwrap();
    assert_eq!(answer.as_str(), "pong");
}

#[test]
fn dead_summaries_carry_each_reason() {
    let scene = Scene::start(fast_options(), true);
    let workers = idle(&scene, 3);
    let targets: Vec<Term> = workers.iter().map(|w| w.pid().to_term()).collect();
    beam_connector(&scene, &targets);
    poll_until(
        "three real monitors",
        Patience::default(),
        || scene.zen().proxy_monitor_count(),
        |n| *n == 3,
    );
    let runtime = scene.runtime.as_ref().unwrap();
    runtime.exit(&workers[0].pid(), ExitReason::Kill);
    runtime.exit(&workers[1].pid(), ExitReason::shutdown_with("x"));
    runtime.exit(&workers[2].pid(), ExitReason::error("boom"));
    let seen = certificates(&scene, 3);
    assert_eq!(seen[&targets[0]].to_string(), "'killed'");
    assert_eq!(
        seen[&targets[1]],
        exit_reason_to_term(&ExitReason::shutdown_with("x"))
    );
    assert_eq!(
        seen[&targets[2]],
        exit_reason_to_term(&ExitReason::error("boom"))
    );
    assert_eq!(scene.zen().proxy_monitor_count(), 0);
}

#[test]
fn one_real_monitor_per_pid_however_many_subscribers() {
    let scene = Scene::start(fast_options(), true);
    let worker = idle(&scene, 1).remove(0);
    let target = worker.pid().to_term();
    let a = beam_connector(&scene, std::slice::from_ref(&target));
    let b = beam_connector(&scene, std::slice::from_ref(&target));
    let subscriptions = poll_until(
        "two subscribers",
        Patience::default(),
        || scene.zen().proxy_subscriptions(),
        |s| {
            s.get(&Target::Pid(worker.pid()))
                .is_some_and(|v| v.len() == 2)
        },
    );
    assert_eq!(subscriptions[&Target::Pid(worker.pid())], vec![a, b]);
    assert_eq!(scene.zen().proxy_monitor_count(), 1);
    scene
        .runtime
        .as_ref()
        .unwrap()
        .exit(&worker.pid(), ExitReason::error("boom"));
    // Each subscriber's Batcher sends its own summary.
    certificates(&scene, 1);
    certificates(&scene, 1);
}

#[test]
fn unsubscribe_is_isolated_to_its_subscriber_and_the_monitor_persists() {
    let scene = Scene::start(fast_options(), true);
    let worker = idle(&scene, 1).remove(0);
    let target = worker.pid().to_term();
    let a = beam_connector(&scene, std::slice::from_ref(&target));
    let b = beam_connector(&scene, std::slice::from_ref(&target));
    let key = Target::Pid(worker.pid());
    poll_until(
        "two subscribers",
        Patience::default(),
        || scene.zen().proxy_subscriptions(),
        |s| s.get(&key).is_some_and(|v| v.len() == 2),
    );
    scene
        .node()
        .send(
            scene.reporter.pid(),
            a,
            &(Atom::from("unsubscribe"), vec![target.clone()]),
        )
        .unwrap();
    let left = poll_until(
        "one subscriber left",
        Patience::default(),
        || scene.zen().proxy_subscriptions(),
        |s| s.get(&key).is_some_and(|v| v.len() == 1),
    );
    assert_eq!(left[&key], vec![b]);
    assert_eq!(
        scene.zen().proxy_monitor_count(),
        1,
        "the real monitor stays"
    );
}

#[test]
fn legacy_subscribe_cast_is_accepted() {
    let scene = Scene::start(fast_options(), true);
    let worker = idle(&scene, 1).remove(0);
    let conn = beam_connector(&scene, &[]);
    let target = worker.pid().to_term();
    scene
        .node()
        .send(
            scene.reporter.pid(),
            conn,
            &(Atom::from("legacy_subscribe"), vec![target.clone()]),
        )
        .unwrap();
    poll_until(
        "the legacy subscription",
        Patience::default(),
        || scene.zen().proxy_monitor_count(),
        |n| *n == 1,
    );
    scene
        .runtime
        .as_ref()
        .unwrap()
        .exit(&worker.pid(), ExitReason::error("boom"));
    assert!(certificates(&scene, 1).contains_key(&target));
}

#[test]
fn a_dead_target_gets_noproc() {
    let scene = Scene::start(fast_options(), true);
    let worker = idle(&scene, 1).remove(0);
    worker.stop(ExitReason::Normal, beam::WAIT).unwrap();
    let target = worker.pid().to_term();
    beam_connector(&scene, std::slice::from_ref(&target));
    assert_eq!(certificates(&scene, 1)[&target].to_string(), "'noproc'");
}

#[test]
fn long_binaries_in_reasons_are_truncated_on_the_wire() {
    let scene = Scene::start(fast_options(), true);
    let worker = idle(&scene, 1).remove(0);
    let target = worker.pid().to_term();
    beam_connector(&scene, std::slice::from_ref(&target));
    poll_until(
        "monitored",
        Patience::default(),
        || scene.zen().proxy_monitor_count(),
        |n| *n == 1,
    );
    scene
        .runtime
        .as_ref()
        .unwrap()
        .exit(&worker.pid(), ExitReason::error("x".repeat(2000)));
    let reason = certificates(&scene, 1).remove(&target).unwrap();
    let (tag, text): (Atom, Vec<u8>) = FromTerm::from_term(reason).unwrap();
    assert_eq!(tag.as_str(), "error");
    assert_eq!(text.len(), 1024);
    assert!(text.ends_with(b"..."));
}

#[test]
fn subscriber_down_stops_its_batcher_and_removes_its_subscriptions() {
    let scene = Scene::start(fast_options(), true);
    let workers = idle(&scene, 2);
    let targets: Vec<Term> = workers.iter().map(|w| w.pid().to_term()).collect();
    let conn = beam_connector(&scene, &targets);
    poll_until(
        "two monitors",
        Patience::default(),
        || scene.zen().proxy_monitor_count(),
        |n| *n == 2,
    );
    // A death starts the subscriber's Batcher, which monitors the subscriber.
    scene
        .runtime
        .as_ref()
        .unwrap()
        .exit(&workers[0].pid(), ExitReason::error("boom"));
    certificates(&scene, 1);
    assert_eq!(scene.zen().proxy_subscriptions().len(), 1);
    scene
        .node()
        .send(scene.reporter.pid(), conn, &Atom::from("die"))
        .unwrap();
    poll_until(
        "no subscriptions left",
        Patience::default(),
        || scene.zen().proxy_subscriptions().len(),
        |n| *n == 0,
    );
}
