//! Starting and stopping supervisors. Ports the rules checked by OTP's
//! `supervisor_SUITE` groups `sup_start` (`sup_start_normal`, `sup_start_fail`,
//! `sup_start_error_return`) and `sup_stop` (`sup_stop_infinity`, `sup_stop_timeout`,
//! `sup_stop_brutal_kill`), and the cases `child_specs`, `sup_flags`, `child_unlink`,
//! as described by the `supervisor` module documentation: children start in order,
//! synchronously; a failed start stops the started ones and names the child; children
//! stop in reverse start order with their shutdown. Each test names its OTP case.
//! No OTP code is copied; the scenarios are rewritten for threads.

#[path = "support/supervision.rs"]
mod supervision;

use std::time::Duration;

use otp_threads::supervisor::{
    ChildSpec, Shutdown, Strategy, Supervisor, SupervisorError, SupervisorRef,
};
use otp_threads::{Context, Error, ExitReason, Pid, Runtime, Worker};
use supervision::*;

/// `sup_start_normal`, and the ordering rule: start left to right, stop right to left.
#[test]
fn children_start_in_order_and_stop_in_reverse_order() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.trapping_spec("a"))
        .child(tracker.trapping_spec("b"))
        .child(tracker.trapping_spec("c"))
        .start(&rt)
        .unwrap();
    for id in ["a", "b", "c"] {
        tracker.expect_started(id);
    }
    assert_eq!(child_ids(&sup), ["c", "b", "a"]);
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    for id in ["c", "b", "a"] {
        assert_eq!(tracker.expect_terminated(id), ExitReason::Shutdown);
    }
    rt.shutdown(WAIT).unwrap();
}

/// `sup_start_fail` / `sup_start_error_return`: a child failing to start fails the
/// supervisor's start, naming the child; the children already started are stopped,
/// last first.
#[test]
fn a_child_failing_to_start_fails_the_start_naming_it_and_stops_the_started_ones() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    tracker.fail_next_starts_of("c", 1);
    let result = Supervisor::new(Strategy::OneForOne)
        .child(tracker.trapping_spec("a"))
        .child(tracker.trapping_spec("b"))
        .child(tracker.trapping_spec("c"))
        .child(tracker.trapping_spec("d"))
        .start(&rt);
    match result {
        Err(SupervisorError::ChildStartFailed { id, error }) => {
            assert_eq!(id, "c");
            assert_eq!(
                error,
                Error::InitFailed(ExitReason::error("c refuses to start"))
            );
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    tracker.expect_started("a");
    tracker.expect_started("b");
    assert_eq!(tracker.expect_terminated("b"), ExitReason::Shutdown);
    assert_eq!(tracker.expect_terminated("a"), ExitReason::Shutdown);
    tracker.assert_quiet();
    assert_eq!(rt.process_count(), 0);
    rt.shutdown(WAIT).unwrap();
}

/// `sup_start_fail` with a start function that returns an error or panics.
#[test]
fn a_start_function_that_errs_or_panics_is_a_failed_start() {
    let rt = Runtime::new();
    let erring = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::new("erring", |_| Err(Error::NoProc)))
        .start(&rt);
    assert_eq!(
        erring.unwrap_err(),
        SupervisorError::ChildStartFailed {
            id: "erring".into(),
            error: Error::NoProc
        }
    );
    let panicking = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::new("panicking", |_| panic!("no luck")))
        .start(&rt);
    match panicking {
        Err(SupervisorError::ChildStartFailed { id, error }) => {
            assert_eq!(id, "panicking");
            assert_eq!(
                error,
                Error::InitFailed(ExitReason::Panic("no luck".into()))
            );
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown(WAIT).unwrap();
}

/// `child_specs`: duplicate ids are rejected, naming the child; nothing is started.
#[test]
fn duplicate_child_ids_are_rejected_naming_the_child() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let result = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("a"))
        .child(tracker.spec("b"))
        .child(tracker.spec("a"))
        .start(&rt);
    assert_eq!(
        result.unwrap_err(),
        SupervisorError::DuplicateChildId { id: "a".into() }
    );
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `child_specs`: a zero shutdown timeout is invalid (OTP wants a positive integer).
#[test]
fn a_zero_shutdown_timeout_is_rejected_naming_the_child() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let result = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("a"))
        .child(
            tracker
                .spec("b")
                .shutdown(Shutdown::Timeout(Duration::ZERO)),
        )
        .start(&rt);
    match result {
        Err(SupervisorError::InvalidChildSpec { id, .. }) => assert_eq!(id, "b"),
        other => panic!("{other:?}"),
    }
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `sup_flags`: a zero period is invalid.
#[test]
fn a_zero_restart_period_is_rejected() {
    let rt = Runtime::new();
    let result = Supervisor::new(Strategy::OneForAll)
        .intensity(3, Duration::ZERO)
        .start(&rt);
    assert!(matches!(
        result,
        Err(SupervisorError::InvalidFlag {
            option: "period",
            ..
        })
    ));
    rt.shutdown(WAIT).unwrap();
}

