//! Plain threads as full processes, the way an Erlang shell is one. After the Erlang
//! reference manual, "Processes" ("Links", "Receiving Exit Signals", "Monitors",
//! "Delivery of Signals") and the `receive` expression of "Expressions" (a selective
//! receive takes the first message that matches and leaves the others in the mailbox,
//! in order; `after` bounds the wait). Each test names the rule it checks; no OTP code
//! is copied.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use otp_threads::{Down, Error, Exit, ExitReason, Process, Received, Runtime};

/// The DOWN of `pid`, from a plain thread's own monitor.
fn expect_down(rt: &Runtime, pid: &otp_threads::Pid) -> Down {
    wait_down(rt, pid)
}

/// `self()` and the mailbox: a process handle has its own pid, and its mailbox is a
/// crossbeam receiver that works in `select!` beside other channels.
#[test]
fn a_plain_thread_process_has_its_own_pid_and_a_mailbox_usable_in_select() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    assert_ne!(me.pid(), rt.root_pid());
    assert!(rt.is_alive(&me.pid()));
    assert_eq!(rt.process_count(), 1);
    let (_other_sender, other) = crossbeam_channel::unbounded::<()>();
    let to_me = me.process_ref();
    let sender = std::thread::spawn(move || to_me.send("hello".into()));
    sender.join().unwrap();
    crossbeam_channel::select! {
        recv(me.receiver()) -> item => assert_eq!(item.unwrap(), Received::Message("hello".into())),
        recv(other) -> _ => panic!("nothing comes on the other channel"),
        default(WAIT) => panic!("no message within the wait bound"),
    }
    // A worker reaches it by pid, as any process.
    let (worker, _) = probe(&rt);
    ask(
        &worker,
        Command::SendToProcess(me.pid(), "from a worker".into()),
    );
    assert_eq!(
        me.recv().unwrap(),
        Received::Message("from a worker".into())
    );
    assert_eq!(me.try_recv().unwrap(), None);
    drop(me);
    rt.shutdown(WAIT).unwrap();
}

/// "Delivery of Signals": messages, EXIT and DOWN from one sender arrive in the order
/// sent; a trapping process gets exit signals as `{'EXIT', From, Reason}` messages.
#[test]
fn exit_down_and_messages_reach_a_trapping_process_in_order() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    assert!(!me.trap_exit(true));
    let (worker, _) = probe(&rt);
    me.link(&worker.pid()).unwrap();
    let reference = me.monitor(&worker.pid());
    // The worker messages us, then dies: the message first, then its EXIT and DOWN.
    ask(
        &worker,
        Command::SendToProcess(me.pid(), "last words".into()),
    );
    worker.cast(Command::Stop(ExitReason::error("done")));
    assert_eq!(me.recv().unwrap(), Received::Message("last words".into()));
    let mut rest = [
        me.recv_timeout(WAIT).unwrap(),
        me.recv_timeout(WAIT).unwrap(),
    ];
    rest.sort_by_key(|item| matches!(item, Received::Down(_)));
    assert_eq!(
        rest[0],
        Received::Exit(Exit {
            from: worker.pid(),
            reason: ExitReason::error("done")
        })
    );
    assert!(
        matches!(&rest[1], Received::Down(down) if down.reference == reference && down.reason == ExitReason::error("done"))
    );
    assert!(me.is_alive(), "a trapping process survives");
    rt.shutdown(WAIT).unwrap();
}

