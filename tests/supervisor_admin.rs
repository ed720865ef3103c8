//! The supervisor's runtime API: `start_child`, `terminate_child`, `restart_child`,
//! `delete_child`, `which_children`, `count_children`. Ports the rules checked by
//! OTP's `supervisor_SUITE` cases `child_adm`, `count_children`,
//! `sup_start_child_returns_error`, `do_not_save_start_parameters_for_temporary_children`
//! and `sup_start_ignore_temporary_child_start_child`, as the `supervisor` module
//! documentation states them. Each test names its OTP case; no OTP code is copied.

#[path = "support/supervision.rs"]
mod supervision;

use std::sync::Arc;
use std::time::Duration;

use otp_threads::supervisor::{
    ChildCounts, ChildKind, ChildSpec, ChildState, Restart, Shutdown, Strategy, Supervisor,
    SupervisorError,
};
use otp_threads::{Error, ExitReason, Runtime};
use supervision::*;

/// `child_adm`: `start_child` adds a child after the existing ones and starts it.
#[test]
fn start_child_adds_a_child_after_the_existing_ones() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("a"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    let b = sup.start_child(tracker.spec("b")).unwrap();
    assert_eq!(tracker.expect_started("b"), b);
    // Listed most recently started first, as OTP's which_children.
    assert_eq!(child_ids(&sup), ["b", "a"]);
    assert_eq!(child_pid(&sup, "b"), b);
    rt.shutdown(WAIT).unwrap();
}

