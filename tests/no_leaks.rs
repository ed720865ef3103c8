//! Stopping a runtime joins every thread it started. One test in its own binary, so
//! that no other test's threads come and go while it counts `/proc/self/task`.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use otp_threads::{Error, ExitReason, Runtime};
use otp_threads_testkit::settles_at_thread_count;

#[test]
fn shutdown_joins_every_thread_and_reports_threads_it_cannot_join() {
    let before = os_thread_count();

    // 1,000 linked and monitoring workers, some trapping exits.
    let rt = Runtime::builder().stack_size(128 * 1024).build().unwrap();
    let mut probes = Vec::new();
    for i in 0..1000 {
        let (p, events) = if i % 3 == 0 {
            trapping_probe(&rt)
        } else {
            probe(&rt)
        };
        if let Some((previous, _)) = probes.last() {
            let previous: &otp_threads::WorkerRef<Probe> = previous;
            ask(&p, Command::Monitor(previous.pid()));
        }
        probes.push((p, events));
    }
    assert_eq!(rt.process_count(), 1000);
    assert!(os_thread_count() >= before + 1000);
    rt.shutdown(WAIT).unwrap();
    settles_at_thread_count(before, "every worker thread is joined");

    // Workers killed while their threads are busy: shutdown joins them once free.
    let rt = Runtime::new();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    for _ in 0..10 {
        let (p, _) = probe(&rt);
        let (entered, inside) = crossbeam_channel::bounded(1);
        p.cast(Command::Block {
            entered,
            release: released.clone(),
        });
        inside.recv_timeout(WAIT).unwrap();
        rt.exit(&p.pid(), ExitReason::Kill);
    }
    assert_eq!(rt.zombies().len(), 10);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(release);
    });
    rt.shutdown(WAIT).unwrap();
    releaser.join().unwrap();
    settles_at_thread_count(before, "every killed worker's thread is joined");

    // A thread stuck in user code past the timeout is reported, not waited for forever.
    let rt = Runtime::new();
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (stuck, _) = probe(&rt);
    let (entered, inside) = crossbeam_channel::bounded(1);
    stuck.cast(Command::Block {
        entered,
        release: released,
    });
    inside.recv_timeout(WAIT).unwrap();
    let stuck_pid = stuck.pid();
    let result = rt.shutdown(Duration::from_millis(100));
    assert_eq!(result, Err(Error::ShutdownIncomplete(vec![stuck_pid])));
    // Released, the detached thread finishes on its own.
    drop(release);
    otp_threads_testkit::eventually("the detached thread finishes", || {
        os_thread_count() == before
    });
}
