//! The observer: `process_info` per field, the node snapshot and its supervision
//! trees, and call-cycle deadlock detection.
//!
//! Ports the intent of `erlang:process_info/1,2` (ERTS `process_SUITE`:
//! `process_info_other`, `process_info_messages`, `process_info_other_dead` — a dead
//! pid gives `undefined`) and of `supervisor:count_children` / observer's tree view.
//! Deadlock detection has no OTP counterpart: there, a call cycle waits for its
//! timeouts (see SEMANTICS.md, section 12).

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
use otp_threads::{
    Callback, Context, Error, ExitReason, Info, ProcessStatus, ReplyTo, Runtime, RuntimeHandle,
    Step, Worker, WorkerRef,
};
use otp_threads_testkit::{WAIT, log_capture, wait_for};

/// Calls along a chain of relays: a relay given `[next, rest..]` calls `next` with
/// `rest`; an empty chain is answered at once.
struct Relay {
    results: Sender<Result<(), Error>>,
}

impl Worker for Relay {
    type Call = Vec<WorkerRef<Relay>>;
    type Reply = Result<(), Error>;
    type Cast = Vec<WorkerRef<Relay>>;
    type Info = ();
    type Continue = ();

    fn handle_call(
        &mut self,
        chain: Vec<WorkerRef<Relay>>,
        reply: ReplyTo<Result<(), Error>>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(relay(chain));
        Step::Next
    }

    fn handle_cast(&mut self, chain: Vec<WorkerRef<Relay>>, _: &mut Context<Self>) -> Step<Self> {
        let _ = self.results.send(relay(chain));
        Step::Next
    }
}

fn relay(mut chain: Vec<WorkerRef<Relay>>) -> Result<(), Error> {
    if chain.is_empty() {
        return Ok(());
    }
    let next = chain.remove(0);
    // Each hop returns the error of the hop that failed (a deadlock, an exit).
    next.call_timeout(chain, Duration::MAX)?
}

fn relays(rt: &RuntimeHandle, n: usize) -> (Vec<WorkerRef<Relay>>, Receiver<Result<(), Error>>) {
    let (results, received) = unbounded();
    let relays = (0..n)
        .map(|_| {
            rt.spawn_worker(Relay {
                results: results.clone(),
            })
            .unwrap()
        })
        .collect();
    (relays, received)
}

/// Keeps the reply tokens of its calls, for the test to answer; reports each call.
struct Gate {
    held: Sender<ReplyTo<Result<(), Error>>>,
}

impl Worker for Gate {
    type Call = Vec<WorkerRef<Relay>>;
    type Reply = Result<(), Error>;
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_call(
        &mut self,
        _: Vec<WorkerRef<Relay>>,
        reply: ReplyTo<Result<(), Error>>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        let _ = self.held.send(reply);
        Step::Next
    }
}

/// A worker whose casts block until released, and which sets up links, monitors,
/// timers and a name on request.
struct Subject {
    entered: Sender<()>,
}

enum Setup {
    BlockUntil(Receiver<()>),
    LinkMonitorTimerName(otp_threads::Pid, String),
    Crash,
}

impl Worker for Subject {
    type Call = ();
    type Reply = ();
    type Cast = Setup;
    type Info = ();
    type Continue = ();

    fn handle_cast(&mut self, setup: Setup, ctx: &mut Context<Self>) -> Step<Self> {
        match setup {
            Setup::BlockUntil(release) => {
                let _ = self.entered.send(());
                let _ = release.recv();
            }
            Setup::LinkMonitorTimerName(other, name) => {
                ctx.trap_exit(true);
                ctx.link(&other).unwrap();
                ctx.monitor(&other);
                ctx.send_after((), Duration::from_secs(3600));
                ctx.register(&name).unwrap();
                let _ = self.entered.send(());
            }
            Setup::Crash => panic!("crash on request"),
        }
        Step::Next
    }

