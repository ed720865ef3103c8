//! Monitors, after the Erlang reference manual, "Processes": section "Monitors", and
//! the ordering rules of "Delivery of Signals". Each test names the rule it checks.

#[path = "support/common.rs"]
mod common;

use common::*;
use otp_threads::{ExitReason, Runtime};

#[test]
fn monitoring_a_dead_pid_gives_an_immediate_down_with_noproc() {
    let rt = Runtime::new();
    let (dead, _) = probe(&rt);
    let dead_pid = dead.pid();
    dead.stop(ExitReason::Normal, WAIT).unwrap();
    // From a plain thread: the DOWN is there before monitor returns.
    let monitor = rt.monitor(&dead_pid);
    let down = monitor.receiver().try_recv().expect("an immediate DOWN");
    assert_eq!(down.reason, ExitReason::NoProc);
    assert_eq!(down.pid, dead_pid);
    // From a worker.
    let (watcher, events) = probe(&rt);
    let reference = match ask(&watcher, Command::Monitor(dead_pid)) {
        Reply::Monitor(reference) => reference,
        other => panic!("{other:?}"),
    };
    match next(&events) {
        Event::Down(down) => {
            assert_eq!(down.reference, reference);
            assert_eq!(down.reason, ExitReason::NoProc);
        }
        other => panic!("expected a DOWN, got {other:?}"),
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn each_monitor_gives_its_own_down_with_its_own_reference() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    let (watcher, events) = probe(&rt);
    let first = ask(&watcher, Command::Monitor(target.pid()));
    let second = ask(&watcher, Command::Monitor(target.pid()));
    let (Reply::Monitor(first), Reply::Monitor(second)) = (first, second) else {
        panic!("monitor failed");
    };
    assert_ne!(first, second);
    rt.exit(&target.pid(), ExitReason::error("x"));
    let mut references = Vec::new();
    for _ in 0..2 {
        match next(&events) {
            Event::Down(down) => references.push(down.reference),
            other => panic!("expected a DOWN, got {other:?}"),
        }
    }
    references.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(references, expected);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn monitoring_a_registered_name_reports_the_name_in_the_down() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    rt.register("target", &target.pid()).unwrap();
    let (watcher, events) = probe(&rt);
    ask(&watcher, Command::MonitorName("target".into()));
    let from_thread = rt.monitor_name("target");
    rt.exit(&target.pid(), ExitReason::error("x"));
    match next(&events) {
        Event::Down(down) => {
            assert_eq!(down.name.as_deref(), Some("target"));
            assert_eq!(down.pid, target.pid());
        }
        other => panic!("expected a DOWN, got {other:?}"),
    }
    assert_eq!(
        from_thread.wait(WAIT).unwrap().name.as_deref(),
        Some("target")
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn monitoring_an_unregistered_name_gives_an_immediate_noproc_down_naming_it() {
    let rt = Runtime::new();
    let monitor = rt.monitor_name("nobody");
    let down = monitor.receiver().try_recv().expect("an immediate DOWN");
    assert_eq!(down.reason, ExitReason::NoProc);
    assert_eq!(down.name.as_deref(), Some("nobody"));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn demonitor_stops_a_down_not_yet_sent() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    let (watcher, events) = probe(&rt);
    let Reply::Monitor(reference) = ask(&watcher, Command::Monitor(target.pid())) else {
        panic!("monitor failed");
    };
    assert!(matches!(
        ask(&watcher, Command::Demonitor(reference, false)),
        Reply::Bool(true)
    ));
    rt.exit(&target.pid(), ExitReason::error("x"));
    // A message sent after the death is the next thing the watcher sees.
    watcher.send("marker".into());
    assert_eq!(next(&events), Event::Message("marker".into()));
    // Plain-thread monitors.
    let (target, _) = probe(&rt);
    let (sender, receiver) = crossbeam_channel::unbounded();
    let removed = rt.monitor_to(&target.pid(), &sender);
    let kept = rt.monitor_to(&target.pid(), &sender);
    assert!(rt.demonitor(&removed));
    rt.kill(&target.pid());
    // kill() fired every monitor before it returned.
    assert_eq!(receiver.try_recv().unwrap().reference, kept);
    assert!(receiver.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn demonitor_with_flush_removes_a_down_already_delivered() {
    let rt = Runtime::new();
    for flush in [true, false] {
        let (target, _) = probe(&rt);
        let (watcher, events) = probe(&rt);
        // Monitor, kill and demonitor in one callback: the DOWN is already delivered.
        let reply = ask(&watcher, Command::MonitorKillDemonitor(target.pid(), flush));
        assert!(matches!(reply, Reply::Bool(false)), "the monitor had fired");
        watcher.send("marker".into());
        if flush {
            assert_eq!(next(&events), Event::Message("marker".into()));
        } else {
            assert!(
                matches!(next(&events), Event::Down(down) if down.reason == ExitReason::Killed)
            );
            assert_eq!(next(&events), Event::Message("marker".into()));
        }
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_message_sent_before_a_worker_exits_arrives_before_the_down_about_it() {
    let rt = Runtime::new();
    let (receiver, events) = probe(&rt);
    for round in 0..50 {
        let (sender, _) = probe(&rt);
        ask(&receiver, Command::Monitor(sender.pid()));
        sender.cast(Command::Send(receiver.pid(), format!("last words {round}")));
        sender.cast(Command::Stop(ExitReason::error("done")));
        assert_eq!(next(&events), Event::Message(format!("last words {round}")));
        assert!(matches!(next(&events), Event::Down(down) if down.pid == sender.pid()));
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn signals_between_one_pair_of_processes_keep_their_order() {
    let rt = Runtime::new();
    let (receiver, events) = trapping_probe(&rt);
    let (sender, _) = probe(&rt);
    ask(&receiver, Command::Link(sender.pid()));
    ask(&receiver, Command::Monitor(sender.pid()));
    for i in 0..1000 {
        sender.cast(Command::Send(receiver.pid(), i.to_string()));
    }
    sender.cast(Command::Stop(ExitReason::error("done")));
    for i in 0..1000 {
        assert_eq!(next(&events), Event::Message(i.to_string()));
    }
    // The link's EXIT and the monitor's DOWN both come after every message.
    let mut last_two = [next(&events), next(&events)];
    last_two.sort_by_key(|event| matches!(event, Event::Down(_)));
    assert!(matches!(&last_two[0], Event::Exit(exit) if exit.from == sender.pid()));
    assert!(matches!(&last_two[1], Event::Down(down) if down.pid == sender.pid()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_plain_thread_receives_down_on_a_crossbeam_receiver() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    let monitor = rt.monitor(&target.pid());
    let handle = rt.handle();
    let pid = target.pid();
    std::thread::spawn(move || handle.exit(&pid, ExitReason::error("from another thread")))
        .join()
        .unwrap();
    crossbeam_channel::select! {
        recv(monitor.receiver()) -> down => {
            let down = down.unwrap();
            assert_eq!(down.reference, monitor.reference());
            assert_eq!(down.reason, ExitReason::error("from another thread"));
        }
        default(WAIT) => panic!("no DOWN"),
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_full_watcher_channel_never_blocks_a_dying_process() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let (b, _) = probe(&rt);
    let (sender, receiver) = crossbeam_channel::bounded(1);
    rt.monitor_to(&a.pid(), &sender);
    rt.monitor_to(&b.pid(), &sender);
    rt.kill(&a.pid());
    // The channel is full: b's DOWN is dropped (and logged), and kill returns.
    rt.kill(&b.pid());
    assert_eq!(receiver.try_recv().unwrap().pid, a.pid());
    assert!(!b.is_alive());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn monitors_held_by_a_dead_worker_fire_nothing() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    let (watcher, events) = probe(&rt);
    ask(&watcher, Command::Monitor(target.pid()));
    let watcher_down = rt.monitor(&watcher.pid());
    rt.kill(&watcher.pid());
    watcher_down.wait(WAIT).unwrap();
    rt.kill(&target.pid());
    assert!(events.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

/// `erlang:demonitor/2` with `[flush]` removes `{'DOWN', Ref, …}` from the mailbox
/// whatever happened before: also after a `demonitor(Ref)` without flush that left it.
#[test]
fn demonitor_with_flush_after_a_demonitor_without_flush_still_removes_the_down() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    let (watcher, events) = probe(&rt);
    let reply = ask(
        &watcher,
        Command::MonitorKillThenDemonitor(target.pid(), vec![(false, false), (true, false)]),
    );
    assert!(matches!(reply, Reply::Bools(results) if results == [true, true]));
    watcher.send("marker".into());
    assert_eq!(next(&events), Event::Message("marker".into()));
    rt.shutdown(WAIT).unwrap();
}

/// `erlang:demonitor/1,2` return `true` whatever the monitor's state; only the `info`
/// option answers whether it was still active (and, with `flush`, `false` when a DOWN
/// had to be flushed). For workers and plain threads.
#[test]
fn plain_demonitor_returns_true_and_the_info_form_says_whether_the_monitor_was_active() {
    let rt = Runtime::new();
    let (target, _) = probe(&rt);
    let (watcher, events) = probe(&rt);
    // A fired monitor: plain forms say true, info forms say what they found.
    let reply = ask(
        &watcher,
        Command::MonitorKillThenDemonitor(
            target.pid(),
            vec![(false, false), (false, true), (true, true), (true, true)],
        ),
    );
    // plain; info: the DOWN was delivered; flush+info: had to flush; again: nothing left.
    assert!(
        matches!(&reply, Reply::Bools(results) if results == &[true, false, false, true]),
        "{reply:?}"
    );
    watcher.send("marker".into());
    assert_eq!(next(&events), Event::Message("marker".into()));
    // An active monitor: the info form says true.
    let (alive, _) = probe(&rt);
    let Reply::Monitor(reference) = ask(&watcher, Command::Monitor(alive.pid())) else {
        panic!("monitor failed");
    };
    assert!(matches!(
        ask(&watcher, Command::DemonitorInfo(reference, false)),
        Reply::Bool(true)
    ));
    // Plain threads.
    let (sender, receiver) = crossbeam_channel::unbounded();
    let active = rt.monitor_to(&alive.pid(), &sender);
    assert!(rt.demonitor_info(&active));
    let fired = rt.monitor_to(&alive.pid(), &sender);
    rt.kill(&alive.pid());
    assert!(rt.demonitor(&fired), "the plain form says true");
    assert!(!rt.demonitor_info(&fired), "its DOWN was sent");
    assert_eq!(receiver.try_recv().unwrap().reference, fired);
    // A `Monitor` with its own channel: the same two forms.
    let (alive, _) = probe(&rt);
    assert!(rt.monitor(&alive.pid()).demonitor_info(), "active");
    let plain = rt.monitor(&alive.pid());
    let info = rt.monitor(&alive.pid());
    rt.kill(&alive.pid());
    otp_threads_testkit::eventually("both DOWNs sent", || {
        !plain.receiver().is_empty() && !info.receiver().is_empty()
    });
    assert!(plain.demonitor(), "the plain form says true");
    assert!(!info.demonitor_info(), "its DOWN was sent");
    rt.shutdown(WAIT).unwrap();
}

/// `demonitor(Ref, [flush, info])` for a plain thread that watches many processes on one
/// `monitor_to` channel: the DOWN already queued is taken off, the others stay in order.
#[test]
fn demonitor_flush_takes_a_queued_down_off_a_shared_monitor_to_channel() {
    let rt = Runtime::new();
    let (sender, receiver) = crossbeam_channel::unbounded();
    let (a, _) = probe(&rt);
    let (b, _) = probe(&rt);
    let (c, _) = probe(&rt);
    let (alive, _) = probe(&rt);
    let first = rt.monitor_to(&a.pid(), &sender);
    let flushed = rt.monitor_to(&b.pid(), &sender);
    let last = rt.monitor_to(&c.pid(), &sender);
    let active = rt.monitor_to(&alive.pid(), &sender);
    for pid in [a.pid(), b.pid(), c.pid()] {
        rt.kill(&pid);
    }
    assert!(
        !rt.demonitor_flush(&flushed, &sender, &receiver),
        "a flush was needed"
    );
    assert!(
        rt.demonitor_flush(&active, &sender, &receiver),
        "still active"
    );
    let left: Vec<_> = receiver.try_iter().map(|down| down.reference).collect();
    assert_eq!(left, [first, last]);
    rt.kill(&alive.pid());
    assert!(
        receiver.try_recv().is_err(),
        "no DOWN for the removed monitor"
    );
    rt.shutdown(WAIT).unwrap();
}
