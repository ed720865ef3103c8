//! No leaked threads: a supervision tree of 1,000 workers (nested supervisors and a
//! dynamic supervisor), with some restarts, shut down in order, leaves the OS
//! process's thread count (`/proc/self/task`) where it was before the runtime
//! started. One test in its own binary, so that no other test's threads interfere.

#[path = "support/supervision.rs"]
mod supervision;

use std::sync::Arc;

use otp_threads::supervisor::{ChildSpec, DynamicSupervisor, Strategy, Supervisor};
use otp_threads::{DynamicSupervisorRef, ExitReason, Runtime, SupervisorRef};
use supervision::*;

const BRANCHES: usize = 9;
const LEAVES_PER_BRANCH: usize = 100;
const DYNAMIC_LEAVES: usize = 100;

use otp_threads_testkit::os_thread_count;

#[test]
fn a_tree_of_a_thousand_workers_leaves_no_thread_behind() {
    let before = os_thread_count();
    let rt = Runtime::builder().stack_size(256 * 1024).build().unwrap();
    let tracker = Arc::new(Tracker::new());
    let mut top =
        Supervisor::new(Strategy::OneForOne).intensity(100, std::time::Duration::from_secs(5));
    for branch in 0..BRANCHES {
        let tracker = tracker.clone();
        top = top.child(ChildSpec::supervisor(
            format!("branch-{branch}"),
            move || {
                Supervisor::new(Strategy::OneForOne).children(
                    (0..LEAVES_PER_BRANCH)
                        .map(|leaf| tracker.spec(&format!("leaf-{branch}-{leaf}"))),
                )
            },
        ));
    }
    top = top.child(ChildSpec::dynamic_supervisor("pool", || {
        DynamicSupervisor::new().name("pool")
    }));
    let top = top.start(&rt).unwrap();
    let pool = DynamicSupervisorRef::whereis(&rt, "pool").unwrap();
    for _ in 0..DYNAMIC_LEAVES {
        pool.start_child(tracker.spec("pooled")).unwrap();
    }
    let workers = BRANCHES * LEAVES_PER_BRANCH + DYNAMIC_LEAVES;
    // Workers, plus the top, the branches and the pool.
    assert_eq!(rt.process_count(), workers + BRANCHES + 2);
    assert!(os_thread_count() >= before + workers);

    // Some restarts on the way: a leaf, a whole branch, a pooled worker.
    let branch: SupervisorRef = rt
        .worker_ref(&child_pid(&top, "branch-0"))
        .map(SupervisorRef::from)
        .unwrap();
    kill_with(
        &rt,
        &child_pid(&branch, "leaf-0-0"),
        ExitReason::error("crash"),
    );
    kill_with(&rt, &child_pid(&top, "branch-1"), ExitReason::Kill);
    let pooled = pool.which_children().unwrap()[0].state.pid().unwrap();
    kill_with(&rt, &pooled, ExitReason::error("crash"));
    eventually("the tree is whole again", || {
        rt.process_count() == workers + BRANCHES + 2
    });

    top.stop(ExitReason::Shutdown, WAIT).unwrap();
    assert_eq!(rt.process_count(), 0);
    rt.shutdown(WAIT).unwrap();
    eventually("the thread count is back where it started", || {
        os_thread_count() == before
    });
}
