//! The observer: looking at a live node, as Erlang's `observer` and
//! `erlang:process_info/1` do.
//!
//! Contract:
//! - [`RuntimeHandle::process_info`] describes one live local process: what it is
//!   doing ([`ProcessStatus`]: waiting for a message, running which callback for how
//!   long, or blocked in a call to which pid), its mailbox length, links, monitors,
//!   registered name, parent, worker type, messages handled, pending timers and the OS
//!   thread it runs on. A dead pid (or a zombie: dead, its thread still in user code;
//!   see [`RuntimeHandle::zombies`]) gives `None`, as `process_info` of a dead pid
//!   gives `undefined`.
//! - [`RuntimeHandle::snapshot`] describes the whole node: every process, the
//!   supervision trees (a supervisor and the processes it started), the processes
//!   outside any tree, the call cycles (deadlocks) and the zombies; as a typed value
//!   and as JSON ([`Snapshot::to_json`]).
//! - Cheap enough to leave on: the message path only stores into the process's own
//!   atomics (which callback, since when, messages handled, pending timers); a call
//!   from a worker also publishes its wait-for edge, which is how a call cycle is
//!   detected the moment it closes (see `observer/deadlock.rs`). Nothing is sampled
//!   or sent anywhere until someone asks.
//! - [`RuntimeBuilder::introspection`](crate::RuntimeBuilder::introspection)`(false)`
//!   skips even that: a worker's status is then [`ProcessStatus::Unrecorded`], its
//!   handled and timer counts stay 0 and no call cycle is detected; what is read from
//!   the process itself (mailbox, links, monitors, name, thread) and the supervision
//!   trees stay exact.
//! - [`Snapshot::tree_text`] (the snapshot's `Display`) renders the trees for people.
//! - The values are a recent picture, not an atomic one: each process is read on its
//!   own, while it runs.
//!
//! ```
//! use std::time::Duration;
//! use otp_threads::{Context, ProcessStatus, ReplyTo, Runtime, Step, Worker};
//!
//! struct Echo;
//! impl Worker for Echo {
//!     type Call = u32;
//!     type Reply = u32;
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!     fn handle_call(&mut self, n: u32, reply: ReplyTo<u32>, _: &mut Context<Self>) -> Step<Self> {
//!         reply.reply(n);
//!         Step::Next
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let echo = runtime.spawn_named("echo", Echo).unwrap();
//! assert_eq!(echo.call(7).unwrap(), 7);
//! // The count and the status move when the callback returns, just after its reply.
//! # use otp_threads_testkit::{Patience, poll_until};
//! let info = poll_until(
//!     "the call counted",
//!     Patience::default(),
//!     || runtime.process_info(&echo.pid()).unwrap(),
//!     |info| info.messages_handled == 1 && info.status == ProcessStatus::Waiting,
//! );
//! assert_eq!(info.registered_name.as_deref(), Some("echo"));
//! assert!(info.type_name.unwrap().ends_with("Echo"));
//! let snapshot = runtime.snapshot();
//! assert!(snapshot.outside_trees.contains(&echo.pid()));
//! assert!(snapshot.to_json().contains("\"registered_name\":\"echo\""));
//! runtime.shutdown(Duration::from_secs(1)).unwrap();
//! echo.call(1).unwrap_err();
//! ```

mod activity;
mod deadlock;
mod json;
mod supervision;
mod tree_text;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use activity::Activity;
pub(crate) use deadlock::start_waiting;
pub(crate) use supervision::SupervisorView;
pub use supervision::{SupervisedChild, SupervisorNode};

use crate::pid::{NodeName, Pid};
use crate::process::{ProcessCell, Status, Watcher};
use crate::runtime::{RuntimeHandle, RuntimeInner};

/// A worker callback, as [`ProcessStatus::Running`] names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Callback {
    /// `init` (or `init_outcome`).
    Init = 1,
    /// `handle_call`.
    HandleCall = 2,
    /// `handle_cast`.
    HandleCast = 3,
    /// `handle_info` (a message, a timer, a DOWN or a trapped EXIT).
    HandleInfo = 4,
    /// `handle_continue`.
    HandleContinue = 5,
    /// `terminate`.
    Terminate = 6,
}

impl Callback {
    fn from_code(code: u8) -> Option<Callback> {
        Some(match code {
            1 => Callback::Init,
            2 => Callback::HandleCall,
            3 => Callback::HandleCast,
            4 => Callback::HandleInfo,
            5 => Callback::HandleContinue,
            6 => Callback::Terminate,
            _ => return None,
        })
    }

    /// The callback's name, as in the `Worker` trait.
    pub fn as_str(self) -> &'static str {
        match self {
            Callback::Init => "init",
            Callback::HandleCall => "handle_call",
            Callback::HandleCast => "handle_cast",
            Callback::HandleInfo => "handle_info",
            Callback::HandleContinue => "handle_continue",
            Callback::Terminate => "terminate",
        }
    }
}

