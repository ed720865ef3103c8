//! The scale ceiling (issue: a thread per worker has a ceiling BEAM does not): the
//! runtime's `max_workers` setting, and the typed system-limit error that replaces a
//! misleading `InitFailed` when no thread can be had. Erlang's analogue is the
//! `system_limit` error of `spawn` at `+P` processes; as there, nothing is left
//! half-started. Tested by lowering the runtime's maximum, not by exhausting the machine.

use otp_threads::{Context, Error, ReplyTo, Runtime, Step, SystemLimit, Worker};
use otp_threads_testkit::{WAIT, eventually};

/// Answers every call.
struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_call(&mut self, _: (), reply: ReplyTo<()>, _: &mut Context<Self>) -> Step<Self> {
        reply.reply(());
        Step::Next
    }
}

#[test]
fn a_spawn_beyond_max_workers_is_a_system_limit_error_that_starts_nothing() {
    let rt = Runtime::builder().max_workers(3).build().unwrap();
    let workers: Vec<_> = (0..3).map(|_| rt.spawn_worker(Idle).unwrap()).collect();
    let processes = rt.process_count();
    let threads = rt.thread_count();

    let refused = rt.spawn_named("fourth", Idle).err();
    assert_eq!(
        refused,
        Some(Error::SystemLimit(SystemLimit::MaxWorkers { limit: 3 }))
    );
    // Nothing half-started: no process, no name, no thread.
    assert_eq!(rt.process_count(), processes);
    assert_eq!(rt.whereis("fourth"), None);
    assert_eq!(rt.thread_count(), threads);
    // The runtime keeps working at the ceiling.
    assert_eq!(workers[0].call(()), Ok(()));

    drop(workers);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_worker_that_exits_gives_its_place_back() {
    let rt = Runtime::builder().max_workers(1).build().unwrap();
    let only = rt.spawn_worker(Idle).unwrap();
    assert!(matches!(
        rt.spawn_worker(Idle),
        Err(Error::SystemLimit(SystemLimit::MaxWorkers { limit: 1 }))
    ));
    only.stop(otp_threads::ExitReason::Normal, WAIT).unwrap();
    // The place comes back once the worker's thread is free, just after its DOWN.
    let mut replacement = None;
    eventually("a spawn succeeds again", || {
        replacement = rt.spawn_worker(Idle).ok();
        replacement.is_some()
    });
    assert_eq!(replacement.unwrap().call(()), Ok(()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn plain_thread_processes_do_not_count_against_max_workers() {
    let rt = Runtime::builder().max_workers(1).build().unwrap();
    let process = rt.handle().process::<()>().unwrap();
    let worker = process.spawn(Idle).unwrap();
    assert_eq!(worker.call(()), Ok(()));
    drop(process);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn max_workers_of_zero_is_rejected_naming_the_option() {
    match Runtime::builder().max_workers(0).build() {
        Err(Error::InvalidOption { option, .. }) => assert_eq!(option, "max_workers"),
        other => panic!("expected InvalidOption, got {:?}", other.err()),
    }
}