/// A supervisor whose one child (`slow`, infinity shutdown) stalls in `terminate`,
/// being stopped from another thread: returned once the child has stalled, with the
/// child's pid, the sender whose drop lets it finish, and the stopping thread.
fn stopping_with_a_stalled_child(
    rt: &Runtime,
    tracker: &Tracker,
) -> (
    SupervisorRef,
    Pid,
    crossbeam_channel::Sender<()>,
    std::thread::JoinHandle<Result<(), Error>>,
) {
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(
            tracker
                .stalling_spec("slow", released)
                .shutdown(Shutdown::Infinity),
        )
        .start(rt)
        .unwrap();
    let child = tracker.expect_started("slow");
    let stopper = {
        let sup = sup.clone();
        std::thread::spawn(move || sup.stop(ExitReason::Shutdown, WAIT * 3))
    };
    assert_eq!(tracker.next(), Seen::Stalled { id: "slow".into() });
    (sup, child, release, stopper)
}

/// `sup_stop_infinity`: the supervisor waits as long as a child with infinity
/// shutdown takes to run its `terminate`.
#[test]
fn infinity_shutdown_waits_for_the_child_however_long_it_takes() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let (sup, child, release, stopper) = stopping_with_a_stalled_child(&rt, &tracker);
    // Stalled in terminate: both still running, nobody killed anything.
    assert!(sup.is_alive());
    assert!(rt.is_alive(&child));
    drop(release);
    assert_eq!(tracker.expect_terminated("slow"), ExitReason::Shutdown);
    stopper.join().unwrap().unwrap();
    assert_eq!(wait_dead(&rt, &child), ExitReason::NoProc);
    rt.shutdown(WAIT).unwrap();
}

/// `sup_stop_timeout`: a child still running after its shutdown timeout is killed.
#[test]
fn shutdown_timeout_kills_a_child_that_ignores_shutdown() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(
            tracker
                .stalling_spec("stubborn", released)
                .shutdown(Shutdown::Timeout(Duration::from_millis(100))),
        )
        .start(&rt)
        .unwrap();
    let child = tracker.expect_started("stubborn");
    let down = rt.monitor(&child);
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    // Let the killed child's thread leave its terminate, so the runtime can join it.
    drop(release);
    rt.shutdown(WAIT).unwrap();
}

/// `sup_stop_brutal_kill`: a brutal kill kills at once, even a child trapping exits,
/// and its `terminate` does not run.
#[test]
fn brutal_kill_kills_a_trapping_child_without_terminate() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(
            tracker
                .trapping_spec("victim")
                .shutdown(Shutdown::BrutalKill),
        )
        .start(&rt)
        .unwrap();
    let child = tracker.expect_started("victim");
    let down = rt.monitor(&child);
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `child_unlink`: a child that unlinked itself from its supervisor is still stopped,
/// because the supervisor waits for a DOWN, not an EXIT.
#[test]
fn a_child_that_unlinked_itself_is_still_stopped() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.trapping_spec("naughty"))
        .start(&rt)
        .unwrap();
    let child = tracker.expect_started("naughty");
    rt.worker_ref::<Member>(&child)
        .unwrap()
        .call(Order::UnlinkParent)
        .unwrap();
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(tracker.expect_terminated("naughty"), ExitReason::Shutdown);
    rt.shutdown(WAIT).unwrap();
}