/// What a live process is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessStatus {
    /// A worker waiting for its next message (Erlang's `waiting`).
    Waiting,
    /// A worker running a callback, for `running_for` so far (Erlang's `running`).
    Running {
        /// Which callback.
        callback: Callback,
        /// How long it has run.
        running_for: Duration,
    },
    /// Blocked in a call to `callee` (from inside `callback`, for a worker), waiting
    /// for `waiting_for` so far.
    Calling {
        /// The called process.
        callee: Pid,
        /// The caller's running callback; `None` for a plain thread's process.
        callback: Option<Callback>,
        /// How long the call has waited.
        waiting_for: Duration,
    },
    /// A plain thread's [`Process`](crate::Process), running the thread's own code.
    PlainThread,
    /// A worker of a runtime built with
    /// [`introspection(false)`](crate::RuntimeBuilder::introspection): what it is
    /// doing is not recorded.
    Unrecorded,
}

/// One live local process, as [`RuntimeHandle::process_info`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its registered name.
    pub registered_name: Option<Arc<str>>,
    /// The worker's type (`std::any::type_name`); `None` for a plain thread's process.
    pub type_name: Option<&'static str>,
    /// The process that started it (the runtime's root pid for a plain thread).
    pub parent: Pid,
    /// What it is doing.
    pub status: ProcessStatus,
    /// Messages and signals in its mailbox, not yet taken.
    pub mailbox_len: usize,
    /// Its links, in pid order.
    pub links: Vec<Pid>,
    /// The processes it monitors, in pid order.
    pub monitors: Vec<Pid>,
    /// The processes that monitor it, in pid order.
    pub monitored_by: Vec<Pid>,
    /// Monitors on it held by plain threads (not processes), such as
    /// [`RuntimeHandle::monitor`] and [`WorkerRef::stop`](crate::WorkerRef::stop).
    pub monitored_by_threads: usize,
    /// Calls to it not yet answered whose callers wait parked: a caller enters its
    /// call's monitor when the reply has not come within a short spin (10 µs).
    pub calls_waiting: usize,
    /// `true` if it traps exits.
    pub trap_exit: bool,
    /// Messages it has taken and handled (calls, casts, infos, timers, DOWNs, EXITs).
    pub messages_handled: u64,
    /// Its timers not yet fired or cancelled, as of its last callback.
    pub pending_timers: usize,
    /// The name of the OS thread it runs on.
    pub thread_name: Option<String>,
    /// The id of that thread (`std::thread::ThreadId`, as `Debug` prints it).
    pub thread_id: Option<String>,
}

/// The whole node, as [`RuntimeHandle::snapshot`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The node's name.
    pub node: NodeName,
    /// Every live process, in pid order.
    pub processes: Vec<ProcessInfo>,
    /// Every supervisor, in pid order.
    pub supervisors: Vec<SupervisorNode>,
    /// The supervisors not started by another supervisor: the roots of the trees.
    pub tree_roots: Vec<Pid>,
    /// The processes that are neither supervisors nor started by one.
    pub outside_trees: Vec<Pid>,
    /// The call cycles: each a list of processes every one of which is blocked
    /// calling the next (the last calls the first), starting at the lowest pid.
    pub deadlocks: Vec<Vec<Pid>>,
    /// Dead processes whose threads still run their code.
    pub zombies: Vec<Pid>,
}

impl Snapshot {
    /// The process `pid`, if it was live.
    pub fn process(&self, pid: &Pid) -> Option<&ProcessInfo> {
        self.processes.iter().find(|info| info.pid == *pid)
    }

    /// The supervisor `pid`, if it was one.
    pub fn supervisor(&self, pid: &Pid) -> Option<&SupervisorNode> {
        self.supervisors.iter().find(|node| node.pid == *pid)
    }

    /// The snapshot as one JSON object (see SEMANTICS.md, section 12, for the fields).
    pub fn to_json(&self) -> String {
        json::snapshot(self)
    }

