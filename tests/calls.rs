//! Calls and casts, after `gen_server:call/3` and `gen_server:cast/2`: a call monitors
//! the callee, so that a dead callee fails it at once; a timed-out call drops its late
//! reply (OTP does this with process aliases).

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use otp_threads::{Error, ExitReason, Runtime, WorkerRef};
use otp_threads_testkit::wait_for;

#[test]
fn a_call_returns_the_reply() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    assert!(matches!(p.call(Command::Ping), Ok(Reply::Ok)));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_call_to_a_dead_worker_fails_at_once_with_noproc() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    p.stop(ExitReason::Normal, WAIT).unwrap();
    // Not the timeout: an hour would hang the test.
    assert!(matches!(
        p.call_timeout(Command::Ping, Duration::from_secs(3600)),
        Err(Error::NoProc)
    ));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_call_times_out_and_its_late_reply_is_dropped() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    let (keeper, tokens) = crossbeam_channel::unbounded();
    let result = p.call_timeout(Command::KeepReply(keeper), Duration::from_millis(20));
    assert!(matches!(result, Err(Error::Timeout)));
    let late = tokens.recv_timeout(WAIT).unwrap();
    assert!(
        !late.reply(Reply::Bool(true)),
        "nobody waits for the late reply"
    );
    // The next call gets its own reply, not the late one.
    assert!(matches!(ask(&p, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

/// OTP drops a reply to a deactivated alias; here a thread's calls share one reply
/// slot, and a late reply carries the tag of its own call.
#[test]
fn a_late_reply_arriving_during_a_later_call_is_dropped_by_its_tag() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    let (keeper, tokens) = crossbeam_channel::unbounded();
    let result = p.call_timeout(
        Command::KeepReply(keeper.clone()),
        Duration::from_millis(20),
    );
    assert!(matches!(result, Err(Error::Timeout)));
    let late = tokens.recv_timeout(WAIT).unwrap();
    // While this thread waits on its next call, the first call's token answers first.
    let answering = std::thread::spawn(move || {
        let current: otp_threads::ReplyTo<Reply> = tokens.recv_timeout(WAIT).unwrap();
        let late_taken = late.reply(Reply::Bool(true));
        assert!(current.reply(Reply::Ok));
        late_taken
    });
    assert!(matches!(
        p.call_timeout(Command::KeepReply(keeper), WAIT),
        Ok(Reply::Ok)
    ));
    assert!(
        !answering.join().unwrap(),
        "the late reply's call is over: it is dropped"
    );
    assert!(matches!(ask(&p, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

/// A call ended by the callee's DOWN leaves nothing behind for the thread's next call.
/// `gen_server:call/3`: a call that timed out is still served when the worker reaches
/// it (only its reply is dropped). Here it is also still held in the caller's reply
/// slot meanwhile, so the thread's next calls must carry their requests otherwise.
#[test]
fn a_timed_out_call_still_queued_is_served_and_later_calls_get_their_own_replies() {
    let rt = Runtime::new();
    let (busy, _) = probe(&rt);
    let (other, _) = probe(&rt);
    let (blocking, release) = blocked_in_a_call(&busy);
    assert_eq!(
        busy.call_timeout(
            Command::Register("served-late".into()),
            Duration::from_millis(20)
        )
        .unwrap_err(),
        Error::Timeout
    );
    // The timed-out request still waits in `busy`'s mailbox: another worker of the
    // same type answers this thread's next calls meanwhile.
    for _ in 0..3 {
        assert!(matches!(ask(&other, Command::Ping), Reply::Ok));
    }
    drop(release);
    assert!(matches!(blocking.join().unwrap(), Ok(Reply::Ok)));
    wait_for(
        "the timed-out call to be served",
        Default::default(),
        || rt.whereis("served-late"),
    );
    assert_eq!(rt.whereis("served-late"), Some(busy.pid()));
    assert!(matches!(ask(&busy, Command::Ping), Reply::Ok));
    assert!(matches!(ask(&other, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_call_after_a_call_ended_by_the_callees_death_gets_its_own_reply() {
    let rt = Runtime::new();
    let (doomed, _) = probe(&rt);
    let (other, _) = probe(&rt);
    for _ in 0..3 {
        let (keeper, tokens) = crossbeam_channel::unbounded();
        let (victim, _) = probe(&rt);
        let killer = {
            let rt = rt.handle();
            let pid = victim.pid();
            std::thread::spawn(move || {
                let token: otp_threads::ReplyTo<Reply> = tokens.recv_timeout(WAIT).unwrap();
                rt.exit(&pid, ExitReason::error("boom"));
                // The callee is dead and the call ended with its reason: too late.
                !token.reply(Reply::Bool(true))
            })
        };
        assert!(matches!(
            victim.call_timeout(Command::KeepReply(keeper), WAIT),
            Err(Error::Exited(_))
        ));
        assert!(killer.join().unwrap(), "a reply after the DOWN is dropped");
        assert!(matches!(ask(&other, Command::Ping), Reply::Ok));
    }
    assert!(matches!(ask(&doomed, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_worker_can_reply_later_from_another_thread() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    let (keeper, tokens) = crossbeam_channel::unbounded();
    let answering = std::thread::spawn(move || {
        let token: otp_threads::ReplyTo<Reply> = tokens.recv_timeout(WAIT).unwrap();
        assert!(token.reply(Reply::Bool(true)));
    });
    assert!(matches!(
        ask(&p, Command::KeepReply(keeper)),
        Reply::Bool(true)
    ));
    answering.join().unwrap();
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_callee_dying_during_a_call_ends_it_with_its_exit_reason() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    let result = p.call_timeout(Command::Panic("mid-call".into()), WAIT);
    assert_eq!(
        result.unwrap_err(),
        Error::Exited(ExitReason::Panic("mid-call".into()))
    );
    let (blocked, _) = probe(&rt);
    let (caller, release) = blocked_in_a_call(&blocked);
    // Kill it while the call is being served.
    rt.kill(&blocked.pid());
    ends_with_the_kill(caller);
    drop(release);
    rt.shutdown(WAIT).unwrap();
}

/// OTP: the caller's monitor is set before the request is sent, so every call that a
/// dying callee has not answered ends with its DOWN, also a call still in its mailbox.
/// Here the monitor goes in only when the reply is slow: the queued call's token,
/// dropped with the dead worker's mailbox, must still end the call with the reason.
#[test]
fn a_call_queued_behind_a_killed_callees_work_ends_with_the_kill_reason() {
    let rt = Runtime::new();
    for _ in 0..20 {
        let (blocked, _) = probe(&rt);
        let (busy, release) = blocked_in_a_call(&blocked);
        let queued = {
            let blocked = blocked.clone();
            std::thread::spawn(move || blocked.call_timeout(Command::Ping, WAIT))
        };
        // The second call is in the mailbox once the worker counts it queued.
        wait_for("the second call to be queued", Default::default(), || {
            (rt.process_info(&blocked.pid())?.mailbox_len == 1).then_some(())
        });
        rt.kill(&blocked.pid());
        for caller in [queued, busy] {
            ends_with_the_kill(caller);
        }
        drop(release);
    }
    rt.shutdown(WAIT).unwrap();
}

/// OTP: a killed process sends nothing more, so a token its code still holds cannot
/// answer; the call ends with the kill reason, and `reply` says it was not delivered.
#[test]
fn a_token_replied_after_its_worker_was_killed_is_not_delivered() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    let (keeper, tokens) = crossbeam_channel::unbounded();
    let caller = {
        let p = p.clone();
        std::thread::spawn(move || p.call_timeout(Command::KeepReply(keeper), WAIT))
    };
    let token: otp_threads::ReplyTo<Reply> = tokens.recv_timeout(WAIT).unwrap();
    rt.kill(&p.pid());
    assert!(!token.reply(Reply::Bool(true)));
    ends_with_the_kill(caller);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_dropped_reply_token_fails_the_call_with_noreply() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    assert_eq!(
        p.call_timeout(Command::DropReply, WAIT).unwrap_err(),
        Error::NoReply
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_worker_calling_itself_gets_an_error_not_a_deadlock() {
    use otp_threads::{Context, ReplyTo, Step, Worker};
    struct SelfCaller;
    impl Worker for SelfCaller {
        type Call = bool;
        type Reply = Result<(), Error>;
        type Cast = ();
        type Info = ();
        type Continue = ();
        fn handle_call(
            &mut self,
            outer: bool,
            reply: ReplyTo<Self::Reply>,
            ctx: &mut Context<Self>,
        ) -> Step<Self> {
            let result = if outer {
                ctx.handle().call(false).and_then(|inner| inner)
            } else {
                Ok(())
            };
            reply.reply(result);
            Step::Next
        }
    }
    let rt = Runtime::new();
    let worker = rt.spawn_worker(SelfCaller).unwrap();
    assert_eq!(worker.call(true).unwrap(), Err(Error::CallingSelf));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_cast_to_a_dead_worker_is_dropped_and_try_cast_says_noproc() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    p.stop(ExitReason::Normal, WAIT).unwrap();
    p.cast(Command::Ping);
    assert_eq!(p.try_cast(Command::Ping), Err(Error::NoProc));
    assert_eq!(p.try_send("x".into()), Err(Error::NoProc));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn calls_and_casts_work_from_many_plain_threads() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    assert!(matches!(p.call_timeout(Command::Ping, WAIT), Ok(Reply::Ok)));
                    p.send(format!("{t}:{i}"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut per_thread = [0; 8];
    for _ in 0..1600 {
        let Event::Message(text) = next(&events) else {
            panic!("not a message")
        };
        let (t, i) = text.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        // Messages from one sender keep their order.
        assert_eq!(per_thread[t], i);
        per_thread[t] += 1;
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn stop_runs_terminate_and_waits_for_the_exit() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    p.stop(ExitReason::shutdown_with("asked"), WAIT).unwrap();
    assert_eq!(
        events.try_recv().unwrap(),
        Event::Terminated(ExitReason::shutdown_with("asked"))
    );
    assert!(!p.is_alive());
    assert_eq!(p.exit_reason(), Some(ExitReason::shutdown_with("asked")));
    assert_eq!(p.stop(ExitReason::Normal, WAIT), Err(Error::NoProc));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn the_default_call_timeout_comes_from_the_runtime_settings() {
    let rt = Runtime::builder()
        .call_timeout(Duration::from_millis(30))
        .build()
        .unwrap();
    let (p, _) = probe(&rt);
    let (keeper, _tokens) = crossbeam_channel::unbounded();
    assert_eq!(
        p.call(Command::KeepReply(keeper)).unwrap_err(),
        Error::Timeout
    );
    rt.shutdown(WAIT).unwrap();
}

/// `gen_server:call/3`: when the callee stops without replying, the caller exits with
/// the callee's reason (`{Reason, {gen_server, call, …}}`), whether the reply token was
/// dropped in the callback or kept until the worker's state went. `NoReply` is only for
/// a token dropped while the worker goes on.
#[test]
fn a_call_whose_callee_stops_without_replying_fails_with_its_exit_reason() {
    let rt = Runtime::new();
    let (dropping, _) = probe(&rt);
    assert_eq!(
        dropping
            .call_timeout(
                Command::StopWithoutReply(ExitReason::error("gave up")),
                WAIT
            )
            .unwrap_err(),
        Error::Exited(ExitReason::error("gave up"))
    );
    let (keeping, _) = probe(&rt);
    assert_eq!(
        keeping
            .call_timeout(Command::StopKeepingReply(ExitReason::Normal), WAIT)
            .unwrap_err(),
        Error::Exited(ExitReason::Normal)
    );
    let (panicking, _) = probe(&rt);
    assert_eq!(
        panicking
            .call_timeout(Command::Panic("no answer".into()), WAIT)
            .unwrap_err(),
        Error::Exited(ExitReason::Panic("no answer".into()))
    );
    // The token dropped by a worker that goes on is still NoReply, and it keeps running.
    let (going_on, _) = probe(&rt);
    assert_eq!(
        going_on.call_timeout(Command::DropReply, WAIT).unwrap_err(),
        Error::NoReply
    );
    assert!(matches!(ask(&going_on, Command::Ping), Reply::Ok));
    rt.shutdown(WAIT).unwrap();
}

/// A worker whose `terminate` panics exits with the panic, not the reason it was
/// asked to stop with.
struct PanickingTerminate;

impl otp_threads::Worker for PanickingTerminate {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn terminate(&mut self, _: &ExitReason, _: &mut otp_threads::Context<Self>) {
        panic!("terminate failed");
    }
}

/// `gen_server:stop/3` (`proc_lib:stop/3`): if the process exits with another reason
/// than the one asked for, `stop` exits with the real one.
#[test]
fn stop_reports_the_real_exit_reason_when_it_differs() {
    let rt = Runtime::new();
    let worker = rt.spawn_worker(PanickingTerminate).unwrap();
    assert_eq!(
        worker.stop(ExitReason::Normal, WAIT),
        Err(Error::Exited(ExitReason::Panic("terminate failed".into())))
    );
    assert_eq!(
        worker.exit_reason(),
        Some(ExitReason::Panic("terminate failed".into()))
    );
    // The same through a supervisor's handle.
    let sup = otp_threads::Supervisor::new(otp_threads::supervisor::Strategy::OneForOne)
        .child(otp_threads::ChildSpec::worker("w", || PanickingTerminate))
        .start(&rt)
        .unwrap();
    assert_eq!(sup.stop(ExitReason::Shutdown, WAIT), Ok(()));
    rt.shutdown(WAIT).unwrap();
}

/// The calling thread's call ended with its callee's kill.
fn ends_with_the_kill(caller: std::thread::JoinHandle<Result<Reply, Error>>) {
    assert_eq!(
        caller.join().unwrap().unwrap_err(),
        Error::Exited(ExitReason::Killed)
    );
}

/// A thread calls `worker` with `Command::Block`; returns once the worker is inside
/// that call, with the caller's thread and the sender whose drop releases the worker.
fn blocked_in_a_call(
    worker: &WorkerRef<Probe>,
) -> (
    std::thread::JoinHandle<Result<Reply, Error>>,
    crossbeam_channel::Sender<()>,
) {
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (entered, inside) = crossbeam_channel::bounded(1);
    let caller = {
        let worker = worker.clone();
        std::thread::spawn(move || {
            worker.call_timeout(
                Command::Block {
                    entered,
                    release: released,
                },
                WAIT,
            )
        })
    };
    inside.recv_timeout(WAIT).unwrap();
    (caller, release)
}