    fn handle_info(&mut self, _: Info<()>, _: &mut Context<Self>) -> Step<Self> {
        Step::Next
    }
}

fn subject(rt: &RuntimeHandle) -> (WorkerRef<Subject>, Receiver<()>) {
    let (entered, events) = unbounded();
    (rt.spawn_worker(Subject { entered }).unwrap(), events)
}

fn calling_status(rt: &RuntimeHandle, relay: &WorkerRef<Relay>) -> ProcessStatus {
    wait_for("the relay to block in its call", Default::default(), || {
        let status = rt.process_info(&relay.pid())?.status;
        matches!(status, ProcessStatus::Calling { .. }).then_some(status)
    })
}

#[test]
fn a_worker_blocked_in_a_call_shows_the_callee() {
    let rt = Runtime::new();
    let (held, tokens) = unbounded();
    let gate = rt.spawn_worker(Gate { held }).unwrap();
    let caller = rt.spawn_worker(CallsGate { gate: gate.clone() }).unwrap();
    caller.cast(());
    let token = tokens.recv_timeout(WAIT).unwrap();
    let status = wait_for(
        "the caller to block in its call",
        Default::default(),
        || {
            let status = rt.process_info(&caller.pid())?.status;
            matches!(status, ProcessStatus::Calling { .. }).then_some(status)
        },
    );
    match status {
        ProcessStatus::Calling {
            callee, callback, ..
        } => {
            assert_eq!(callee, gate.pid());
            assert_eq!(callback, Some(Callback::HandleCast));
        }
        other => panic!("not calling: {other:?}"),
    }
    // The gate sent the token from inside its callback: wait for the callback's end,
    // and for the caller to park (its call's monitor goes in after a short spin).
    let gate_info = wait_for("the gate to wait again", Default::default(), || {
        let info = rt.process_info(&gate.pid())?;
        (info.status == ProcessStatus::Waiting && info.calls_waiting == 1).then_some(info)
    });
    assert_eq!(gate_info.messages_handled, 1);
    assert!(rt.snapshot().deadlocks.is_empty());
    token.reply(Ok(()));
    wait_for(
        "the caller to go back to waiting",
        Default::default(),
        || (rt.process_info(&caller.pid())?.status == ProcessStatus::Waiting).then_some(()),
    );
    assert_eq!(rt.process_info(&gate.pid()).unwrap().calls_waiting, 0);
    assert_eq!(rt.process_info(&caller.pid()).unwrap().messages_handled, 1);
    rt.shutdown(WAIT).unwrap();
}

/// Calls its gate from `handle_cast`.
struct CallsGate {
    gate: WorkerRef<Gate>,
}

impl Worker for CallsGate {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Step<Self> {
        let _ = self.gate.call_timeout(Vec::new(), Duration::MAX);
        Step::Next
    }
}