/// "Links": after `unlink` no signal travels over the link; `demonitor` stops a DOWN
/// not yet sent, and with `flush` removes one already in the mailbox, keeping the other
/// items in order.
#[test]
fn unlink_and_demonitor_from_a_plain_thread_process() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    let (unlinked, _) = probe(&rt);
    me.link(&unlinked.pid()).unwrap();
    me.unlink(&unlinked.pid());
    let removed = me.monitor(&unlinked.pid());
    assert!(me.demonitor_info(removed, false), "the monitor was active");
    rt.exit(&unlinked.pid(), ExitReason::error("crash"));
    // Not killed (no link), no DOWN (demonitored).
    assert!(me.is_alive());
    assert_eq!(me.try_recv().unwrap(), None);
    // A DOWN already delivered, between two messages: the flush takes only the DOWN.
    let (target, _) = probe(&rt);
    let to_me = me.process_ref();
    to_me.send("before".into());
    let fired = me.monitor(&target.pid());
    rt.kill(&target.pid());
    to_me.send("after".into());
    assert!(me.demonitor(fired, false), "the plain form says true");
    assert!(!me.demonitor_info(fired, true), "a flush was needed");
    assert!(me.demonitor_info(fired, true), "nothing left to flush");
    assert_eq!(me.recv().unwrap(), Received::Message("before".into()));
    assert_eq!(me.recv().unwrap(), Received::Message("after".into()));
    assert_eq!(me.try_recv().unwrap(), None);
    rt.shutdown(WAIT).unwrap();
}

/// "Receiving Exit Signals": a process not trapping exits dies of an abnormal exit
/// signal. A thread cannot be pre-empted, so: it is dead at once for everyone else
/// (DOWN sent, links fired), its next receive says so with the reason (whatever was
/// queued), the raw receiver ends with `Terminated`, and the thread sends nothing more
/// as that process.
#[test]
fn a_non_trapping_process_receiving_an_abnormal_exit_is_dead_and_its_next_receive_says_so() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    let (linked, linked_events) = trapping_probe(&rt);
    me.link(&linked.pid()).unwrap();
    let watched = rt.monitor(&me.pid());
    me.process_ref().send("queued before the death".into());
    rt.exit(&me.pid(), ExitReason::error("bad input"));
    // Dead for everyone else, before exit() returned.
    assert!(!rt.is_alive(&me.pid()));
    assert_eq!(
        watched.receiver().try_recv().unwrap().reason,
        ExitReason::error("bad input")
    );
    assert_eq!(
        next(&linked_events),
        Event::Exit(Exit {
            from: me.pid(),
            reason: ExitReason::error("bad input")
        })
    );
    // Its next receive says so.
    assert_eq!(
        me.recv(),
        Err(Error::Terminated(ExitReason::error("bad input")))
    );
    assert_eq!(
        me.recv_timeout(WAIT),
        Err(Error::Terminated(ExitReason::error("bad input")))
    );
    assert_eq!(me.exit_reason(), Some(ExitReason::error("bad input")));
    // The raw receiver: what was queued before, then the end.
    assert_eq!(
        me.receiver().try_recv().unwrap(),
        Received::Message("queued before the death".into())
    );
    assert_eq!(
        me.receiver().try_recv().unwrap(),
        Received::Terminated(ExitReason::error("bad input"))
    );
    // The thread sends nothing more as that process.
    assert_eq!(linked.try_cast(Command::Ping), Err(Error::NoProc));
    assert_eq!(
        linked.call_timeout(Command::Ping, WAIT).unwrap_err(),
        Error::NoProc
    );
    assert_eq!(me.link(&linked.pid()), Err(Error::NoProc));
    me.exit(&linked.pid(), ExitReason::error("never sent"));
    assert_eq!(me.spawn_link(Probe::new().0).unwrap_err(), Error::NoProc);
    assert!(linked_events.try_recv().is_err());
    // `Kill` sent with exit cannot be trapped: a trapping process dies with `Killed`.
    drop(me);
    let trapping: Process<String> = rt.process().unwrap();
    trapping.trap_exit(true);
    rt.kill(&trapping.pid());
    assert_eq!(trapping.recv(), Err(Error::Terminated(ExitReason::Killed)));
    drop(trapping);
    rt.shutdown(WAIT).unwrap();
}

/// A `normal` exit signal from another process is ignored by a process not trapping
/// exits; `exit/2` from a plain-thread process comes from its pid.
#[test]
fn exit_signals_to_and_from_a_plain_thread_process_follow_the_receiving_rules() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    rt.exit(&me.pid(), ExitReason::Normal);
    assert!(me.is_alive(), "normal from another process is ignored");
    let (target, events) = trapping_probe(&rt);
    me.exit(&target.pid(), ExitReason::error("from the thread"));
    assert_eq!(
        next(&events),
        Event::Exit(Exit {
            from: me.pid(),
            reason: ExitReason::error("from the thread")
        })
    );
    rt.shutdown(WAIT).unwrap();
}

