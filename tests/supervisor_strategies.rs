//! Restart strategies, restart intensity, escalation and failed restarts. Ports the
//! rules checked by OTP's `supervisor_SUITE` groups `restart_one_for_one`
//! (`one_for_one`, `one_for_one_escalation`), `restart_one_for_all` (`one_for_all`,
//! `one_for_all_escalation`, `one_for_all_other_child_fails_restart`),
//! `restart_rest_for_one` (`rest_for_one`, `rest_for_one_escalation`,
//! `rest_for_one_other_child_fails_restart`), and the cases `tree`,
//! `multiple_restarts` and `hanging_restart_loop`, as the `supervisor` module
//! documentation states them (strategies; more than `intensity` restarts within
//! `period` stop the supervisor with `shutdown`; a failed restart is retried through a
//! message to itself, each try counting against the intensity). Each test names its
//! OTP case; no OTP code is copied.

#[path = "support/supervision.rs"]
mod supervision;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use otp_threads::supervisor::{
    ChildSpec, ChildState, Strategy, Supervisor, SupervisorError, SupervisorRef,
};
use otp_threads::{Error, ExitReason, Runtime};
use supervision::*;

const MINUTE: Duration = Duration::from_secs(60);

fn crash(rt: &Runtime, sup: &SupervisorRef, id: &str) {
    let pid = child_pid(sup, id);
    let reason = ExitReason::error("crash");
    assert_eq!(kill_with(rt, &pid, reason.clone()), reason);
}