/// Runtime shutdown stops a supervisor started from a plain thread as its parent
/// would: the supervisor stops its children in reverse order.
#[test]
fn runtime_shutdown_stops_the_tree_in_order() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let _sup = Supervisor::new(Strategy::RestForOne)
        .child(tracker.trapping_spec("first"))
        .child(tracker.trapping_spec("second"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("first");
    tracker.expect_started("second");
    rt.shutdown(WAIT).unwrap();
    assert_eq!(tracker.expect_terminated("second"), ExitReason::Shutdown);
    assert_eq!(tracker.expect_terminated("first"), ExitReason::Shutdown);
}

/// A supervisor is a worker: it can be named and monitored; its name is released
/// when it exits.
#[test]
fn a_supervisor_can_be_named_and_monitored() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .child(tracker.spec("a"))
        .start(&rt)
        .unwrap();
    let found = otp_threads::SupervisorRef::whereis(&rt, "top").unwrap();
    assert_eq!(found.pid(), sup.pid());
    // A second supervisor cannot take the name.
    let taken = Supervisor::new(Strategy::OneForOne).name("top").start(&rt);
    assert_eq!(
        taken.unwrap_err(),
        SupervisorError::Start(Error::NameTaken("top".into()))
    );
    let down = rt.monitor(&sup.pid());
    rt.exit(&sup.pid(), ExitReason::error("brutal"));
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::error("brutal"));
    assert!(rt.whereis("top").is_none());
    rt.shutdown(WAIT).unwrap();
}

/// A worker that starts a supervisor linked to itself, as a parent does.
struct Owner {
    tracker_spec: Option<ChildSpec>,
}

impl Worker for Owner {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        let spec = self.tracker_spec.take().unwrap();
        Supervisor::new(Strategy::OneForOne)
            .name("owned")
            .child(spec)
            .start_link(ctx)
            .map(|_| ())
            .map_err(ExitReason::error)
    }
}

/// A supervisor obeys its parent: when the parent exits, the supervisor stops its
/// children in order (here the parent is a worker, not the runtime).
#[test]
fn a_supervisor_stops_its_children_when_its_parent_exits() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let owner = rt
        .spawn_worker(Owner {
            tracker_spec: Some(tracker.trapping_spec("grandchild")),
        })
        .unwrap();
    let grandchild = tracker.expect_started("grandchild");
    let grandchild_down = rt.monitor(&grandchild);
    owner.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(
        tracker.expect_terminated("grandchild"),
        ExitReason::Shutdown
    );
    assert_eq!(
        grandchild_down.wait(WAIT).unwrap().reason,
        ExitReason::Shutdown
    );
    rt.shutdown(WAIT).unwrap();
}

/// A supervisor is linked to the worker that started it with `start_link`: its
/// death kills that worker (which does not trap exits).
#[test]
fn a_supervisor_is_linked_to_the_worker_that_started_it() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let owner = rt
        .spawn_worker(Owner {
            tracker_spec: Some(tracker.spec("grandchild")),
        })
        .unwrap();
    tracker.expect_started("grandchild");
    let sup = otp_threads::SupervisorRef::whereis(&rt, "owned").unwrap();
    let owner_down = rt.monitor(&owner.pid());
    // The supervisor traps exits: only a kill takes it down from outside.
    rt.kill(&sup.pid());
    assert_eq!(owner_down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    rt.shutdown(WAIT).unwrap();
}

/// A start function answering `ignore`, as a child whose `init/1` returns `ignore`.
fn ignoring_spec(id: &str) -> ChildSpec {
    ChildSpec::new(id, |_| Err(Error::Ignored))
}

/// A worker whose `init/1` returns `ignore`.
struct Ignoring;

impl Worker for Ignoring {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init_outcome(&mut self, _: &mut Context<Self>) -> otp_threads::InitOutcome<Self> {
        otp_threads::InitOutcome::Ignore
    }
}