/// `child_adm`: an id in use is refused: `already_started` with the pid if it runs,
/// `already_present` if its spec is kept but it does not run.
#[test]
fn start_child_with_an_id_in_use_is_refused() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("a"))
        .start(&rt)
        .unwrap();
    let a = tracker.expect_started("a");
    assert_eq!(
        sup.start_child(tracker.spec("a")).unwrap_err(),
        SupervisorError::AlreadyStarted {
            id: "a".into(),
            pid: a
        }
    );
    sup.terminate_child("a").unwrap();
    assert_eq!(
        sup.start_child(tracker.spec("a")).unwrap_err(),
        SupervisorError::AlreadyPresent { id: "a".into() }
    );
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `sup_start_child_returns_error`: a failed `start_child` names the child and keeps
/// no spec.
#[test]
fn start_child_failing_names_the_child_and_keeps_no_spec() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne).start(&rt).unwrap();
    tracker.fail_next_starts_of("b", 1);
    match sup.start_child(tracker.spec("b")) {
        Err(SupervisorError::ChildStartFailed { id, error }) => {
            assert_eq!(id, "b");
            assert_eq!(
                error,
                Error::InitFailed(ExitReason::error("b refuses to start"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(child_ids(&sup).is_empty());
    // An invalid spec is refused before anything starts.
    assert!(matches!(
        sup.start_child(tracker.spec("c").shutdown(Shutdown::Timeout(Duration::ZERO))),
        Err(SupervisorError::InvalidChildSpec { id, .. }) if id == "c"
    ));
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `child_adm`: `terminate_child` stops a child with its shutdown and keeps its spec;
/// `restart_child` starts it again; neither counts as a restart.
#[test]
fn terminate_child_keeps_the_spec_and_restart_child_starts_it_again() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForAll)
        .intensity(0, Duration::from_secs(60))
        .child(tracker.trapping_spec("a"))
        .child(tracker.trapping_spec("b"))
        .start(&rt)
        .unwrap();
    let a = tracker.expect_started("a");
    tracker.expect_started("b");
    sup.terminate_child("a").unwrap();
    assert_eq!(tracker.expect_terminated("a"), ExitReason::Shutdown);
    assert!(!rt.is_alive(&a));
    assert_eq!(child_state(&sup, "a"), Some(ChildState::Terminated));
    // Terminating a terminated child is fine.
    sup.terminate_child("a").unwrap();
    let a2 = sup.restart_child("a").unwrap();
    assert_eq!(tracker.expect_started("a"), a2);
    assert_eq!(child_pid(&sup, "a"), a2);
    // Intensity 0 and one-for-all: none of this was a restart, b was left alone.
    assert!(sup.is_alive());
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `child_adm`: a running child cannot be restarted or deleted; a terminated one can
/// be deleted; unknown ids are `not_found`.
#[test]
fn restart_and_delete_are_refused_for_running_and_unknown_children() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("a"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    let running = SupervisorError::Running { id: "a".into() };
    assert_eq!(sup.restart_child("a").unwrap_err(), running);
    assert_eq!(sup.delete_child("a").unwrap_err(), running);
    let missing = SupervisorError::NotFound { id: "x".into() };
    assert_eq!(sup.terminate_child("x").unwrap_err(), missing);
    assert_eq!(sup.restart_child("x").unwrap_err(), missing);
    assert_eq!(sup.delete_child("x").unwrap_err(), missing);
    sup.terminate_child("a").unwrap();
    sup.delete_child("a").unwrap();
    assert!(child_ids(&sup).is_empty());
    assert_eq!(
        sup.restart_child("a").unwrap_err(),
        SupervisorError::NotFound { id: "a".into() }
    );
    // The id is free again.
    sup.start_child(tracker.spec("a")).unwrap();
    rt.shutdown(WAIT).unwrap();
}

/// `do_not_save_start_parameters_for_temporary_children`: terminating a temporary
/// child removes its spec.
#[test]
fn terminating_a_temporary_child_removes_its_spec() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne).start(&rt).unwrap();
    sup.start_child(tracker.spec("temp").restart(Restart::Temporary))
        .unwrap();
    sup.terminate_child("temp").unwrap();
    assert!(child_ids(&sup).is_empty());
    rt.shutdown(WAIT).unwrap();
}

/// `count_children`: specs, running children, supervisors and workers.
#[test]
fn count_children_counts_specs_active_supervisors_and_workers() {
    let rt = Runtime::new();
    let tracker = Arc::new(Tracker::new());
    let nested = tracker.clone();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("w1"))
        .child(tracker.spec("w2"))
        .child(ChildSpec::supervisor("sup", move || {
            Supervisor::new(Strategy::OneForOne).child(nested.spec("leaf"))
        }))
        .start(&rt)
        .unwrap();
    assert_eq!(
        sup.count_children().unwrap(),
        ChildCounts {
            specs: 3,
            active: 3,
            supervisors: 1,
            workers: 2
        }
    );
    sup.terminate_child("w2").unwrap();
    assert_eq!(
        sup.count_children().unwrap(),
        ChildCounts {
            specs: 3,
            active: 2,
            supervisors: 1,
            workers: 2
        }
    );
    let kinds: Vec<_> = sup
        .which_children()
        .unwrap()
        .into_iter()
        .map(|child| (child.id, child.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("sup".to_owned(), ChildKind::Supervisor),
            ("w2".to_owned(), ChildKind::Worker),
            ("w1".to_owned(), ChildKind::Worker)
        ]
    );
    rt.shutdown(WAIT).unwrap();
}

/// `child_adm`: a child added with `start_child` is supervised like the others and
/// stopped with them, in reverse start order.
#[test]
fn children_added_at_run_time_are_restarted_and_stopped_in_order() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.trapping_spec("a"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    let b = sup.start_child(tracker.spec("b")).unwrap();
    tracker.expect_started("b");
    kill_with(&rt, &b, ExitReason::error("crash"));
    tracker.expect_started("b");
    sup.start_child(tracker.trapping_spec("c")).unwrap();
    tracker.expect_started("c");
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(tracker.expect_terminated("c"), ExitReason::Shutdown);
    assert_eq!(tracker.expect_terminated("a"), ExitReason::Shutdown);
    rt.shutdown(WAIT).unwrap();
}

/// `which_children` lists children as OTP keeps them: in reverse start order (the most
/// recently started first), a restarted child keeping its place; for a dynamic
/// supervisor too.
#[test]
fn which_children_lists_the_most_recently_started_child_first() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("a"))
        .child(tracker.spec("b"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    tracker.expect_started("b");
    sup.start_child(tracker.spec("c")).unwrap();
    tracker.expect_started("c");
    assert_eq!(child_ids(&sup), ["c", "b", "a"]);
    let a = child_pid(&sup, "a");
    kill_with(&rt, &a, ExitReason::error("crash"));
    tracker.expect_started("a");
    assert_eq!(child_ids(&sup), ["c", "b", "a"]);
    let dynamic = otp_threads::DynamicSupervisor::new().start(&rt).unwrap();
    let started: Vec<_> = ["x", "y", "z"]
        .into_iter()
        .map(|id| dynamic.start_child(tracker.spec(id)).unwrap())
        .collect();
    let listed: Vec<_> = dynamic
        .which_children()
        .unwrap()
        .into_iter()
        .map(|child| child.state.pid().unwrap())
        .collect();
    assert_eq!(listed, started.into_iter().rev().collect::<Vec<_>>());
    rt.shutdown(WAIT).unwrap();
}

/// Handles that follow restarts (the request behind `{via, …}` names and every actor
/// library's "actor ref by id"): one typed handle to a child by id reaches whichever
/// incarnation runs, and answers `NoProc` while none does.
#[test]
fn a_child_handle_follows_restarts_and_says_noproc_while_the_child_is_not_running() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .child(tracker.spec("member"))
        .start(&rt)
        .unwrap();
    let first = tracker.expect_started("member");
    let member = sup.child::<Member>("member");
    assert_eq!(member.id(), "member");
    assert_eq!(member.call(Order::Ping), Ok(first));
    // Restarted after a crash: the same handle reaches the new incarnation.
    kill_with(&rt, &first, ExitReason::error("crash"));
    let second = tracker.expect_started("member");
    assert_eq!(member.call(Order::Ping), Ok(second));
    assert_eq!(member.pid(), Ok(second));
    // Not running: NoProc, and casts are dropped.
    // (terminate_child returns once the child is dead.)
    sup.terminate_child("member").unwrap();
    assert_eq!(member.call(Order::Ping), Err(Error::NoProc));
    assert_eq!(member.try_cast(Order::Ping), Err(Error::NoProc));
    member.cast(Order::Ping);
    // Running again after restart_child; a clone shares nothing but keeps working.
    let third = sup.restart_child("member").unwrap();
    tracker.expect_started("member");
    assert_eq!(member.clone().call(Order::Ping), Ok(third));
    // An unknown id is NoProc; a child of another type is WrongWorkerType.
    assert_eq!(sup.child::<Member>("nobody").pid(), Err(Error::NoProc));
    struct Other;
    impl otp_threads::Worker for Other {
        type Call = ();
        type Reply = ();
        type Cast = ();
        type Info = ();
        type Continue = ();
    }
    assert_eq!(
        sup.child::<Other>("member").pid(),
        Err(Error::WrongWorkerType(third))
    );
    // The supervisor gone: NoProc.
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(member.call(Order::Ping), Err(Error::NoProc));
    rt.shutdown(WAIT).unwrap();
}
