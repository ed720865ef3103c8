//! Exit signals and links, after the Erlang reference manual, "Processes": sections
//! "Links", "Sending Exit Signals" and "Receiving Exit Signals" (OTP 25; the OTP 26
//! change to failed starts is in `workers.rs`). Each test names the rule it checks.

#[path = "support/common.rs"]
mod common;

use common::*;
use otp_threads::{Error, ExitReason, Runtime};

fn linked_pair(
    rt: &Runtime,
) -> (
    otp_threads::WorkerRef<Probe>,
    otp_threads::WorkerRef<Probe>,
    crossbeam_channel::Receiver<Event>,
) {
    let (a, _) = probe(rt);
    let (b, b_events) = probe(rt);
    assert!(matches!(ask(&a, Command::Link(b.pid())), Reply::Ok));
    (a, b, b_events)
}

#[test]
fn normal_exit_signal_is_ignored_by_a_linked_process_not_trapping_exits() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    let a_down = rt.monitor(&a.pid());
    a.cast(Command::Stop(ExitReason::Normal));
    assert_eq!(a_down.wait(WAIT).unwrap().reason, ExitReason::Normal);
    // The signal to b is delivered before a's monitors fire.
    assert!(b.is_alive());
    assert!(matches!(ask(&b, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn abnormal_exit_kills_a_linked_process_with_the_same_reason() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    let b_down = rt.monitor(&b.pid());
    a.cast(Command::Stop(ExitReason::error("boom")));
    assert_eq!(b_down.wait(WAIT).unwrap().reason, ExitReason::error("boom"));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn shutdown_reasons_kill_a_linked_process_not_trapping_exits() {
    let rt = Runtime::new();
    for reason in [ExitReason::Shutdown, ExitReason::shutdown_with("rebalance")] {
        let (a, b, _) = linked_pair(&rt);
        let b_down = rt.monitor(&b.pid());
        a.cast(Command::Stop(reason.clone()));
        assert_eq!(b_down.wait(WAIT).unwrap().reason, reason);
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn trapped_exit_signal_arrives_as_an_exit_message_and_the_receiver_keeps_running() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let (b, b_events) = trapping_probe(&rt);
    ask(&a, Command::Link(b.pid()));
    a.cast(Command::Stop(ExitReason::error("boom")));
    match next(&b_events) {
        Event::Exit(exit) => {
            assert_eq!(exit.from, a.pid());
            assert_eq!(exit.reason, ExitReason::error("boom"));
        }
        other => panic!("expected an EXIT, got {other:?}"),
    }
    assert!(matches!(ask(&b, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn trapped_normal_exit_of_a_linked_process_arrives_as_a_message() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let (b, b_events) = trapping_probe(&rt);
    ask(&a, Command::Link(b.pid()));
    a.cast(Command::Stop(ExitReason::Normal));
    assert!(matches!(next(&b_events), Event::Exit(exit) if exit.reason == ExitReason::Normal));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn kill_sent_with_exit_cannot_be_trapped_and_the_target_dies_killed() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let (b, b_events) = trapping_probe(&rt);
    let b_down = rt.monitor(&b.pid());
    ask(&a, Command::Exit(b.pid(), ExitReason::Kill));
    assert_eq!(b_down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    // Killed: no terminate.
    assert!(b_events.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn killed_travels_over_links_as_an_ordinary_reason() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    let (c, c_events) = trapping_probe(&rt);
    ask(&c, Command::Link(a.pid()));
    let b_down = rt.monitor(&b.pid());
    rt.kill(&a.pid());
    assert_eq!(b_down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    assert!(matches!(next(&c_events), Event::Exit(exit) if exit.reason == ExitReason::Killed));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_process_exiting_with_reason_kill_sends_a_trappable_kill_over_its_links() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    let (c, c_events) = trapping_probe(&rt);
    ask(&c, Command::Link(a.pid()));
    let b_down = rt.monitor(&b.pid());
    a.cast(Command::Stop(ExitReason::Kill));
    // Not converted to Killed: the non-trapping b dies with Kill, the trapping c lives.
    assert_eq!(b_down.wait(WAIT).unwrap().reason, ExitReason::Kill);
    assert!(matches!(next(&c_events), Event::Exit(exit) if exit.reason == ExitReason::Kill));
    assert!(c.is_alive());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn linking_to_a_dead_pid_is_a_noproc_error_for_a_caller_not_trapping_exits() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let (dead, _) = probe(&rt);
    let dead_pid = dead.pid();
    dead.stop(ExitReason::Normal, WAIT).unwrap();
    assert!(matches!(
        ask(&a, Command::Link(dead_pid)),
        Reply::Error(Error::NoProc)
    ));
    assert!(a.is_alive());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn linking_to_a_dead_pid_gives_an_exit_noproc_message_to_a_trapping_caller() {
    let rt = Runtime::new();
    let (a, a_events) = trapping_probe(&rt);
    let (dead, _) = probe(&rt);
    let dead_pid = dead.pid();
    dead.stop(ExitReason::Normal, WAIT).unwrap();
    assert!(matches!(ask(&a, Command::Link(dead_pid)), Reply::Ok));
    match next(&a_events) {
        Event::Exit(exit) => {
            assert_eq!(exit.from, dead_pid);
            assert_eq!(exit.reason, ExitReason::NoProc);
        }
        other => panic!("expected an EXIT, got {other:?}"),
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn linking_twice_makes_one_link_and_one_unlink_removes_it() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    ask(&b, Command::Link(a.pid()));
    ask(&a, Command::Unlink(b.pid()));
    let a_down = rt.monitor(&a.pid());
    a.cast(Command::Stop(ExitReason::error("boom")));
    a_down.wait(WAIT).unwrap();
    assert!(b.is_alive());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn unlink_stops_propagation_from_either_end() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    ask(&b, Command::Unlink(a.pid()));
    let a_down = rt.monitor(&a.pid());
    rt.exit(&a.pid(), ExitReason::error("boom"));
    assert_eq!(a_down.wait(WAIT).unwrap().reason, ExitReason::error("boom"));
    assert!(b.is_alive());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn exit_normal_sent_to_oneself_kills_the_caller() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let a_down = rt.monitor(&a.pid());
    a.cast(Command::Exit(a.pid(), ExitReason::Normal));
    assert_eq!(a_down.wait(WAIT).unwrap().reason, ExitReason::Normal);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn exit_normal_from_another_process_is_ignored() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    rt.exit(&a.pid(), ExitReason::Normal);
    assert!(a.is_alive());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn non_trapping_worker_killed_by_a_signal_does_not_run_terminate() {
    let rt = Runtime::new();
    let (a, a_events) = probe(&rt);
    let a_down = rt.monitor(&a.pid());
    rt.exit(&a.pid(), ExitReason::Shutdown);
    assert_eq!(a_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    assert!(a_events.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn trapping_worker_stops_with_terminate_on_an_exit_signal_from_its_parent() {
    let rt = Runtime::new();
    let (parent, _) = probe(&rt);
    let (child, child_events) = Probe::with_init(InitBehaviour::TrapExit);
    let child_pid = match ask(&parent, Command::SpawnLink(child)) {
        Reply::Pid(pid) => pid,
        other => panic!("spawn_link failed: {other:?}"),
    };
    let child_down = rt.monitor(&child_pid);
    parent.cast(Command::Stop(ExitReason::Shutdown));
    assert_eq!(next(&child_events), Event::Terminated(ExitReason::Shutdown));
    assert_eq!(child_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_panic_in_a_callback_exits_with_a_panic_reason_that_travels_over_links() {
    let rt = Runtime::new();
    let (a, b, _) = linked_pair(&rt);
    let b_down = rt.monitor(&b.pid());
    a.cast(Command::Panic("on purpose".into()));
    assert_eq!(
        b_down.wait(WAIT).unwrap().reason,
        ExitReason::Panic("on purpose".into())
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_long_chain_of_links_dies_without_overflowing_a_stack() {
    let rt = Runtime::builder().stack_size(64 * 1024).build().unwrap();
    let (first, _) = probe(&rt);
    let mut previous = first.clone();
    let mut last = first.clone();
    for _ in 0..500 {
        let (next_probe, _) = probe(&rt);
        ask(&previous, Command::Link(next_probe.pid()));
        previous = next_probe.clone();
        last = next_probe;
    }
    let last_down = rt.monitor(&last.pid());
    // The whole chain dies in this (test) thread's call to exit.
    rt.exit(&first.pid(), ExitReason::error("chain"));
    assert_eq!(
        last_down.wait(WAIT).unwrap().reason,
        ExitReason::error("chain")
    );
    rt.shutdown(WAIT).unwrap();
}
