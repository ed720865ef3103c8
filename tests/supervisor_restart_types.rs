//! Restart types × exit reasons. Ports the rules checked by OTP's `supervisor_SUITE`
//! groups `normal_termination` (`permanent_normal`, `transient_normal`,
//! `temporary_normal`), `shutdown_termination` (`permanent_shutdown`,
//! `transient_shutdown`, `temporary_shutdown`), `abnormal_termination`
//! (`permanent_abnormal`, `transient_abnormal`, `temporary_abnormal`), and the case
//! `temporary_bystander`, as the `supervisor` module documentation states them: a
//! permanent child is always restarted; a transient one only after an abnormal exit
//! (`normal`, `shutdown` and `{shutdown, Term}` are normal); a temporary one never,
//! and its spec is removed. Each test names its OTP case; no OTP code is copied.

#[path = "support/supervision.rs"]
mod supervision;

use otp_threads::supervisor::{ChildState, Restart, Strategy, Supervisor, SupervisorRef};
use otp_threads::{ExitReason, Runtime};
use supervision::*;

/// How the child ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// It stops itself with `Normal`.
    Normal,
    /// It gets a `Shutdown` exit signal.
    Shutdown,
    /// It stops itself with `ShutdownWith(detail)`.
    ShutdownWith,
    /// It gets an abnormal exit signal.
    Abnormal,
}

/// What the supervisor must do afterwards.
#[derive(Debug, PartialEq)]
enum Expect {
    Restarted,
    /// Not restarted, spec kept (`undefined` pid).
    Kept,
    /// Not restarted, spec removed.
    Removed,
}

fn end_child(rt: &Runtime, tracker: &Tracker, sup: &SupervisorRef, ending: Ending) {
    let pid = child_pid(sup, "child");
    let stop_itself = |reason: ExitReason| {
        stop_member(rt, &pid, reason.clone());
        // A worker stopping itself runs its terminate.
        assert_eq!(tracker.expect_terminated("child"), reason);
    };
    match ending {
        Ending::Normal => stop_itself(ExitReason::Normal),
        Ending::ShutdownWith => stop_itself(ExitReason::shutdown_with("rebalance")),
        Ending::Shutdown => {
            assert_eq!(
                kill_with(rt, &pid, ExitReason::Shutdown),
                ExitReason::Shutdown
            )
        }
        Ending::Abnormal => {
            let reason = ExitReason::error("abnormal");
            assert_eq!(kill_with(rt, &pid, reason.clone()), reason)
        }
    }
}

fn check(restart: Restart, ending: Ending, expect: Expect) {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("child").restart(restart))
        .start(&rt)
        .unwrap();
    let first = tracker.expect_started("child");
    end_child(&rt, &tracker, &sup, ending);
    // The child's EXIT reached the supervisor before its DOWN reached us, so this call
    // is served after the supervisor handled it.
    let state = child_state(&sup, "child");
    match expect {
        Expect::Restarted => {
            let second = tracker.expect_started("child");
            assert_ne!(first, second);
            assert_eq!(state, Some(ChildState::Running(second)));
        }
        Expect::Kept => assert_eq!(state, Some(ChildState::Terminated)),
        Expect::Removed => assert_eq!(state, None),
    }
    tracker.assert_quiet();
    assert!(sup.is_alive());
    rt.shutdown(WAIT).unwrap();
}

/// `permanent_normal`
#[test]
fn permanent_child_exiting_normal_is_restarted() {
    check(Restart::Permanent, Ending::Normal, Expect::Restarted);
}

/// `transient_normal`
#[test]
fn transient_child_exiting_normal_is_not_restarted() {
    check(Restart::Transient, Ending::Normal, Expect::Kept);
}

/// `temporary_normal`
#[test]
fn temporary_child_exiting_normal_is_not_restarted_and_removed() {
    check(Restart::Temporary, Ending::Normal, Expect::Removed);
}