/// Dropping the handle ends the process with `normal`: a trapping linked process gets
/// `{'EXIT', Pid, normal}`, monitors fire with `normal`, its name is released, and the
/// thread may become a process again.
#[test]
fn dropping_a_plain_thread_process_exits_normal_and_fires_links_and_monitors() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    let pid = me.pid();
    me.register("shell").unwrap();
    let (linked, events) = trapping_probe(&rt);
    ask(&linked, Command::Link(pid));
    let watched = rt.monitor(&pid);
    drop(me);
    assert_eq!(watched.wait(WAIT).unwrap().reason, ExitReason::Normal);
    assert_eq!(
        next(&events),
        Event::Exit(Exit {
            from: pid,
            reason: ExitReason::Normal
        })
    );
    assert_eq!(rt.whereis("shell"), None);
    assert!(!rt.is_alive(&pid));
    let again: Process<String> = rt.process().unwrap();
    assert_ne!(again.pid(), pid);
    drop(again);
    rt.shutdown(WAIT).unwrap();
}

/// `spawn_link` from a plain-thread process makes it the parent: a trapping child obeys
/// an exit signal from it by running `terminate` (as a `gen_server` obeys its parent),
/// and the child's crash reaches it over the link.
#[test]
fn spawning_and_linking_from_a_plain_thread_process_makes_it_the_parent() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    me.trap_exit(true);
    let (child, child_events) = Probe::with_init(InitBehaviour::TrapExit);
    let child = me.spawn_link(child).unwrap();
    me.exit(&child.pid(), ExitReason::Shutdown);
    assert_eq!(next(&child_events), Event::Terminated(ExitReason::Shutdown));
    assert_eq!(
        me.recv_timeout(WAIT).unwrap(),
        Received::Exit(Exit {
            from: child.pid(),
            reason: ExitReason::Shutdown
        })
    );
    // A crashing linked child: its EXIT reaches the trapping parent.
    let (second, _) = Probe::new();
    let second = me.spawn_link(second).unwrap();
    second.cast(Command::Panic("child crash".into()));
    assert_eq!(
        me.recv_timeout(WAIT).unwrap(),
        Received::Exit(Exit {
            from: second.pid(),
            reason: ExitReason::Panic("child crash".into())
        })
    );
    // Unlinked spawn: still the parent, not linked.
    let (third, third_events) = Probe::with_init(InitBehaviour::TrapExit);
    let third = me.spawn(third).unwrap();
    me.exit(&third.pid(), ExitReason::Shutdown);
    assert_eq!(next(&third_events), Event::Terminated(ExitReason::Shutdown));
    let _ = expect_down(&rt, &third.pid());
    assert_eq!(
        me.try_recv().unwrap(),
        None,
        "no link to the unlinked child"
    );
    rt.shutdown(WAIT).unwrap();
}

