//! Test support for supervisors: a child worker that reports its start and its
//! `terminate` to a shared channel (restarted incarnations included), in the manner of
//! `supervisor_1` in OTP's supervisor tests, and helpers to find and crash children.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, unbounded};
use otp_threads::supervisor::{ChildSpec, ChildState, SupervisorRef};
use otp_threads::{Context, ExitReason, Pid, ReplyTo, RuntimeHandle, Step, Worker};

/// Bound on every wait.
pub use otp_threads_testkit::WAIT;

/// What a member reports.
#[derive(Debug, PartialEq)]
pub enum Seen {
    Started {
        id: String,
        pid: Pid,
    },
    /// `terminate` began and waits for its release.
    Stalled {
        id: String,
    },
    Terminated {
        id: String,
        reason: ExitReason,
    },
}

/// Orders for a member, by call or cast.
pub enum Order {
    Ping,
    Stop(ExitReason),
    /// Unlink from the supervisor (a "naughty" child, as OTP's `child_unlink`).
    UnlinkParent,
}

/// A supervised worker.
pub struct Member {
    id: String,
    events: Sender<Seen>,
    trap: bool,
    failures: Arc<AtomicUsize>,
    own_failures: Arc<AtomicUsize>,
    /// If set, `terminate` waits until this is released (sent to or dropped).
    stall: Option<Receiver<()>>,
}

impl Worker for Member {
    type Call = Order;
    type Reply = Pid;
    type Cast = Order;
    type Info = ();
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        let take = |counter: &AtomicUsize| {
            counter
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
        };
        let refused = take(&self.own_failures) || take(&self.failures);
        if refused {
            return Err(ExitReason::error(format!("{} refuses to start", self.id)));
        }
        if self.trap {
            ctx.trap_exit(true);
        }
        let _ = self.events.send(Seen::Started {
            id: self.id.clone(),
            pid: ctx.pid(),
        });
        Ok(())
    }

    fn handle_call(
        &mut self,
        order: Order,
        reply: ReplyTo<Pid>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(ctx.pid());
        self.obey(order, ctx)
    }

    fn handle_cast(&mut self, order: Order, ctx: &mut Context<Self>) -> Step<Self> {
        self.obey(order, ctx)
    }

    fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        if let Some(stall) = &self.stall {
            let _ = self.events.send(Seen::Stalled {
                id: self.id.clone(),
            });
            let _ = stall.recv();
        }
        let _ = self.events.send(Seen::Terminated {
            id: self.id.clone(),
            reason: reason.clone(),
        });
    }
}

impl Member {
    fn obey(&mut self, order: Order, ctx: &mut Context<Self>) -> Step<Self> {
        match order {
            Order::Ping => Step::Next,
            Order::UnlinkParent => {
                let parent = ctx.parent();
                ctx.unlink(&parent);
                Step::Next
            }
            Order::Stop(reason) => Step::Stop(reason),
        }
    }
}

/// Makes member specs and collects what their members report.
pub struct Tracker {
    sender: Sender<Seen>,
    pub events: Receiver<Seen>,
    failures: Arc<AtomicUsize>,
    failures_by_id: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

impl Tracker {
    pub fn new() -> Tracker {
        let (sender, events) = unbounded();
        Tracker {
            sender,
            events,
            failures: Arc::new(AtomicUsize::new(0)),
            failures_by_id: Mutex::new(HashMap::new()),
        }
    }