/// `permanent_shutdown`
#[test]
fn permanent_child_exiting_shutdown_is_restarted() {
    check(Restart::Permanent, Ending::Shutdown, Expect::Restarted);
}

/// `transient_shutdown`
#[test]
fn transient_child_exiting_shutdown_is_not_restarted() {
    check(Restart::Transient, Ending::Shutdown, Expect::Kept);
}

/// `transient_shutdown`, with a detail: `{shutdown, Term}` is a normal exit too.
#[test]
fn transient_child_exiting_shutdown_with_a_detail_is_not_restarted() {
    check(Restart::Transient, Ending::ShutdownWith, Expect::Kept);
}

/// `permanent_shutdown`, with a detail.
#[test]
fn permanent_child_exiting_shutdown_with_a_detail_is_restarted() {
    check(Restart::Permanent, Ending::ShutdownWith, Expect::Restarted);
}

/// `temporary_shutdown`
#[test]
fn temporary_child_exiting_shutdown_is_not_restarted_and_removed() {
    check(Restart::Temporary, Ending::Shutdown, Expect::Removed);
}

/// `permanent_abnormal`
#[test]
fn permanent_child_exiting_abnormally_is_restarted() {
    check(Restart::Permanent, Ending::Abnormal, Expect::Restarted);
}

/// `transient_abnormal`
#[test]
fn transient_child_exiting_abnormally_is_restarted() {
    check(Restart::Transient, Ending::Abnormal, Expect::Restarted);
}

/// `temporary_abnormal`
#[test]
fn temporary_child_exiting_abnormally_is_not_restarted_and_removed() {
    check(Restart::Temporary, Ending::Abnormal, Expect::Removed);
}

/// `abnormal_termination`: a killed child (reason `Killed`) is an abnormal exit.
#[test]
fn transient_child_killed_is_restarted() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(tracker.spec("child").restart(Restart::Transient))
        .start(&rt)
        .unwrap();
    let first = tracker.expect_started("child");
    assert_eq!(kill_with(&rt, &first, ExitReason::Kill), ExitReason::Killed);
    let second = tracker.expect_started("child");
    assert_eq!(child_pid(&sup, "child"), second);
    rt.shutdown(WAIT).unwrap();
}

/// `temporary_bystander`: a temporary child terminated because a sibling died under
/// `one_for_all` is not restarted, and its spec is removed.
#[test]
fn temporary_bystander_is_not_restarted_by_a_siblings_death() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::OneForAll)
        .child(tracker.spec("bystander").restart(Restart::Temporary))
        .child(tracker.spec("victim"))
        .start(&rt)
        .unwrap();
    let bystander = tracker.expect_started("bystander");
    let victim = tracker.expect_started("victim");
    let bystander_down = rt.monitor(&bystander);
    kill_with(&rt, &victim, ExitReason::error("crash"));
    assert_eq!(
        bystander_down.wait(WAIT).unwrap().reason,
        ExitReason::Shutdown
    );
    let restarted = tracker.expect_started("victim");
    assert_eq!(child_ids(&sup), ["victim"]);
    assert_eq!(child_pid(&sup, "victim"), restarted);
    tracker.assert_quiet();
    rt.shutdown(WAIT).unwrap();
}

/// `temporary_bystander` under `rest_for_one`: the temporary child started after the
/// failed one is stopped and removed.
#[test]
fn temporary_bystander_is_removed_under_rest_for_one() {
    let rt = Runtime::new();
    let tracker = Tracker::new();
    let sup = Supervisor::new(Strategy::RestForOne)
        .child(tracker.spec("victim"))
        .child(tracker.spec("bystander").restart(Restart::Temporary))
        .start(&rt)
        .unwrap();
    let victim = tracker.expect_started("victim");
    tracker.expect_started("bystander");
    kill_with(&rt, &victim, ExitReason::error("crash"));
    tracker.expect_started("victim");
    assert_eq!(child_ids(&sup), ["victim"]);
    rt.shutdown(WAIT).unwrap();
}