    /// The supervision trees as indented text, one line per supervisor and child
    /// (status, mailbox depth, restarts, last exit), then the processes outside any
    /// tree, the call cycles and the zombies. The same as the snapshot's `Display`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
    /// use otp_threads::{Runtime, Worker};
    ///
    /// struct Idle;
    /// impl Worker for Idle {
    ///     type Call = ();
    ///     type Reply = ();
    ///     type Cast = ();
    ///     type Info = ();
    ///     type Continue = ();
    /// }
    ///
    /// let runtime = Runtime::new();
    /// Supervisor::new(Strategy::OneForOne)
    ///     .name("top")
    ///     .child(ChildSpec::worker("idle", || Idle))
    ///     .start(&runtime)
    ///     .unwrap();
    /// let text = runtime.snapshot().tree_text();
    /// assert!(text.contains("top <"), "{text}");
    /// assert!(text.contains("└─ idle <"), "{text}");
    /// assert!(text.contains("Idle: waiting, mailbox 0, restarts 0"), "{text}");
    /// runtime.shutdown(Duration::from_secs(5)).unwrap();
    /// ```
    pub fn tree_text(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Snapshot {
    /// See [`Snapshot::tree_text`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tree_text::render(self, f)
    }
}

impl ProcessInfo {
    /// The process as one JSON object.
    pub fn to_json(&self) -> String {
        json::process(self)
    }
}

impl RuntimeHandle {
    /// What the live local process `pid` is doing and holds (`erlang:process_info/1`);
    /// `None` if it is dead, a zombie, or not of this node.
    pub fn process_info(&self, pid: &Pid) -> Option<ProcessInfo> {
        let cell = self.inner.lookup(pid)?;
        describe(&self.inner, &cell)
    }

    /// Every process, the supervision trees and the call cycles of this node.
    pub fn snapshot(&self) -> Snapshot {
        let rt = &self.inner;
        let now = self.now();
        let mut cells = rt.all_cells();
        cells.sort_by_key(|cell| cell.pid.number());
        let processes: Vec<ProcessInfo> =
            cells.iter().filter_map(|cell| describe(rt, cell)).collect();
        let supervisors: Vec<SupervisorNode> = cells
            .iter()
            .filter(|cell| cell.is_alive())
            .filter_map(|cell| {
                let view = cell.supervision.get()?;
                Some(view.node(cell, &processes, now))
            })
            .collect();
        let is_supervisor = |pid: &Pid| supervisors.iter().any(|node| node.pid == *pid);
        let tree_roots = supervisors
            .iter()
            .filter(|node| !is_supervisor(&node.parent))
            .map(|node| node.pid)
            .collect();
        let outside_trees = processes
            .iter()
            .filter(|info| !is_supervisor(&info.pid) && !is_supervisor(&info.parent))
            .map(|info| info.pid)
            .collect();
        Snapshot {
            node: rt.node,
            deadlocks: deadlock::current_cycles(rt, &cells),
            processes,
            supervisors,
            tree_roots,
            outside_trees,
            zombies: self.zombies(),
        }
    }
}

fn describe(rt: &RuntimeInner, cell: &Arc<ProcessCell>) -> Option<ProcessInfo> {
    let local = |number: u64| Pid::local(rt.node, rt.creation, number);
    let activity = &cell.activity;
    let running = activity.running();
    let status = match activity.calling() {
        // Nothing was recorded: the activity holds its initial values.
        _ if !rt.introspection && !cell.on_plain_thread => ProcessStatus::Unrecorded,
        Some(callee) => ProcessStatus::Calling {
            callee: local(callee),
            callback: running.map(|(callback, _)| callback),
            waiting_for: activity.calling_for(),
        },
        None => match running {
            Some((callback, running_for)) => ProcessStatus::Running {
                callback,
                running_for,
            },
            None if cell.on_plain_thread => ProcessStatus::PlainThread,
            None => ProcessStatus::Waiting,
        },
    };
    let mailbox_len = cell.mailbox.len();
    let thread = activity.thread();
    let state = cell.state.lock();
    if state.status != Status::Alive {
        return None;
    }
    let mut links: Vec<Pid> = state.links.iter().copied().collect();
    let mut monitors: Vec<Pid> = state.monitoring.values().copied().collect();
    let mut monitored_by = Vec::new();
    let mut monitored_by_threads = 0;
    let mut calls_waiting = 0;
    for watcher in state.monitored_by.values() {
        match watcher {
            Watcher::Process { cell, .. } => monitored_by.push(cell.pid),
            Watcher::Channel { .. } => monitored_by_threads += 1,
            Watcher::Call(_) => calls_waiting += 1,
        }
    }
    let registered_name = state.name.clone();
    let trap_exit = state.trap_exit;
    drop(state);
    links.sort();
    monitors.sort();
    monitored_by.sort();
    Some(ProcessInfo {
        pid: cell.pid,
        registered_name,
        type_name: (!cell.type_name.is_empty()).then_some(cell.type_name),
        parent: cell.parent,
        status,
        mailbox_len,
        links,
        monitors,
        monitored_by,
        monitored_by_threads,
        calls_waiting,
        trap_exit,
        messages_handled: activity.handled(),
        pending_timers: activity.pending_timers(),
        thread_name: thread.as_ref().and_then(|thread| thread.name.clone()),
        thread_id: thread.map(|thread| thread.id),
    })
}