    fn failures_of(&self, id: &str) -> Arc<AtomicUsize> {
        self.failures_by_id
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// The next `n` starts of member `id` fail.
    pub fn fail_next_starts_of(&self, id: &str, n: usize) {
        self.failures_of(id).store(n, Ordering::Release);
    }

    fn member_spec(&self, id: &str, trap: bool, stall: Option<Receiver<()>>) -> ChildSpec {
        let events = self.sender.clone();
        let failures = self.failures.clone();
        let own_failures = self.failures_of(id);
        let member_id = id.to_owned();
        ChildSpec::worker(id, move || Member {
            id: member_id.clone(),
            events: events.clone(),
            trap,
            failures: failures.clone(),
            own_failures: own_failures.clone(),
            stall: stall.clone(),
        })
    }

    /// A member that does not trap exits.
    pub fn spec(&self, id: &str) -> ChildSpec {
        self.member_spec(id, false, None)
    }

    /// A member that traps exits: it runs `terminate` when its supervisor stops it.
    pub fn trapping_spec(&self, id: &str) -> ChildSpec {
        self.member_spec(id, true, None)
    }

    /// A member that traps exits and whose `terminate` blocks until `release` is
    /// released: it ignores a shutdown.
    pub fn stalling_spec(&self, id: &str, release: Receiver<()>) -> ChildSpec {
        self.member_spec(id, true, Some(release))
    }

    /// The next `n` member starts (of any member of this tracker) fail.
    pub fn fail_next_starts(&self, n: usize) {
        self.failures.store(n, Ordering::Release);
    }

    pub fn next(&self) -> Seen {
        self.events
            .recv_timeout(WAIT)
            .expect("a member event within the wait bound")
    }

    /// The next event must be the start of `id`; its pid.
    pub fn expect_started(&self, id: &str) -> Pid {
        match self.next() {
            Seen::Started { id: seen, pid } if seen == id => pid,
            other => panic!("expected {id} to start, got {other:?}"),
        }
    }

    /// The next event must be the `terminate` of `id`; its reason.
    pub fn expect_terminated(&self, id: &str) -> ExitReason {
        match self.next() {
            Seen::Terminated { id: seen, reason } if seen == id => reason,
            other => panic!("expected {id} to terminate, got {other:?}"),
        }
    }

    /// No event is waiting now.
    pub fn assert_quiet(&self) {
        if let Ok(event) = self.events.try_recv() {
            panic!("unexpected member event {event:?}");
        }
    }
}

/// The pid of the running child `id`.
pub fn child_pid(sup: &SupervisorRef, id: &str) -> Pid {
    child_state(sup, id)
        .and_then(|state| state.pid())
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// The state of child `id`, `None` if the supervisor has no such child.
pub fn child_state(sup: &SupervisorRef, id: &str) -> Option<ChildState> {
    sup.which_children()
        .expect("which_children")
        .into_iter()
        .find(|child| child.id == id)
        .map(|child| child.state)
}

/// The ids of the children, as `which_children` lists them (most recently started first).
pub fn child_ids(sup: &SupervisorRef) -> Vec<String> {
    sup.which_children()
        .expect("which_children")
        .into_iter()
        .map(|child| child.id)
        .collect()
}

/// Makes the member `pid` stop itself with `reason` and waits until it is dead.
pub fn stop_member(runtime: &RuntimeHandle, pid: &Pid, reason: ExitReason) {
    let down = runtime.monitor(pid);
    runtime
        .worker_ref::<Member>(pid)
        .expect("a running member")
        .cast(Order::Stop(reason.clone()));
    let down = down.wait(WAIT).expect("the member's DOWN");
    assert_eq!(down.reason, reason);
}

/// Sends an exit signal (from a plain thread) and waits until `pid` is dead; its reason.
pub fn kill_with(runtime: &RuntimeHandle, pid: &Pid, reason: ExitReason) -> ExitReason {
    let down = runtime.monitor(pid);
    runtime.exit(pid, reason);
    down.wait(WAIT)
        .expect("a DOWN within the wait bound")
        .reason
}

/// Waits until `pid` is dead; its reason.
pub fn wait_dead(runtime: &RuntimeHandle, pid: &Pid) -> ExitReason {
    runtime
        .monitor(pid)
        .wait(WAIT)
        .expect("a DOWN within the wait bound")
        .reason
}

#[allow(unused_imports)]
pub use otp_threads_testkit::eventually;