/// `receive Pattern -> … after T -> … end`: with three senders, a selective receive
/// takes the first message matching, waits up to its timeout, and leaves every other
/// message queued in order, so each sender's messages are still received in the order
/// it sent them.
#[test]
fn a_selective_receive_takes_the_first_match_and_leaves_the_others_in_order() {
    const EACH: usize = 200;
    let rt = Runtime::new();
    let me: Process<(char, usize)> = rt.process().unwrap();
    let senders: Vec<_> = ['a', 'b', 'c']
        .into_iter()
        .map(|tag| {
            let to_me = me.process_ref();
            std::thread::spawn(move || {
                for n in 0..EACH {
                    to_me.send((tag, n));
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    // Take every 'b', in its order, from between the others.
    let is_b = |item: &Received<(char, usize)>| matches!(item, Received::Message(('b', _)));
    for n in 0..EACH {
        assert_eq!(
            me.receive_matching(is_b, WAIT).unwrap(),
            Received::Message(('b', n))
        );
    }
    // Nothing else matches: the timeout, and the rest still queued (set aside now).
    assert_eq!(
        me.receive_matching(is_b, Duration::from_millis(1)),
        Err(Error::Timeout)
    );
    assert!(me.has_set_aside());
    let mut next_of = std::collections::HashMap::from([('a', 0), ('c', 0)]);
    for _ in 0..2 * EACH {
        let Received::Message((tag, n)) = me.recv_timeout(WAIT).unwrap() else {
            panic!("only messages were sent");
        };
        let expected = next_of.get_mut(&tag).expect("only a and c are left");
        assert_eq!(n, *expected, "sender {tag}'s messages in the order sent");
        *expected += 1;
    }
    assert_eq!(
        next_of,
        std::collections::HashMap::from([('a', EACH), ('c', EACH)])
    );
    assert_eq!(me.try_recv().unwrap(), None);
    assert!(!me.has_set_aside());
    rt.shutdown(WAIT).unwrap();
}

/// On a runtime with a manual clock, a receive's timeout (`after T`) follows the clock,
/// exactly.
#[test]
fn a_receive_timeout_follows_the_manual_clock() {
    let clock = otp_threads::ManualClock::new();
    let rt = Runtime::builder().manual_clock(&clock).build().unwrap();
    let waiting = {
        let rt = rt.handle();
        std::thread::spawn(move || {
            let me: Process<String> = rt.process().unwrap();
            me.receive_matching(|_| false, Duration::from_secs(30))
        })
    };
    // The receive's deadline is a timer of the clock once the receive has started.
    otp_threads_testkit::eventually("the receive to set its deadline timer on the clock", || {
        clock.pending_timers() > 0
    });
    clock.advance(Duration::from_millis(29_999));
    assert!(
        !waiting.is_finished(),
        "not timed out before the clock says so"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(waiting.join().unwrap(), Err(Error::Timeout));
    rt.shutdown(WAIT).unwrap();
}

/// One process per thread: a thread that already runs one (a worker's, or one holding
/// a process handle) is refused.
#[test]
fn a_second_process_on_the_same_thread_is_refused() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    assert_eq!(
        rt.process::<u32>().unwrap_err(),
        Error::AlreadyAProcess(me.pid())
    );
    // The send side of another message type is refused by type.
    assert_eq!(
        rt.process_ref::<u32>(&me.pid()).unwrap_err(),
        Error::WrongWorkerType(me.pid())
    );
    drop(me);
    rt.shutdown(WAIT).unwrap();
}

/// `Runtime::shutdown` ends plain-thread processes first, with `shutdown`, even
/// trapping ones (their threads cannot answer an EXIT in time); a trapping worker one
/// of them started stops with `terminate` as when its parent exits.
#[test]
fn runtime_shutdown_ends_plain_thread_processes_first_even_trapping_ones() {
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    me.trap_exit(true);
    let (child, child_events) = Probe::with_init(InitBehaviour::TrapExit);
    let child = me.spawn_link(child).unwrap();
    rt.shutdown(WAIT).unwrap();
    assert_eq!(me.recv(), Err(Error::Terminated(ExitReason::Shutdown)));
    assert!(!child.is_alive());
    assert_eq!(next(&child_events), Event::Terminated(ExitReason::Shutdown));
}

/// A supervisor started linked to a plain-thread process has it as parent: when the
/// process ends (its handle dropped, reason `normal`), the supervisor, which traps
/// exits, obeys its parent and stops its children in order.
#[test]
fn a_supervisor_started_from_a_plain_thread_process_stops_when_the_process_ends() {
    use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
    let rt = Runtime::new();
    let me: Process<String> = rt.process().unwrap();
    let (child, child_events) = Probe::with_init(InitBehaviour::TrapExit);
    let mut child = Some(child);
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("child", move || {
            child.take().expect("started once")
        }))
        .start_link_to_process(&me)
        .unwrap();
    let watched = rt.monitor(&sup.pid());
    drop(me);
    assert_eq!(watched.wait(WAIT).unwrap().reason, ExitReason::Normal);
    assert_eq!(next(&child_events), Event::Terminated(ExitReason::Shutdown));
    rt.shutdown(WAIT).unwrap();
}