#[test]
fn a_worker_running_a_callback_shows_which_and_its_queued_mailbox() {
    let rt = Runtime::new();
    let (worker, entered) = subject(&rt);
    let (release, released) = unbounded();
    worker.cast(Setup::BlockUntil(released));
    entered.recv_timeout(WAIT).unwrap();
    let (hold, held) = unbounded::<()>();
    worker.cast(Setup::BlockUntil(held.clone()));
    worker.cast(Setup::BlockUntil(held));
    let info = rt.process_info(&worker.pid()).unwrap();
    assert!(matches!(
        info.status,
        ProcessStatus::Running {
            callback: Callback::HandleCast,
            ..
        }
    ));
    assert_eq!(info.mailbox_len, 2);
    assert_eq!(info.messages_handled, 0, "counted when a callback returns");
    release.send(()).unwrap();
    entered.recv_timeout(WAIT).unwrap();
    let info = rt.process_info(&worker.pid()).unwrap();
    assert_eq!(info.messages_handled, 1);
    assert_eq!(info.mailbox_len, 1);
    // The blocked worker is killed; its thread stays in user code: a zombie.
    rt.kill(&worker.pid());
    assert_eq!(rt.process_info(&worker.pid()), None);
    wait_for("the zombie to be listed", Default::default(), || {
        rt.snapshot().zombies.contains(&worker.pid()).then_some(())
    });
    // Its callback returns once the sender is gone; then its thread is free.
    drop((release, hold));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn process_info_shows_links_monitors_timers_name_parent_type_and_thread() {
    let rt = Runtime::new();
    let (worker, entered) = subject(&rt);
    let (other, _other_events) = subject(&rt);
    worker.cast(Setup::LinkMonitorTimerName(other.pid(), "observed".into()));
    entered.recv_timeout(WAIT).unwrap();
    let info = rt.process_info(&worker.pid()).unwrap();
    assert_eq!(info.pid, worker.pid());
    assert_eq!(info.registered_name.as_deref(), Some("observed"));
    assert_eq!(info.parent, rt.root_pid());
    assert!(info.type_name.unwrap().ends_with("Subject"));
    assert_eq!(info.links, vec![other.pid()]);
    assert_eq!(info.monitors, vec![other.pid()]);
    assert!(info.trap_exit);
    // The timer is counted when the callback that set it returns.
    wait_for("the timer to be counted", Default::default(), || {
        (rt.process_info(&worker.pid())?.pending_timers == 1).then_some(())
    });
    assert!(info.thread_id.is_some());
    let other_info = rt.process_info(&other.pid()).unwrap();
    assert_eq!(other_info.links, vec![worker.pid()]);
    assert_eq!(other_info.monitored_by, vec![worker.pid()]);
    assert_eq!(other_info.monitored_by_threads, 0);
    let _monitor = rt.monitor(&other.pid());
    assert_eq!(
        rt.process_info(&other.pid()).unwrap().monitored_by_threads,
        1
    );
    let json = info.to_json();
    assert!(json.contains("\"registered_name\":\"observed\""), "{json}");
    assert!(json.contains("\"trap_exit\":true"), "{json}");
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn process_info_of_a_dead_pid_is_none() {
    let rt = Runtime::new();
    let (worker, _) = subject(&rt);
    let pid = worker.pid();
    assert!(rt.process_info(&pid).is_some());
    worker.stop(ExitReason::Normal, WAIT).unwrap();
    assert_eq!(rt.process_info(&pid), None);
    assert!(rt.snapshot().process(&pid).is_none());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_crashing_supervised_child_shows_its_restart_count_and_last_reason() {
    let rt = Runtime::new();
    let (entered, _events) = unbounded();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(3600))
        .child(ChildSpec::worker("crasher", move || Subject {
            entered: entered.clone(),
        }))
        .start(&rt)
        .unwrap();
    let first = rt.snapshot().supervisor(&sup.pid()).unwrap().children[0].clone();
    assert_eq!(first.id, "crasher");
    assert_eq!(first.restarts, Some(0));
    assert_eq!(first.last_exit, None);
    let first_pid = first.pid.unwrap();
    rt.worker_ref::<Subject>(&first_pid)
        .unwrap()
        .cast(Setup::Crash);
    let node = wait_for("the restart to show", Default::default(), || {
        let node = rt.snapshot().supervisor(&sup.pid())?.clone();
        (node.children[0].restarts == Some(1) && node.children[0].pid.is_some()).then_some(node)
    });
    let child = &node.children[0];
    assert_ne!(child.pid, Some(first_pid));
    assert!(matches!(child.last_exit, Some(ExitReason::Panic(_))));
    assert_eq!(node.strategy, Strategy::OneForOne);
    assert_eq!(node.max_restarts, 5);
    assert_eq!(node.period, Duration::from_secs(3600));
    assert_eq!(node.restarts_in_period, 1);
    let info = rt.process_info(&child.pid.unwrap()).unwrap();
    assert_eq!(info.parent, sup.pid());
    assert_eq!(info.links, vec![sup.pid()]);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn the_snapshot_shows_trees_and_processes_outside_them() {
    let rt = Runtime::new();
    let (loose, _) = subject(&rt);
    let inner = || {
        Supervisor::new(Strategy::RestForOne).child(ChildSpec::worker("leaf", || Subject {
            entered: unbounded().0,
        }))
    };
    let sup = Supervisor::new(Strategy::OneForAll)
        .child(ChildSpec::supervisor("inner", inner))
        .start(&rt)
        .unwrap();
    let snapshot = rt.snapshot();
    assert_eq!(snapshot.tree_roots, vec![sup.pid()]);
    let root = snapshot.supervisor(&sup.pid()).unwrap();
    assert_eq!(root.strategy, Strategy::OneForAll);
    let inner_pid = root.children[0].pid.unwrap();
    let inner = snapshot.supervisor(&inner_pid).unwrap();
    assert_eq!(inner.parent, sup.pid());
    assert_eq!(inner.strategy, Strategy::RestForOne);
    let leaf = inner.children[0].pid.unwrap();
    assert_eq!(snapshot.outside_trees, vec![loose.pid()]);
    assert!(!snapshot.outside_trees.contains(&leaf));
    assert_eq!(snapshot.processes.len(), 4);
    let json = snapshot.to_json();
    assert!(json.contains("\"strategy\":\"RestForOne\""), "{json}");
    assert!(
        json.contains(&format!("\"tree_roots\":[\"{}\"]", sup.pid())),
        "{json}"
    );
    assert!(json.starts_with('{') && json.ends_with('}'));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_two_worker_call_cycle_is_detected() {
    let rt = Runtime::new();
    let (relays, results) = relays(&rt, 2);
    let (a, b) = (&relays[0], &relays[1]);
    // A calls B, which calls A.
    a.cast(vec![b.clone(), a.clone()]);
    let snapshot = wait_for("the cycle to show", Default::default(), || {
        let snapshot = rt.snapshot();
        (!snapshot.deadlocks.is_empty()).then_some(snapshot)
    });
    assert_eq!(snapshot.deadlocks, vec![vec![a.pid(), b.pid()]]);
    match calling_status(&rt, a) {
        ProcessStatus::Calling { callee, .. } => assert_eq!(callee, b.pid()),
        other => panic!("{other:?}"),
    }
    match calling_status(&rt, b) {
        ProcessStatus::Calling { callee, .. } => assert_eq!(callee, a.pid()),
        other => panic!("{other:?}"),
    }
    // Killing A ends the cycle: B's call fails with A's exit, and B's reply finds
    // no caller.
    rt.kill(&a.pid());
    wait_for("the cycle to clear", Default::default(), || {
        rt.snapshot().deadlocks.is_empty().then_some(())
    });
    drop(results);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_three_worker_call_cycle_is_detected() {
    let rt = Runtime::new();
    let (relays, _results) = relays(&rt, 3);
    let (a, b, c) = (&relays[0], &relays[1], &relays[2]);
    a.cast(vec![b.clone(), c.clone(), a.clone()]);
    let snapshot = wait_for("the cycle to show", Default::default(), || {
        let snapshot = rt.snapshot();
        (!snapshot.deadlocks.is_empty()).then_some(snapshot)
    });
    assert_eq!(snapshot.deadlocks, vec![vec![a.pid(), b.pid(), c.pid()]]);
    let json = snapshot.to_json();
    assert!(
        json.contains(&format!(
            "\"deadlocks\":[[\"{}\",\"{}\",\"{}\"]]",
            a.pid(),
            b.pid(),
            c.pid()
        )),
        "{json}"
    );
    rt.kill(&b.pid());
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_two_worker_call_cycle_fails_fast_when_opted_in() {
    let logs = log_capture::install();
    // Its own node name: pids of the other tests' runtimes print alike.
    let rt = Runtime::builder()
        .node_name("fail_fast@localhost")
        .fail_deadlocked_calls(true)
        .build()
        .unwrap();
    let (relays, results) = relays(&rt, 2);
    let (a, b) = (&relays[0], &relays[1]);
    a.cast(vec![b.clone(), a.clone()]);
    // B's call to A closes the cycle and fails at once; B replies the error to A.
    assert_eq!(
        results.recv_timeout(WAIT).unwrap(),
        Err(Error::Deadlock(vec![b.pid(), a.pid()]))
    );
    // One log line names the cycle, from the call that closed it.
    let line = format!(
        "deadlock: call cycle {} -> {} -> {}",
        b.pid(),
        a.pid(),
        b.pid()
    );
    assert_eq!(logs.lines_at(log::Level::Error, &[&line]), [line]);
    assert!(rt.snapshot().deadlocks.is_empty());
    // Both serve again.
    assert_eq!(a.call(Vec::new()).unwrap(), Ok(()));
    assert_eq!(b.call(vec![a.clone()]).unwrap(), Ok(()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_three_worker_call_cycle_fails_fast_when_opted_in() {
    let rt = Runtime::builder()
        .fail_deadlocked_calls(true)
        .build()
        .unwrap();
    let (relays, results) = relays(&rt, 3);
    let (a, b, c) = (&relays[0], &relays[1], &relays[2]);
    a.cast(vec![b.clone(), c.clone(), a.clone()]);
    assert_eq!(
        results.recv_timeout(WAIT).unwrap(),
        Err(Error::Deadlock(vec![c.pid(), a.pid(), b.pid()]))
    );
    // A chain without a cycle is not failed.
    assert_eq!(a.call(vec![b.clone(), c.clone()]).unwrap(), Ok(()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn the_tree_text_shows_status_mailbox_and_restarts() {
    let rt = Runtime::new();
    let (loose, _) = subject(&rt);
    rt.register("loose", &loose.pid()).unwrap();
    let inner = || {
        Supervisor::new(Strategy::RestForOne).child(ChildSpec::worker("leaf", || Subject {
            entered: unbounded().0,
        }))
    };
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .intensity(5, Duration::from_secs(60))
        .child(ChildSpec::worker("crasher", || Subject {
            entered: unbounded().0,
        }))
        .child(ChildSpec::supervisor("inner", inner))
        .start(&rt)
        .unwrap();
    let first = rt.snapshot().supervisor(&sup.pid()).unwrap().children[0]
        .pid
        .unwrap();
    rt.worker_ref::<Subject>(&first).unwrap().cast(Setup::Crash);
    let snapshot = wait_for("the restart to show", Default::default(), || {
        let snapshot = rt.snapshot();
        let crasher = &snapshot.supervisor(&sup.pid())?.children[0];
        (crasher.restarts == Some(1) && crasher.pid.is_some()).then_some(snapshot)
    });
    let root = snapshot.supervisor(&sup.pid()).unwrap();
    let crasher = root.children[0].pid.unwrap();
    let inner_pid = root.children[1].pid.unwrap();
    let leaf = snapshot.supervisor(&inner_pid).unwrap().children[0]
        .pid
        .unwrap();
    let text = snapshot.tree_text();
    assert_eq!(text, snapshot.to_string());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("node {}", snapshot.node.as_str()),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "top {} supervisor one_for_one, 1/5 restarts in 60s: ",
            sup.pid()
        )),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&format!("├─ crasher {crasher} Subject: ")),
        "{text}"
    );
    assert!(
        lines[2].ends_with(", restarts 1, last exit panic: crash on request"),
        "{text}"
    );
    assert!(lines[2].contains(", mailbox 0, "), "{text}");
    assert!(
        lines[3].starts_with(&format!(
            "└─ inner {inner_pid} supervisor rest_for_one, 0/3 restarts in 5s: waiting, mailbox 0, restarts 0"
        )),
        "{text}"
    );
    assert_eq!(
        lines[4],
        format!("   └─ leaf {leaf} Subject: waiting, mailbox 0, restarts 0"),
        "{text}"
    );
    assert_eq!(lines[5], "outside any tree:", "{text}");
    assert!(
        lines[6].starts_with(&format!("  loose {} Subject: ", loose.pid())),
        "{text}"
    );
    assert_eq!(lines.len(), 7, "{text}");
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn with_introspection_off_process_info_still_works_reduced() {
    let refused = Runtime::builder()
        .introspection(false)
        .fail_deadlocked_calls(true)
        .build()
        .err();
    assert!(
        matches!(
            refused,
            Some(Error::InvalidOption {
                option: "fail_deadlocked_calls",
                ..
            })
        ),
        "{refused:?}"
    );
    let rt = Runtime::builder().introspection(false).build().unwrap();
    let (worker, entered) = subject(&rt);
    let (other, _other_events) = subject(&rt);
    worker.cast(Setup::LinkMonitorTimerName(
        other.pid(),
        "unrecorded".into(),
    ));
    entered.recv_timeout(WAIT).unwrap();
    // Blocked in a callback with two casts queued.
    let (release, released) = unbounded();
    worker.cast(Setup::BlockUntil(released));
    entered.recv_timeout(WAIT).unwrap();
    worker.cast(Setup::BlockUntil(unbounded().1));
    worker.cast(Setup::BlockUntil(unbounded().1));
    let info = rt.process_info(&worker.pid()).unwrap();
    // What the worker does is not recorded...
    assert_eq!(info.status, ProcessStatus::Unrecorded);
    assert_eq!(info.messages_handled, 0);
    assert_eq!(info.pending_timers, 0);
    // ...what it holds is read from the process itself, exactly.
    assert_eq!(info.mailbox_len, 2);
    assert_eq!(info.registered_name.as_deref(), Some("unrecorded"));
    assert_eq!(info.links, vec![other.pid()]);
    assert_eq!(info.monitors, vec![other.pid()]);
    assert!(info.trap_exit);
    assert!(info.type_name.unwrap().ends_with("Subject"));
    assert!(info.thread_id.is_some());
    assert!(
        info.to_json()
            .contains("\"status\":{\"state\":\"unrecorded\"}")
    );
    drop(release);
    // A caller blocked in a call leaves no wait-for edge; the callee's waiting call
    // is still counted (it is the call's monitor).
    let (held, tokens) = unbounded();
    let gate = rt.spawn_worker(Gate { held }).unwrap();
    let caller = rt.spawn_worker(CallsGate { gate: gate.clone() }).unwrap();
    caller.cast(());
    let token = tokens.recv_timeout(WAIT).unwrap();
    assert_eq!(
        rt.process_info(&caller.pid()).unwrap().status,
        ProcessStatus::Unrecorded
    );
    wait_for("the caller's call monitor", Default::default(), || {
        (rt.process_info(&gate.pid())?.calls_waiting == 1).then_some(())
    });
    token.reply(Ok(()));
    // Supervision trees are the supervisors' own records: unchanged.
    let sup = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("crasher", || Subject {
            entered: unbounded().0,
        }))
        .start(&rt)
        .unwrap();
    let first = rt.snapshot().supervisor(&sup.pid()).unwrap().children[0]
        .pid
        .unwrap();
    rt.worker_ref::<Subject>(&first).unwrap().cast(Setup::Crash);
    wait_for("the restart to show", Default::default(), || {
        let child = rt.snapshot().supervisor(&sup.pid())?.children[0].clone();
        (child.restarts == Some(1) && child.pid.is_some()).then_some(())
    });
    assert!(
        rt.snapshot()
            .tree_text()
            .contains("Subject: status not recorded, mailbox 0, restarts 1")
    );
    rt.shutdown(WAIT).unwrap();
}
