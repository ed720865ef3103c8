//! Dynamic supervisors. Ports the rules checked by OTP's `supervisor_SUITE` group
//! `restart_simple_one_for_one` (`simple_one_for_one`,
//! `simple_one_for_one_escalation`) and the cases `child_adm_simple` and
//! `sup_start_map_simple`, with Elixir's `DynamicSupervisor` additions (children from
//! any spec, `max_children`), as documented by `supervisor` (and its
//! `terminate_dynamic_children`): children are started at run time, stopped by pid,
//! and on stop all are told at once and awaited under one deadline. Each test names
//! its OTP case; no OTP code is copied.

#[path = "support/supervision.rs"]
mod supervision;

use std::time::Duration;

use otp_threads::supervisor::{
    ChildSpec, ChildState, DynamicSupervisor, DynamicSupervisorRef, Restart, Shutdown, Strategy,
    Supervisor, SupervisorError,
};
use otp_threads::{ExitReason, Runtime};
use supervision::*;

fn running(sup: &DynamicSupervisorRef) -> Vec<otp_threads::Pid> {
    sup.which_children()
        .unwrap()
        .into_iter()
        .filter_map(|child| child.state.pid())
        .collect()
}

/// `child_adm_simple`: children are started at run time; several may share a spec id.
#[test]
fn start_child_starts_children_at_run_time() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = DynamicSupervisor::new().start(&rt).unwrap();
    assert!(sup.which_children().unwrap().is_empty());
    let first = sup.start_child(tracker.spec("conn")).unwrap();
    let second = sup.start_child(tracker.spec("conn")).unwrap();
    assert_eq!(tracker.expect_started("conn"), first);
    assert_eq!(tracker.expect_started("conn"), second);
    let mut pids = running(&sup);
    pids.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(pids, expected);
    let counts = sup.count_children().unwrap();
    assert_eq!((counts.specs, counts.active, counts.workers), (2, 2, 2));
    rt.shutdown(WAIT).unwrap();
}

/// `child_adm_simple`: `terminate_child(pid)` stops the child and forgets it; an
/// unknown pid is `not_found`.
#[test]
fn terminate_child_by_pid_stops_and_forgets_it() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = DynamicSupervisor::new().start(&rt).unwrap();
    let pid = sup.start_child(tracker.trapping_spec("conn")).unwrap();
    tracker.expect_started("conn");
    sup.terminate_child(&pid).unwrap();
    assert_eq!(tracker.expect_terminated("conn"), ExitReason::Shutdown);
    assert!(sup.which_children().unwrap().is_empty());
    assert!(matches!(
        sup.terminate_child(&pid),
        Err(SupervisorError::NotFound { .. })
    ));
    rt.shutdown(WAIT).unwrap();
}

/// Elixir's `max_children`: starting beyond it is refused.
#[test]
fn max_children_limits_the_children() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = DynamicSupervisor::new().max_children(2).start(&rt).unwrap();
    let first = sup.start_child(tracker.spec("c")).unwrap();
    sup.start_child(tracker.spec("c")).unwrap();
    assert_eq!(
        sup.start_child(tracker.spec("c")).unwrap_err(),
        SupervisorError::MaxChildren { max: 2 }
    );
    sup.terminate_child(&first).unwrap();
    sup.start_child(tracker.spec("c")).unwrap();
    rt.shutdown(WAIT).unwrap();
}

/// `simple_one_for_one`: a crashed permanent child is restarted alone (new pid); a
/// temporary one is forgotten; a transient one that exits normally is forgotten.
#[test]
fn dynamic_children_are_restarted_by_their_restart_type() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = DynamicSupervisor::new().start(&rt).unwrap();
    let permanent = sup.start_child(tracker.spec("permanent")).unwrap();
    let temporary = sup
        .start_child(tracker.spec("temporary").restart(Restart::Temporary))
        .unwrap();
    let transient = sup
        .start_child(tracker.spec("transient").restart(Restart::Transient))
        .unwrap();
    for id in ["permanent", "temporary", "transient"] {
        tracker.expect_started(id);
    }
    kill_with(&rt, &permanent, ExitReason::error("crash"));
    let replacement = tracker.expect_started("permanent");
    kill_with(&rt, &temporary, ExitReason::error("crash"));
    stop_member(&rt, &transient, ExitReason::Normal);
    assert_eq!(tracker.expect_terminated("transient"), ExitReason::Normal);
    let children = sup.which_children().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].id, "permanent");
    assert_eq!(children[0].state, ChildState::Running(replacement));
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `terminate_dynamic_children`: on stop every child is told at once (all of them are
/// in their `terminate` before any finishes), then they are awaited together.
#[test]
fn stop_tells_all_children_at_once_then_awaits_them() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let sup = DynamicSupervisor::new().start(&rt).unwrap();
    for _ in 0..3 {
        sup.start_child(
            tracker
                .stalling_spec("slow", released.clone())
                .shutdown(Shutdown::Timeout(WAIT * 3)),
        )
        .unwrap();
        tracker.expect_started("slow");
    }
    let stopper = {
        let sup = sup.clone();
        std::thread::spawn(move || sup.stop(ExitReason::Shutdown, WAIT * 3))
    };
    // One by one, the second would not be told before the first finished.
    for _ in 0..3 {
        assert_eq!(tracker.next(), Seen::Stalled { id: "slow".into() });
    }
    assert!(sup.is_alive());
    drop(release);
    for _ in 0..3 {
        assert_eq!(tracker.expect_terminated("slow"), ExitReason::Shutdown);
    }
    stopper.join().unwrap().unwrap();
    rt.shutdown(WAIT).unwrap();
}