/// `one_for_one`: only the failed child is restarted.
#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .children(["a", "b", "c"].map(|id| tracker.trapping_spec(id)))
        .start(&rt)
        .unwrap();
    let a = tracker.expect_started("a");
    let b = tracker.expect_started("b");
    let c = tracker.expect_started("c");
    // A trapping child obeys only its parent's exit signal; make b crash itself.
    stop_member(&rt, &b, ExitReason::error("crash"));
    assert_eq!(tracker.expect_terminated("b"), ExitReason::error("crash"));
    let b2 = tracker.expect_started("b");
    assert_ne!(b, b2);
    assert_eq!(child_pid(&sup, "a"), a);
    assert_eq!(child_pid(&sup, "b"), b2);
    assert_eq!(child_pid(&sup, "c"), c);
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `one_for_all`: every other child is stopped (last started first), then all are
/// started again in order.
#[test]
fn one_for_all_restarts_every_child() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForAll)
        .children(["a", "b", "c"].map(|id| tracker.trapping_spec(id)))
        .start(&rt)
        .unwrap();
    let before: Vec<_> = ["a", "b", "c"].map(|id| tracker.expect_started(id)).into();
    stop_member(&rt, &before[1], ExitReason::error("crash"));
    assert_eq!(tracker.expect_terminated("b"), ExitReason::error("crash"));
    assert_eq!(tracker.expect_terminated("c"), ExitReason::Shutdown);
    assert_eq!(tracker.expect_terminated("a"), ExitReason::Shutdown);
    let after: Vec<_> = ["a", "b", "c"].map(|id| tracker.expect_started(id)).into();
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old, new);
    }
    assert_eq!(child_pid(&sup, "a"), after[0]);
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `rest_for_one`: the failed child and those started after it are restarted.
#[test]
fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::RestForOne)
        .children(["a", "b", "c"].map(|id| tracker.trapping_spec(id)))
        .start(&rt)
        .unwrap();
    let a = tracker.expect_started("a");
    let b = tracker.expect_started("b");
    tracker.expect_started("c");
    stop_member(&rt, &b, ExitReason::error("crash"));
    assert_eq!(tracker.expect_terminated("b"), ExitReason::error("crash"));
    assert_eq!(tracker.expect_terminated("c"), ExitReason::Shutdown);
    tracker.expect_started("b");
    tracker.expect_started("c");
    assert_eq!(child_pid(&sup, "a"), a);
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `*_escalation`: one restart more than the intensity allows within the period stops
/// the supervisor with `Shutdown`, and its children with it.
fn escalation(strategy: Strategy) {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(strategy)
        .intensity(1, MINUTE)
        .child(tracker.spec("a"))
        .child(tracker.spec("b"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    tracker.expect_started("b");
    let sup_down = rt.monitor(&sup.pid());
    crash(&rt, &sup, "a");
    let survivor = child_pid(&sup, "b");
    crash(&rt, &sup, "a");
    assert_eq!(sup_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    assert!(!rt.is_alive(&survivor));
    assert_eq!(rt.process_count(), 0);
    rt.shutdown(WAIT).unwrap();
}

/// `one_for_one_escalation`
#[test]
fn one_for_one_intensity_exceeded_stops_the_supervisor_with_shutdown() {
    escalation(Strategy::OneForOne);
}

/// `one_for_all_escalation`
#[test]
fn one_for_all_intensity_exceeded_stops_the_supervisor_with_shutdown() {
    escalation(Strategy::OneForAll);
}

/// `rest_for_one_escalation`
#[test]
fn rest_for_one_intensity_exceeded_stops_the_supervisor_with_shutdown() {
    escalation(Strategy::RestForOne);
}

/// `multiple_restarts`: restarts within the intensity are all served, across children.
#[test]
fn restarts_within_the_intensity_are_all_served() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(30, Duration::from_secs(5))
        .child(tracker.spec("a"))
        .child(tracker.spec("b"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    tracker.expect_started("b");
    for round in 0..30 {
        let id = if round % 2 == 0 { "a" } else { "b" };
        crash(&rt, &sup, id);
        tracker.expect_started(id);
    }
    assert!(sup.is_alive());
    rt.shutdown(WAIT).unwrap();
}

/// `tree`: a nested supervisor that exceeds its intensity exits with `Shutdown`; its
/// parent supervisor restarts it, with fresh children (escalation up the tree).
#[test]
fn intensity_exceeded_escalates_to_the_parent_supervisor() {
    let rt = Runtime::new();
    let tracker = Arc::new(Tracker::new());
    let inner_tracker = tracker.clone();
    let outer = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("sibling"))
        .child(ChildSpec::supervisor("inner", move || {
            Supervisor::new(Strategy::OneForOne)
                .intensity(0, MINUTE)
                .child(inner_tracker.spec("leaf"))
        }))
        .start(&rt)
        .unwrap();
    let sibling = tracker.expect_started("sibling");
    let leaf = tracker.expect_started("leaf");
    let inner = child_pid(&outer, "inner");
    let inner_down = rt.monitor(&inner);
    kill_with(&rt, &leaf, ExitReason::error("crash"));
    assert_eq!(inner_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    let new_leaf = tracker.expect_started("leaf");
    let new_inner: SupervisorRef = rt
        .worker_ref(&child_pid(&outer, "inner"))
        .map(SupervisorRef::from)
        .unwrap();
    assert_ne!(new_inner.pid(), inner);
    assert_eq!(child_pid(&new_inner, "leaf"), new_leaf);
    assert_eq!(child_pid(&outer, "sibling"), sibling);
    rt.shutdown(WAIT).unwrap();
}

/// `tree`: escalation goes on up: when the top supervisor exceeds its intensity too,
/// the whole tree stops.
#[test]
fn escalation_through_every_level_stops_the_whole_tree() {
    let rt = Runtime::new();
    let tracker = Arc::new(Tracker::new());
    let inner_tracker = tracker.clone();
    let outer = Supervisor::new(Strategy::OneForOne)
        .intensity(0, MINUTE)
        .child(tracker.spec("sibling"))
        .child(ChildSpec::supervisor("inner", move || {
            Supervisor::new(Strategy::OneForOne)
                .intensity(0, MINUTE)
                .child(inner_tracker.spec("leaf"))
        }))
        .start(&rt)
        .unwrap();
    tracker.expect_started("sibling");
    let leaf = tracker.expect_started("leaf");
    let outer_down = rt.monitor(&outer.pid());
    kill_with(&rt, &leaf, ExitReason::error("crash"));
    assert_eq!(outer_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    eventually("the tree is gone", || rt.process_count() == 0);
    rt.shutdown(WAIT).unwrap();
}

/// A start function that fails while `open` is false, counting its attempts.
fn gated_spec(id: &str, open: Arc<AtomicBool>, attempts: Arc<AtomicUsize>) -> ChildSpec {
    ChildSpec::new(id, move |ctx| {
        attempts.fetch_add(1, Ordering::AcqRel);
        if open.load(Ordering::Acquire) {
            ctx.spawn_link(Idle).map(|child| child.pid())
        } else {
            // Keeps the retry loop from spinning flat out while the test looks.
            std::thread::sleep(Duration::from_millis(1));
            Err(Error::InitFailed(ExitReason::error("gate closed")))
        }
    })
}

/// A worker that does nothing.
struct Idle;

impl otp_threads::Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_call(
        &mut self,
        _: (),
        reply: otp_threads::ReplyTo<()>,
        _: &mut otp_threads::Context<Self>,
    ) -> otp_threads::Step<Self> {
        reply.reply(());
        otp_threads::Step::Next
    }
}

/// `hanging_restart_loop` (and `try_again_restart`): a failed restart does not block
/// the supervisor: it marks the child restarting, keeps answering calls, and retries
/// until the start succeeds.
#[test]
fn a_failed_restart_is_retried_while_the_supervisor_keeps_answering() {
    let rt = Runtime::new();
    let open = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(u32::MAX, MINUTE)
        .child(gated_spec("flaky", open.clone(), attempts.clone()))
        .start(&rt)
        .unwrap();
    let first = child_pid(&sup, "flaky");
    open.store(false, Ordering::Release);
    kill_with(&rt, &first, ExitReason::error("crash"));
    // Served after the EXIT: the first restart has failed.
    assert_eq!(child_state(&sup, "flaky"), Some(ChildState::Restarting));
    let counts = sup.count_children().unwrap();
    assert_eq!((counts.specs, counts.active), (1, 0));
    let seen = attempts.load(Ordering::Acquire);
    eventually("the supervisor retried", || {
        attempts.load(Ordering::Acquire) > seen + 2
    });
    assert_eq!(child_state(&sup, "flaky"), Some(ChildState::Restarting));
    open.store(true, Ordering::Release);
    eventually("the child runs again", || {
        matches!(child_state(&sup, "flaky"), Some(ChildState::Running(_)))
    });
    assert_ne!(child_pid(&sup, "flaky"), first);
    rt.shutdown(WAIT).unwrap();
}

/// `try_again_restart`: each retry counts against the intensity; a child that never
/// starts again stops the supervisor once the intensity is exceeded.
#[test]
fn each_failed_restart_counts_against_the_intensity() {
    let rt = Runtime::new();
    let open = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(3, MINUTE)
        .child(gated_spec("doomed", open.clone(), attempts.clone()))
        .start(&rt)
        .unwrap();
    let first = child_pid(&sup, "doomed");
    let sup_down = rt.monitor(&sup.pid());
    open.store(false, Ordering::Release);
    kill_with(&rt, &first, ExitReason::error("crash"));
    assert_eq!(sup_down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    // The boot start, then three restarts allowed by the intensity (the first try and
    // two retries); the fourth restart exceeds it before any start.
    assert_eq!(attempts.load(Ordering::Acquire), 4);
    rt.shutdown(WAIT).unwrap();
}

/// `one_for_all_other_child_fails_restart`: when another child's start fails during a
/// one-for-all restart, it is retried (with the strategy) and the group comes back.
#[test]
fn one_for_all_other_child_failing_its_restart_is_retried() {
    other_child_fails_restart(Strategy::OneForAll);
}

/// `rest_for_one_other_child_fails_restart`
#[test]
fn rest_for_one_other_child_failing_its_restart_is_retried() {
    other_child_fails_restart(Strategy::RestForOne);
}

fn other_child_fails_restart(strategy: Strategy) {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(strategy)
        .intensity(10, MINUTE)
        .child(tracker.spec("a"))
        .child(tracker.spec("b"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    tracker.expect_started("b");
    tracker.fail_next_starts_of("b", 1);
    crash(&rt, &sup, "a");
    eventually("both children run again", || {
        sup.which_children()
            .unwrap()
            .iter()
            .all(|child| matches!(child.state, ChildState::Running(_)))
    });
    assert!(sup.is_alive());
    assert_eq!(child_ids(&sup), ["b", "a"]);
    rt.shutdown(WAIT).unwrap();
}

/// `sup_start_restart_child_returns_error`: a supervisor that is gone answers nothing.
#[test]
fn calls_to_a_stopped_supervisor_fail_with_noproc() {
    let rt = Runtime::new();
    let sup = Supervisor::new(Strategy::OneForOne).start(&rt).unwrap();
    sup.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(
        sup.which_children().unwrap_err(),
        SupervisorError::Call(Error::NoProc)
    );
    rt.shutdown(WAIT).unwrap();
}

/// `add_restart/1` reads `erlang:monotonic_time/1`; a runtime on a manual clock makes
/// the window exact: a restart falls out of the window once the clock has moved past
/// the period, and however long the real time between two crashes, they are in one
/// window while the clock stands still.
#[test]
fn restart_intensity_windows_follow_the_manual_clock() {
    let clock = otp_threads::ManualClock::new();
    let rt = Runtime::builder().manual_clock(&clock).build().unwrap();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(5))
        .child(tracker.spec("a"))
        .start(&rt)
        .unwrap();
    tracker.expect_started("a");
    crash(&rt, &sup, "a");
    tracker.expect_started("a");
    // Six seconds later the first restart is out of the window.
    clock.advance(Duration::from_secs(6));
    crash(&rt, &sup, "a");
    tracker.expect_started("a");
    assert!(sup.is_alive());
    // The clock stands still: a second restart within the period is one too many.
    let down = rt.monitor(&sup.pid());
    crash(&rt, &sup, "a");
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Shutdown);
    rt.shutdown(WAIT).unwrap();
}