/// `sup_start_ignore_child`: a static child whose start answers `ignore` is kept with no
/// pid (`undefined`), its siblings start; `start_child` and `restart_child` of such a
/// child answer `{ok, undefined}` (here `SupervisorError::Ignored`) and keep the spec.
#[test]
fn a_static_child_that_ignores_its_start_is_kept_without_a_pid() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("ignored", || Ignoring))
        .child(tracker.spec("w"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("w");
    assert_eq!(
        child_state(&sup, "ignored"),
        Some(otp_threads::supervisor::ChildState::Terminated)
    );
    assert_eq!(
        sup.start_child(ignoring_spec("later")),
        Err(SupervisorError::Ignored { id: "later".into() })
    );
    assert_eq!(
        child_state(&sup, "later"),
        Some(otp_threads::supervisor::ChildState::Terminated)
    );
    assert_eq!(
        sup.restart_child("ignored"),
        Err(SupervisorError::Ignored {
            id: "ignored".into()
        })
    );
    assert_eq!(sup.count_children().unwrap().specs, 3);
    assert_eq!(sup.count_children().unwrap().active, 1);
    rt.shutdown(WAIT).unwrap();
}

/// `sup_start_ignore_temporary_child`: a temporary child answering `ignore` is not kept,
/// at boot or from `start_child`.
#[test]
fn a_temporary_child_that_ignores_its_start_is_dropped() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ignoring_spec("boot").restart(otp_threads::supervisor::Restart::Temporary))
        .child(tracker.spec("w"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("w");
    assert_eq!(child_ids(&sup), ["w"]);
    assert_eq!(
        sup.start_child(
            ChildSpec::worker("later", || Ignoring)
                .restart(otp_threads::supervisor::Restart::Temporary)
        ),
        Err(SupervisorError::Ignored { id: "later".into() })
    );
    assert_eq!(child_ids(&sup), ["w"]);
    rt.shutdown(WAIT).unwrap();
}

/// `gen_server:stop/3` on a supervisor (`proc_lib:stop/3`): a supervisor's `terminate`
/// stops its children and then it exits with the reason it was asked to stop with, so
/// its own reason differs only when something else ends it meanwhile. Killed while it
/// waits for a slow child's `terminate`, it is dead at once with `Killed`, and `stop`
/// fails with that reason.
#[test]
fn stopping_a_supervisor_that_is_killed_meanwhile_reports_killed() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    // The supervisor is inside its own `terminate`, waiting for the child's.
    let (sup, _child, release, stopper) = stopping_with_a_stalled_child(&rt, &tracker);
    assert_eq!(
        kill_with(&rt, &sup.pid(), ExitReason::Kill),
        ExitReason::Killed
    );
    assert_eq!(
        stopper.join().unwrap(),
        Err(Error::Exited(ExitReason::Killed))
    );
    drop(release);
    tracker.expect_terminated("slow");
    rt.shutdown(WAIT).unwrap();
}

/// What holds otherwise: a child whose `terminate` panics exits with the panic (logged
/// by its supervisor, as OTP's `shutdown_error` report), and the supervisor still exits
/// with the requested reason, so its `stop` is `Ok`. OTP's `supervisor:terminate/2`
/// likewise ignores its children's exit reasons.
#[test]
fn a_child_whose_terminate_panics_does_not_change_its_supervisors_stop_reason() {
    let rt = Runtime::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("w", || PanicsInTerminate))
        .start(&rt)
        .unwrap();
    let child = child_pid(&sup, "w");
    let child_down = rt.monitor(&child);
    let sup_down = rt.monitor(&sup.pid());
    assert_eq!(sup.stop(ExitReason::Shutdown, WAIT), Ok(()));
    assert_eq!(
        child_down.wait(WAIT).unwrap().reason,
        ExitReason::Panic("terminate failed".into())
    );
    assert_eq!(sup_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    rt.shutdown(WAIT).unwrap();
}

/// A worker that traps exits (so that its supervisor's `Shutdown` runs `terminate`)
/// and panics in `terminate`.
struct PanicsInTerminate;

impl Worker for PanicsInTerminate {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        Ok(())
    }

    fn terminate(&mut self, _: &ExitReason, _: &mut otp_threads::Context<Self>) {
        panic!("terminate failed");
    }
}