/// `terminate_dynamic_children`: children still running when the group's deadline
/// passes are killed, all of them.
#[test]
fn children_outliving_the_group_deadline_are_killed() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let sup = DynamicSupervisor::new().start(&rt).unwrap();
    let mut downs = Vec::new();
    for _ in 0..3 {
        let pid = sup
            .start_child(
                tracker
                    .stalling_spec("stubborn", released.clone())
                    .shutdown(Shutdown::Timeout(Duration::from_millis(100))),
            )
            .unwrap();
        downs.push(rt.monitor(&pid));
    }
    // And one that goes quietly, killed at once.
    let quiet = sup
        .start_child(tracker.spec("quiet").shutdown(Shutdown::BrutalKill))
        .unwrap();
    downs.push(rt.monitor(&quiet));
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    for down in downs {
        assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    }
    drop(release);
    rt.shutdown(WAIT).unwrap();
}

/// `simple_one_for_one_escalation`: exceeding the intensity stops the dynamic
/// supervisor with `Shutdown`, and all its children.
#[test]
fn dynamic_intensity_exceeded_stops_the_supervisor_with_shutdown() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = DynamicSupervisor::new()
        .intensity(1, Duration::from_secs(60))
        .start(&rt)
        .unwrap();
    let a = sup.start_child(tracker.spec("a")).unwrap();
    let b = sup.start_child(tracker.spec("b")).unwrap();
    tracker.expect_started("a");
    tracker.expect_started("b");
    let sup_down = rt.monitor(&sup.pid());
    kill_with(&rt, &a, ExitReason::error("crash"));
    let a2 = tracker.expect_started("a");
    kill_with(&rt, &a2, ExitReason::error("crash"));
    assert_eq!(sup_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    assert!(!rt.is_alive(&b));
    rt.shutdown(WAIT).unwrap();
}

/// `sup_start_map_simple` / `tree`: a dynamic supervisor nests in a supervisor, is
/// found by name, and is restarted with no children when it dies.
#[test]
fn a_named_dynamic_supervisor_nests_in_a_supervisor() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let top = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::dynamic_supervisor("pool", || {
            DynamicSupervisor::new().name("pool")
        }))
        .start(&rt)
        .unwrap();
    let pool = DynamicSupervisorRef::whereis(&rt, "pool").unwrap();
    assert_eq!(child_pid(&top, "pool"), pool.pid());
    let worker = pool.start_child(tracker.spec("w")).unwrap();
    // A supervisor traps exits: an exit signal from a stranger is ignored...
    rt.exit(&pool.pid(), ExitReason::error("stranger"));
    assert_eq!(pool.which_children().unwrap().len(), 1);
    // ...but a kill is not.
    assert_eq!(
        kill_with(&rt, &pool.pid(), ExitReason::Kill),
        ExitReason::Killed
    );
    // The pool's worker went with it (linked, not trapping).
    assert!(!rt.is_alive(&worker));
    // Served after `top` handled the pool's EXIT (and restarted it).
    let restarted = child_pid(&top, "pool");
    let new_pool = DynamicSupervisorRef::whereis(&rt, "pool").unwrap();
    assert_eq!(new_pool.pid(), restarted);
    assert_ne!(new_pool.pid(), pool.pid());
    assert!(new_pool.which_children().unwrap().is_empty());
    rt.shutdown(WAIT).unwrap();
}

/// A worker whose `init/1` returns `ignore`.
struct Ignoring;

impl otp_threads::Worker for Ignoring {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init_outcome(
        &mut self,
        _: &mut otp_threads::Context<Self>,
    ) -> otp_threads::InitOutcome<Self> {
        otp_threads::InitOutcome::Ignore
    }
}

/// `start_child` of a dynamic (`simple_one_for_one`) supervisor whose child answers
/// `ignore` returns `{ok, undefined}` (here `SupervisorError::Ignored`) and keeps
/// nothing.
#[test]
fn a_dynamic_supervisor_returns_ignored_and_keeps_no_child() {
    let rt = Runtime::new();
    let sup = DynamicSupervisor::new().start(&rt).unwrap();
    assert_eq!(
        sup.start_child(ChildSpec::worker("ignored", || Ignoring)),
        Err(SupervisorError::Ignored {
            id: "ignored".into()
        })
    );
    assert!(sup.which_children().unwrap().is_empty());
    assert_eq!(sup.count_children().unwrap().specs, 0);
    rt.shutdown(WAIT).unwrap();
}
