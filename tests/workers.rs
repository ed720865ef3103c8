//! Worker life cycle, after `proc_lib:start_link/3` and `gen_server`: a start returns
//! once `init` succeeded; a failed `init` comes back to the caller (OTP 26+: without
//! an EXIT over the start link); callbacks run one at a time; `terminate` runs on
//! orderly stops; pooled threads behave like fresh ones; kill cannot pre-empt a thread.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use otp_threads::{Context, Error, ExitReason, Runtime, Step, Worker};

#[test]
fn spawn_returns_after_init_succeeded() {
    struct Ready(bool);
    impl Worker for Ready {
        type Call = ();
        type Reply = bool;
        type Cast = ();
        type Info = ();
        type Continue = ();
        fn init(&mut self, _: &mut Context<Self>) -> Result<(), ExitReason> {
            self.0 = true;
            Ok(())
        }
        fn handle_call(
            &mut self,
            _: (),
            reply: otp_threads::ReplyTo<bool>,
            _: &mut Context<Self>,
        ) -> Step<Self> {
            reply.reply(self.0);
            Step::Next
        }
    }
    let rt = Runtime::new();
    let worker = rt.spawn_worker(Ready(false)).unwrap();
    assert!(worker.call(()).unwrap());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn init_error_comes_back_to_the_caller_and_no_process_is_left() {
    let rt = Runtime::new();
    let (failing, _) = Probe::with_init(InitBehaviour::Fail(ExitReason::error("no config")));
    let error = rt.spawn_named("failing", failing).unwrap_err();
    assert_eq!(error, Error::InitFailed(ExitReason::error("no config")));
    assert_eq!(rt.process_count(), 0);
    assert_eq!(rt.whereis("failing"), None);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn panic_in_init_reports_error() {
    let rt = Runtime::new();
    let (panicking, _) = Probe::with_init(InitBehaviour::Panic);
    let error = rt.spawn_worker(panicking).unwrap_err();
    assert_eq!(
        error,
        Error::InitFailed(ExitReason::Panic("init panicked on purpose".into()))
    );
    assert_eq!(rt.process_count(), 0);
    // The thread that ran it serves the next worker.
    let (p, _) = probe(&rt);
    assert!(matches!(ask(&p, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_failed_init_under_spawn_link_sends_no_exit_to_the_parent() {
    let rt = Runtime::new();
    let (parent, parent_events) = trapping_probe(&rt);
    let (child, _) = Probe::with_init(InitBehaviour::Fail(ExitReason::error("bad")));
    match ask(&parent, Command::SpawnLink(child)) {
        Reply::Error(Error::InitFailed(reason)) => assert_eq!(reason, ExitReason::error("bad")),
        other => panic!("expected an init failure, got {other:?}"),
    }
    parent.send("marker".into());
    assert_eq!(next(&parent_events), Event::Message("marker".into()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn panic_in_a_handler_stops_the_worker_and_runs_terminate() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    let down = rt.monitor(&p.pid());
    p.cast(Command::Panic("bad message".into()));
    assert_eq!(
        next(&events),
        Event::Terminated(ExitReason::Panic("bad message".into()))
    );
    assert_eq!(
        down.wait(WAIT).unwrap().reason,
        ExitReason::Panic("bad message".into())
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn handle_continue_runs_before_the_next_message() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    // Both are queued before the first is handled; the continuation still runs first.
    p.cast(Command::Continue(1));
    p.send("after".into());
    assert_eq!(next(&events), Event::Continued(1));
    assert_eq!(next(&events), Event::Message("after".into()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_reused_thread_runs_each_worker_with_fresh_links_monitors_and_terminate() {
    let rt = Runtime::new();
    let (watcher, watcher_events) = trapping_probe(&rt);
    let mut seen = std::collections::HashSet::new();
    for round in 0..100 {
        let (p, events) = probe(&rt);
        assert!(seen.insert(p.pid()), "pids are not reused");
        ask(&watcher, Command::Link(p.pid()));
        ask(&watcher, Command::Monitor(p.pid()));
        p.cast(Command::Stop(ExitReason::error(round)));
        assert_eq!(next(&events), Event::Terminated(ExitReason::error(round)));
        let mut pair = [next(&watcher_events), next(&watcher_events)];
        pair.sort_by_key(|event| matches!(event, Event::Down(_)));
        assert!(
            matches!(&pair[0], Event::Exit(exit) if exit.from == p.pid() && exit.reason == ExitReason::error(round))
        );
        assert!(matches!(&pair[1], Event::Down(down) if down.pid == p.pid()));
    }
    // Sequential spawns reuse a handful of threads, not one per worker.
    assert!(
        rt.thread_count() < 20,
        "{} threads for 101 workers",
        rt.thread_count()
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_fresh_thread_per_worker_can_be_configured() {
    let rt = Runtime::builder().reuse_threads(false).build().unwrap();
    thread_local!(static MARK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    struct Marker(crossbeam_channel::Sender<bool>);
    impl Worker for Marker {
        type Call = ();
        type Reply = ();
        type Cast = ();
        type Info = ();
        type Continue = ();
        fn init(&mut self, _: &mut Context<Self>) -> Result<(), ExitReason> {
            let _ = self.0.send(MARK.with(|mark| mark.replace(true)));
            Err(ExitReason::Normal)
        }
    }
    let (sender, marks) = crossbeam_channel::unbounded();
    for _ in 0..5 {
        let _ = rt.spawn_worker(Marker(sender.clone()));
        assert!(
            !marks.recv_timeout(WAIT).unwrap(),
            "a fresh thread has fresh thread-locals"
        );
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_killed_busy_worker_is_dead_at_once_and_its_thread_joins_when_its_code_returns() {
    let rt = Runtime::new();
    let (busy, busy_events) = probe(&rt);
    rt.register("busy", &busy.pid()).unwrap();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (entered, inside) = crossbeam_channel::bounded(1);
    busy.cast(Command::Block {
        entered,
        release: released,
    });
    inside.recv_timeout(WAIT).unwrap();
    let down = rt.monitor(&busy.pid());
    rt.kill(&busy.pid());
    // Dead for everyone at once, although its thread is still in the callback.
    assert_eq!(
        down.receiver().try_recv().unwrap().reason,
        ExitReason::Killed
    );
    assert!(!busy.is_alive());
    assert_eq!(rt.whereis("busy"), None);
    assert_eq!(busy.try_cast(Command::Ping), Err(Error::NoProc));
    assert_eq!(busy.call(Command::Ping).unwrap_err(), Error::NoProc);
    assert_eq!(rt.zombies(), vec![busy.pid()]);
    drop(release);
    // Its code returned: it runs nothing more (no terminate) and the thread is free.
    otp_threads_testkit::eventually("the zombie thread finishes", || rt.zombies().is_empty());
    assert!(busy_events.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_killed_worker_whose_callback_then_stops_does_not_run_terminate() {
    let rt = Runtime::new();
    let (busy, busy_events) = probe(&rt);
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (entered, inside) = crossbeam_channel::bounded(1);
    busy.cast(Command::BlockThenStop {
        entered,
        release: released,
        reason: ExitReason::error("too late"),
    });
    inside.recv_timeout(WAIT).unwrap();
    rt.kill(&busy.pid());
    drop(release);
    otp_threads_testkit::eventually("the zombie thread finishes", || rt.zombies().is_empty());
    assert!(busy_events.try_recv().is_err(), "no terminate after a kill");
    assert_eq!(busy.exit_reason(), Some(ExitReason::Killed));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_killed_worker_still_running_sends_nothing_more() {
    let rt = Runtime::new();
    let (receiver, events) = probe(&rt);
    let (zombie, _) = probe(&rt);
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (entered, inside) = crossbeam_channel::bounded(1);
    zombie.cast(Command::Block {
        entered,
        release: released,
    });
    inside.recv_timeout(WAIT).unwrap();
    zombie.cast(Command::Send(receiver.pid(), "from the grave".into()));
    rt.kill(&zombie.pid());
    drop(release);
    // The queued Send is never run: a killed worker takes no more messages.
    receiver.send("marker".into());
    assert_eq!(next(&events), Event::Message("marker".into()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn runtime_shutdown_stops_trapping_workers_with_terminate() {
    let rt = Runtime::new();
    let (p, events) = trapping_probe(&rt);
    let (q, q_events) = probe(&rt);
    rt.shutdown(WAIT).unwrap();
    assert_eq!(next(&events), Event::Terminated(ExitReason::Shutdown));
    assert!(
        q_events.try_recv().is_err(),
        "a worker not trapping exits dies without terminate"
    );
    assert!(!p.is_alive() && !q.is_alive());
    assert_eq!(p.exit_reason(), Some(ExitReason::Shutdown));
}

#[test]
fn runtime_shutdown_also_stops_unlinked_workers_started_by_workers() {
    let rt = Runtime::new();
    let (parent, _) = probe(&rt);
    let (orphan, _) = Probe::new();
    let Reply::Pid(orphan) = ask(&parent, Command::Spawn(orphan)) else {
        panic!("spawn failed");
    };
    let orphan: otp_threads::WorkerRef<Probe> = rt.worker_ref(&orphan).unwrap();
    rt.shutdown(WAIT).unwrap();
    // Told to stop once its parent was gone, not killed at the deadline.
    assert_eq!(orphan.exit_reason(), Some(ExitReason::Shutdown));
}

#[test]
fn spawning_after_shutdown_fails() {
    let rt = Runtime::new();
    let handle = rt.handle();
    rt.shutdown(WAIT).unwrap();
    assert_eq!(
        handle.spawn_worker(Probe::new().0).unwrap_err(),
        Error::RuntimeStopped
    );
}

#[test]
fn invalid_runtime_options_are_rejected_naming_the_option() {
    let error = Runtime::builder()
        .node_name("no-at-sign")
        .build()
        .err()
        .unwrap();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "node_name",
            ..
        }
    ));
    let error = Runtime::builder().stack_size(1024).build().err().unwrap();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "stack_size",
            ..
        }
    ));
    let error = Runtime::builder()
        .call_timeout(Duration::ZERO)
        .build()
        .err()
        .unwrap();
    assert!(matches!(
        error,
        Error::InvalidOption {
            option: "call_timeout",
            ..
        }
    ));
    let rt = Runtime::builder().node_name("app@host1").build().unwrap();
    let (p, _) = probe(&rt);
    assert_eq!(p.pid().node().as_str(), "app@host1");
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn pids_of_a_previous_runtime_never_name_processes_of_a_new_one() {
    let old = Runtime::new();
    let (p, _) = probe(&old);
    let old_pid = p.pid();
    old.shutdown(WAIT).unwrap();
    let new = Runtime::new();
    let (q, _) = probe(&new);
    assert_eq!(old_pid.node(), q.pid().node());
    assert_ne!(old_pid.creation(), q.pid().creation());
    assert!(!new.is_alive(&old_pid));
    assert_eq!(
        new.monitor(&old_pid).wait(WAIT).unwrap().reason,
        ExitReason::NoProc
    );
    new.shutdown(WAIT).unwrap();
}

/// A worker whose `init` answers `ignore`, or continues (`{ok, State, {continue, C}}`).
struct InitAnswers {
    outcome: Option<otp_threads::InitOutcome<InitAnswers>>,
    events: crossbeam_channel::Sender<String>,
}

impl Worker for InitAnswers {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = String;
    type Continue = String;

    fn init_outcome(&mut self, ctx: &mut Context<Self>) -> otp_threads::InitOutcome<Self> {
        // A message already in the mailbox when init returns.
        ctx.handle().send("queued during init".into());
        self.outcome.take().expect("one init")
    }

    fn handle_continue(&mut self, step: String, _: &mut Context<Self>) -> Step<Self> {
        let _ = self.events.send(format!("continue {step}"));
        Step::Next
    }

    fn handle_info(
        &mut self,
        info: otp_threads::Info<String>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        if let otp_threads::Info::Message(message) = info {
            let _ = self.events.send(message);
        }
        Step::Next
    }
}

/// `gen_server:start_link` returns `ignore` when `init/1` does: no process is left (its
/// name is free again), no EXIT reaches the linked starter, and with a fresh thread per
/// worker its thread exits.
#[test]
fn init_returning_ignore_starts_nothing_and_leaves_no_process_or_thread() {
    let rt = Runtime::builder().reuse_threads(false).build().unwrap();
    let (events, _) = crossbeam_channel::unbounded();
    let ignoring = InitAnswers {
        outcome: Some(otp_threads::InitOutcome::Ignore),
        events: events.clone(),
    };
    assert_eq!(
        rt.spawn_named("ignored", ignoring).unwrap_err(),
        Error::Ignored
    );
    assert_eq!(rt.process_count(), 0);
    assert_eq!(rt.whereis("ignored"), None);
    // The ignored worker's thread finishes its clean-up just after the spawn returns.
    poll_until_quiet(&rt);
    assert!(rt.zombies().is_empty());
    // Under spawn_link from a trapping worker: the starter gets `Ignored`, no EXIT.
    let (starter, starter_events) = trapping_probe(&rt);
    assert!(matches!(
        ask(&starter, Command::SpawnLink(ignoring_probe())),
        Reply::Error(Error::Ignored)
    ));
    starter.send("marker".into());
    assert_eq!(next(&starter_events), Event::Message("marker".into()));
    rt.shutdown(WAIT).unwrap();
}

/// A probe that ignores its start (`InitBehaviour::Fail` cannot say ignore).
fn ignoring_probe() -> Probe {
    Probe::with_init(InitBehaviour::Ignore).0
}

/// Waits (bounded) until the runtime has no thread left running.
fn poll_until_quiet(rt: &Runtime) {
    otp_threads_testkit::eventually("the ignored worker's thread exits", || {
        rt.thread_count() == 0
    });
}

/// `{ok, State, {continue, Continue}}` from `init/1`: `handle_continue` runs before any
/// message, even one already queued when `init` returned.
#[test]
fn init_can_continue_with_handle_continue_before_any_message() {
    let rt = Runtime::new();
    let (events, received) = crossbeam_channel::unbounded();
    let worker = InitAnswers {
        outcome: Some(otp_threads::InitOutcome::Continue("from init".into())),
        events,
    };
    let worker = rt.spawn_worker(worker).unwrap();
    worker.send("after the start".into());
    let order: Vec<String> = (0..3)
        .map(|_| received.recv_timeout(WAIT).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "continue from init",
            "queued during init",
            "after the start"
        ]
    );
    rt.shutdown(WAIT).unwrap();
}

/// A worker that, on the cast "hold", waits at a gate and then takes the queued
/// messages that start with "drop" (`Context::take_queued_messages`); it reports what it
/// took, and then everything else it handles, in order.
struct Taker {
    gate: crossbeam_channel::Receiver<()>,
    events: crossbeam_channel::Sender<String>,
}

impl Worker for Taker {
    type Call = ();
    type Reply = ();
    type Cast = String;
    type Info = String;
    type Continue = ();

    fn handle_cast(&mut self, cast: String, ctx: &mut Context<Self>) -> Step<Self> {
        if cast == "hold" {
            let _ = self.gate.recv_timeout(WAIT);
            let taken = ctx.take_queued_messages(|message| message.starts_with("drop"));
            let _ = self.events.send(format!("took {}", taken.join(", ")));
        } else {
            let _ = self.events.send(format!("cast {cast}"));
        }
        Step::Next
    }

    fn handle_info(
        &mut self,
        info: otp_threads::Info<String>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        if let otp_threads::Info::Message(message) = info {
            let _ = self.events.send(message);
        }
        Step::Next
    }
}

/// Erlang's selective receive with `after 0` (`receive Pattern -> ok after 0 -> ok end`),
/// as a library uses it to take back a message it delivered (zen_monitor's
/// `demonitor(Ref, [flush])`): the selected queued messages leave the mailbox, in order;
/// everything else keeps its order; later messages are not filtered.
#[test]
fn take_queued_messages_removes_the_selected_ones_and_keeps_the_rest_in_order() {
    let rt = Runtime::new();
    let (open, gate) = crossbeam_channel::bounded(1);
    let (events, handled) = crossbeam_channel::unbounded();
    let taker = rt.spawn_worker(Taker { gate, events }).unwrap();
    // One sender: all of it is queued, in this order, before the gate opens.
    taker.cast("hold".into());
    taker.send("keep 1".into());
    taker.send("drop a".into());
    taker.cast("between".into());
    taker.send("keep 2".into());
    taker.send("drop b".into());
    open.send(()).unwrap();
    assert_eq!(handled.recv_timeout(WAIT).unwrap(), "took drop a, drop b");
    taker.send("drop c (sent later: not filtered)".into());
    let order: Vec<String> = (0..4)
        .map(|_| handled.recv_timeout(WAIT).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "keep 1",
            "cast between",
            "keep 2",
            "drop c (sent later: not filtered)"
        ]
    );
    rt.shutdown(WAIT).unwrap();
}
