//! The runtime: one node incarnation, its process table, names and threads.
//!
//! [`Runtime`] owns everything it starts: dropping it (or calling
//! [`Runtime::shutdown`]) stops every worker and joins every thread. [`RuntimeHandle`]
//! is a cheap, cloneable handle to the same runtime for workers and other threads.

mod futex_hash;
mod limits;
mod one_shot;
mod pool;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::clock::{Clock, ManualClock};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::fast_hash::FastMap;
use crate::monitor::Monitor;
use crate::pid::{MonitorRef, NodeName, Pid, next_creation};
use crate::process::{ProcessCell, ProcessTable, Watcher, deliver_exit, die};
use crate::timer::deadline_after;
use crate::worker::{SpawnOptions, Worker, WorkerRef, spawn};
use crate::{Down, monitor};

pub use limits::SystemLimit;
pub(crate) use limits::{WorkerSlots, diagnose_thread_failure};
pub(crate) use one_shot::{OneShotSender, one_shot};
#[cfg(feature = "dist")]
pub(crate) use pool::spin_recv_whole;
pub(crate) use pool::{HANDOFF_SPIN, MESSAGE_SPIN, Pool, ThreadSlot, spin_recv, spin_until};

/// Settings of a [`Runtime`], built with [`Runtime::builder`].
#[derive(Clone, Debug)]
pub struct RuntimeBuilder {
    node: String,
    stack_size: usize,
    call_timeout: Duration,
    reuse_threads: bool,
    idle_thread_timeout: Duration,
    shutdown_timeout: Duration,
    clock: Clock,
    max_workers: usize,
    fail_deadlocked_calls: bool,
    introspection: bool,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            node: NodeName::DEFAULT.to_owned(),
            stack_size: 1024 * 1024,
            call_timeout: Duration::from_secs(5),
            reuse_threads: true,
            idle_thread_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            clock: Clock::Real,
            max_workers: usize::MAX,
            fail_deadlocked_calls: false,
            introspection: true,
        }
    }
}

/// The smallest worker stack we accept: below this, ordinary library code overflows.
const MIN_STACK_SIZE: usize = 64 * 1024;

impl RuntimeBuilder {
    /// The node name, `name@host` (default `"nonode@nohost"`).
    pub fn node_name(mut self, node: impl Into<String>) -> Self {
        self.node = node.into();
        self
    }

    /// Stack size of worker threads in bytes (default 1 MiB; at least 64 KiB). Only
    /// the pages a worker touches become resident.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Timeout of [`WorkerRef::call`] (default 5 s, as `gen_server:call`).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Whether a worker's thread runs later workers once its worker has exited
    /// (default `true`). With `false` every worker gets a fresh OS thread.
    pub fn reuse_threads(mut self, reuse: bool) -> Self {
        self.reuse_threads = reuse;
        self
    }

    /// How long an idle pooled thread waits for a new worker before it exits
    /// (default 30 s).
    pub fn idle_thread_timeout(mut self, timeout: Duration) -> Self {
        self.idle_thread_timeout = timeout;
        self
    }

    /// The timeout [`Drop`] uses for its implicit [`Runtime::shutdown`] (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Runs the runtime on `clock` instead of the real clock: worker timers, call
    /// timeouts and supervisors' restart windows then follow
    /// [`ManualClock::advance`](crate::ManualClock::advance). Stop and shutdown
    /// timeouts stay on real time. For tests; the default is the real clock.
    pub fn manual_clock(mut self, clock: &ManualClock) -> Self {
        self.clock = Clock::Manual(clock.clone());
        self
    }

    /// The most workers the runtime runs at once (default: no limit of its own, only the
    /// OS's). A spawn beyond it fails at once with
    /// [`Error::SystemLimit`]`(`[`SystemLimit::MaxWorkers`]`)`, starting nothing. A
    /// worker counts until its thread is free again (a killed worker still running its
    /// code counts). Plain-thread processes do not count: they bring their own thread.
    ///
    /// The OS's ceiling comes first on most machines: each thread takes four memory
    /// mappings, and `vm.max_map_count` (65,530 by default) allows about 16,000 threads
    /// per process; see [`SystemLimit`] for what to raise.
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = max_workers;
        self
    }

    /// Fail a call that would close a cycle of blocked calls (A calls B while B calls
    /// A, or longer) at once with [`Error::Deadlock`], instead of letting every call in
    /// the cycle wait for its timeout (default `false`: the cycle is only logged and
    /// shown by [`RuntimeHandle::snapshot`]).
    pub fn fail_deadlocked_calls(mut self, fail: bool) -> Self {
        self.fail_deadlocked_calls = fail;
        self
    }

    /// Whether workers record what they are doing for the observer (default `true`):
    /// the running callback, the messages handled, the pending timers, and each call's
    /// wait-for edge (which deadlock detection follows). With `false` the message path
    /// skips that bookkeeping; [`RuntimeHandle::process_info`] and
    /// [`RuntimeHandle::snapshot`] still work, reduced: a worker's status is
    /// [`ProcessStatus::Unrecorded`](crate::ProcessStatus::Unrecorded), its
    /// `messages_handled` and `pending_timers` stay 0 and no call cycle is detected
    /// (so [`fail_deadlocked_calls`](RuntimeBuilder::fail_deadlocked_calls) is refused).
    /// Mailbox lengths, links, monitors, names, threads and the supervision trees are
    /// read from the processes themselves and stay exact. The cost it saves is measured
    /// by `cargo bench --bench runtime -- introspection`.
    pub fn introspection(mut self, record: bool) -> Self {
        self.introspection = record;
        self
    }

    /// Checks the settings and starts the runtime.
    pub fn build(self) -> Result<Runtime, Error> {
        validate_node_name(&self.node)?;
        if self.stack_size < MIN_STACK_SIZE {
            return Err(invalid(
                "stack_size",
                format!(
                    "{} bytes is below the minimum of {MIN_STACK_SIZE}",
                    self.stack_size
                ),
            ));
        }
        if self.call_timeout.is_zero() {
            return Err(invalid("call_timeout", "must be greater than zero".into()));
        }
        if self.idle_thread_timeout.is_zero() {
            return Err(invalid(
                "idle_thread_timeout",
                "must be greater than zero".into(),
            ));
        }
        if self.max_workers == 0 {
            return Err(invalid("max_workers", "must be at least 1".into()));
        }
        if self.fail_deadlocked_calls && !self.introspection {
            return Err(invalid(
                "fail_deadlocked_calls",
                "needs the wait-for edges that introspection(false) turns off".into(),
            ));
        }
        let node = NodeName::new(&self.node);
        let creation = next_creation();
        let inner = Arc::new(RuntimeInner {
            node,
            creation,
            root: Pid::local(node, creation, 0),
            next_process: AtomicU64::new(1),
            next_ref: AtomicU64::new(1),
            table: ProcessTable::new(),
            names: RwLock::new(FastMap::default()),
            pool: Pool::new(
                self.stack_size,
                self.reuse_threads,
                self.idle_thread_timeout,
            ),
            stopping: AtomicBool::new(false),
            emptied: (Mutex::new(()), Condvar::new()),
            call_timeout: self.call_timeout,
            clock: self.clock,
            worker_slots: WorkerSlots::new(self.max_workers),
            fail_deadlocked_calls: self.fail_deadlocked_calls,
            introspection: self.introspection,
        });
        Ok(Runtime {
            handle: RuntimeHandle { inner },
            shutdown_timeout: self.shutdown_timeout,
            shut_down: false,
        })
    }
}

fn invalid(option: &'static str, reason: String) -> Error {
    Error::InvalidOption { option, reason }
}

/// Erlang node names are `name@host`, both parts non-empty.
fn validate_node_name(node: &str) -> Result<(), Error> {
    match node.split_once('@') {
        Some((name, host)) if !name.is_empty() && !host.is_empty() && !host.contains('@') => Ok(()),
        _ => Err(invalid(
            "node_name",
            format!("{node:?} is not of the form name@host"),
        )),
    }
}

pub(crate) struct RuntimeInner {
    pub(crate) node: NodeName,
    pub(crate) creation: u32,
    /// The pid plain threads act as: the parent of workers they spawn, the sender of
    /// exit signals they send.
    pub(crate) root: Pid,
    next_process: AtomicU64,
    next_ref: AtomicU64,
    table: ProcessTable,
    names: RwLock<FastMap<Arc<str>, Pid>>,
    pub(crate) pool: Pool,
    stopping: AtomicBool,
    /// Signalled when the last process leaves the table.
    emptied: (Mutex<()>, Condvar),
    pub(crate) call_timeout: Duration,
    pub(crate) clock: Clock,
    /// Workers counted against the `max_workers` setting.
    pub(crate) worker_slots: WorkerSlots,
    /// See [`RuntimeBuilder::fail_deadlocked_calls`].
    pub(crate) fail_deadlocked_calls: bool,
    /// See [`RuntimeBuilder::introspection`].
    pub(crate) introspection: bool,
}

impl RuntimeInner {
    pub(crate) fn new_pid(&self) -> Pid {
        let number = self.next_process.fetch_add(1, Ordering::Relaxed);
        Pid::local(self.node, self.creation, number)
    }

    pub(crate) fn new_ref_id(&self) -> u64 {
        self.next_ref.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// `true` if the pid names a process of this node incarnation.
    pub(crate) fn is_local(&self, pid: &Pid) -> bool {
        pid.node() == self.node && pid.creation() == self.creation
    }

    pub(crate) fn lookup(&self, pid: &Pid) -> Option<Arc<ProcessCell>> {
        if !self.is_local(pid) {
            return None;
        }
        self.table.get(pid.number())
    }

    pub(crate) fn table_insert(&self, cell: Arc<ProcessCell>) {
        self.table.insert(cell);
    }

    pub(crate) fn table_remove(&self, pid: Pid) {
        if self.table.remove(pid.number()) == 0 {
            let _guard = self.emptied.0.lock();
            self.emptied.1.notify_all();
        }
    }

    /// Every process in the table.
    pub(crate) fn all_cells(&self) -> Vec<Arc<ProcessCell>> {
        self.table.all()
    }

    /// The cell of a local process by its number.
    pub(crate) fn cell_by_number(&self, number: u64) -> Option<Arc<ProcessCell>> {
        self.table.get(number)
    }

    pub(crate) fn names(&self) -> &RwLock<FastMap<Arc<str>, Pid>> {
        &self.names
    }

    /// Removes `name` if it still names `pid`.
    pub(crate) fn release_name(&self, name: &Arc<str>, pid: Pid) {
        let mut names = self.names.write();
        if names.get(name) == Some(&pid) {
            names.remove(name);
        }
    }

    /// Waits until no process is left, or `deadline`.
    fn wait_until_empty(&self, deadline: Instant) -> bool {
        let mut guard = self.emptied.0.lock();
        while self.table.len() > 0 {
            if self.emptied.1.wait_until(&mut guard, deadline).timed_out() {
                return self.table.len() == 0;
            }
        }
        true
    }
}

/// A cloneable handle to a running [`Runtime`], usable from any thread.
#[derive(Clone)]
pub struct RuntimeHandle {
    pub(crate) inner: Arc<RuntimeInner>,
}

impl RuntimeHandle {
    /// Starts a worker on its own thread and returns once its `init` has succeeded,
    /// as `proc_lib:start_link` does. An error or panic in `init` comes back as
    /// [`Error::InitFailed`], and no worker is left behind.
    pub fn spawn_worker<W: Worker>(&self, worker: W) -> Result<WorkerRef<W>, Error> {
        spawn(&self.inner, worker, SpawnOptions::default())
    }

    /// Like [`spawn_worker`](Self::spawn_worker), registering the worker under `name`
    /// before its `init` runs (a taken name fails the start with [`Error::NameTaken`]).
    pub fn spawn_named<W: Worker>(&self, name: &str, worker: W) -> Result<WorkerRef<W>, Error> {
        let options = SpawnOptions {
            name: Some(name.into()),
            ..SpawnOptions::default()
        };
        spawn(&self.inner, worker, options)
    }

    /// The time on this runtime's clock: `Instant::now()`, or the
    /// [`ManualClock`]'s time if the runtime was built with one.
    pub fn now(&self) -> Instant {
        self.inner.clock.now()
    }

    /// The manual clock the runtime was built with, if any.
    pub fn manual_clock(&self) -> Option<ManualClock> {
        match &self.inner.clock {
            Clock::Real => None,
            Clock::Manual(clock) => Some(clock.clone()),
        }
    }

    /// This runtime's node name.
    pub fn node(&self) -> NodeName {
        self.inner.node
    }

    /// The pid plain threads act as (sender of their exit signals, parent of the
    /// workers they start).
    pub fn root_pid(&self) -> Pid {
        self.inner.root
    }

    /// `true` if `pid` names a running process of this runtime.
    pub fn is_alive(&self, pid: &Pid) -> bool {
        self.inner.lookup(pid).is_some_and(|cell| cell.is_alive())
    }

    /// The number of running processes.
    pub fn process_count(&self) -> usize {
        self.inner.table.len()
    }

    /// The pids of all running processes.
    pub fn processes(&self) -> Vec<Pid> {
        self.inner.table.all().iter().map(|cell| cell.pid).collect()
    }

    /// A typed handle to the worker `pid`, if it runs and is a `W`.
    pub fn worker_ref<W: Worker>(&self, pid: &Pid) -> Result<WorkerRef<W>, Error> {
        if !self.inner.is_local(pid) && pid.node() != self.inner.node {
            return Err(Error::NoConnection(pid.node().to_string()));
        }
        let cell = self.inner.lookup(pid).ok_or(Error::NoProc)?;
        WorkerRef::from_cell(&self.inner, cell)
    }

    /// Sends an exit signal to `pid` as Erlang's `exit(Pid, Reason)` does, from the
    /// root pid: `Kill` cannot be trapped and the target dies with `Killed`; other
    /// reasons follow the receiving rules (see [`ExitReason`]).
    pub fn exit(&self, pid: &Pid, reason: ExitReason) {
        deliver_exit(&self.inner, self.inner.root, *pid, reason, false);
    }

    /// `exit(pid, Kill)`.
    pub fn kill(&self, pid: &Pid) {
        self.exit(pid, ExitReason::Kill);
    }

    /// Monitors `pid` from this thread: the returned [`Monitor`] receives one [`Down`].
    /// A pid that is not running gives a DOWN with `NoProc` at once.
    pub fn monitor(&self, pid: &Pid) -> Monitor {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let watcher = Watcher::Channel { sender, name: None };
        let reference = monitor::monitor(&self.inner, *pid, watcher, None);
        Monitor::new(reference, receiver, &self.inner)
    }

    /// Monitors the process registered as `name`; its DOWN names it. An unregistered
    /// name gives a DOWN with `NoProc` at once (its `pid` is then [`root_pid`](Self::root_pid)).
    pub fn monitor_name(&self, name: &str) -> Monitor {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let name: Arc<str> = name.into();
        let target = self.whereis(&name).unwrap_or(self.inner.root);
        let watcher = Watcher::Channel {
            sender,
            name: Some(name),
        };
        let reference = monitor::monitor(&self.inner, target, watcher, None);
        Monitor::new(reference, receiver, &self.inner)
    }

    /// Monitors `pid` and sends its [`Down`] to `sender`, so that one thread can watch
    /// many processes on one channel. Stop with [`demonitor`](Self::demonitor).
    ///
    /// Use an unbounded channel (or one with room for every DOWN): a dying process never
    /// waits for a watcher, so a DOWN that does not fit is dropped (and logged).
    pub fn monitor_to(&self, pid: &Pid, sender: &Sender<Down>) -> MonitorRef {
        let watcher = Watcher::Channel {
            sender: sender.clone(),
            name: None,
        };
        monitor::monitor(&self.inner, *pid, watcher, None)
    }

    /// Removes a monitor set with [`monitor_to`](Self::monitor_to), as Erlang's
    /// `demonitor(Ref)`: returns `true` whatever the monitor's state. A DOWN already on
    /// the channel stays there; [`demonitor_flush`](Self::demonitor_flush) removes it,
    /// [`demonitor_info`](Self::demonitor_info) says whether the monitor was active.
    pub fn demonitor(&self, reference: &MonitorRef) -> bool {
        monitor::demonitor(&self.inner, reference, None);
        true
    }

    /// Removes a monitor, as `demonitor(Ref, [info])`: `true` if it was still active
    /// (then no DOWN will be sent for it), `false` if its DOWN was already sent.
    pub fn demonitor_info(&self, reference: &MonitorRef) -> bool {
        monitor::demonitor(&self.inner, reference, None)
    }

    /// Removes a monitor set with [`monitor_to`](Self::monitor_to) and takes its DOWN
    /// off the channel if it is already there, as `demonitor(Ref, [flush, info])`:
    /// `false` if its DOWN had to be taken off the channel, `true` otherwise (the
    /// monitor was still active, or its DOWN was already received).
    ///
    /// A crossbeam channel cannot drop one item in place: the DOWNs queued on
    /// `receiver` are taken off, the monitor's own is dropped and the others are sent
    /// back through `sender` (the channel's), in their order. DOWNs of different
    /// processes have no order between them in Erlang either, so only DOWNs arriving
    /// during the flush can come before the ones sent back. A bounded channel with no
    /// room left drops (and logs) what does not fit, as a dying process does.
    pub fn demonitor_flush(
        &self,
        reference: &MonitorRef,
        sender: &Sender<Down>,
        receiver: &Receiver<Down>,
    ) -> bool {
        if monitor::demonitor(&self.inner, reference, None) {
            return true;
        }
        // DOWNs are sent under the dead process's lock: it is on the channel by now,
        // unless someone took it already.
        let queued: Vec<Down> = receiver.try_iter().collect();
        let mut flushed = false;
        for down in queued {
            if !flushed && down.reference == *reference {
                flushed = true;
                continue;
            }
            if let Err(error) = sender.try_send(down) {
                log::error!("a DOWN was dropped by a flush: {error}");
            }
        }
        !flushed
    }

    /// Registers `pid` under `name` (Erlang `register/2`).
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), Error> {
        let cell = self.inner.lookup(pid).ok_or(Error::NoProc)?;
        crate::registry::register(&self.inner, name.into(), &cell)
    }

    /// Removes a registered name; `true` if it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        crate::registry::unregister(&self.inner, name)
    }

    /// The pid registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.inner.names.read().get(name).copied()
    }

    /// A typed handle to the worker registered under `name`.
    pub fn whereis_worker<W: Worker>(&self, name: &str) -> Result<WorkerRef<W>, Error> {
        let pid = self.whereis(name).ok_or(Error::NoProc)?;
        self.worker_ref(&pid)
    }

    /// All registered names.
    pub fn registered(&self) -> Vec<Arc<str>> {
        self.inner.names.read().keys().cloned().collect()
    }

    /// Workers that are dead for everyone else but whose thread is still running their
    /// code (a killed worker's thread is joined when the user code returns).
    pub fn zombies(&self) -> Vec<Pid> {
        self.inner
            .pool
            .running()
            .into_iter()
            .filter(|pid| !self.is_alive(pid))
            .collect()
    }

    /// OS threads this runtime started that have not exited (running or pooled).
    pub fn thread_count(&self) -> usize {
        self.inner.pool.live_threads()
    }
}

/// An otp-threads node incarnation: owns its workers and their threads.
///
/// ```
/// use otp_threads::Runtime;
/// let runtime = Runtime::new();
/// assert_eq!(runtime.node().as_str(), "nonode@nohost");
/// runtime.shutdown(std::time::Duration::from_secs(1)).unwrap();
/// ```
pub struct Runtime {
    handle: RuntimeHandle,
    shutdown_timeout: Duration,
    shut_down: bool,
}

impl Runtime {
    /// A runtime with default settings.
    pub fn new() -> Runtime {
        Runtime::builder()
            .build()
            .expect("the default settings are valid")
    }

    /// Settings for a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A cloneable handle for other threads and workers.
    pub fn handle(&self) -> RuntimeHandle {
        self.handle.clone()
    }

    /// Stops every worker and joins every thread the runtime started.
    ///
    /// Plain threads' own processes ([`Process`](crate::Process)) end first, with
    /// `Shutdown`, whether they trap exits or not (their threads cannot answer).
    /// Then every process started from a plain thread gets a `Shutdown` exit signal
    /// from the root pid, as a supervisor stops its children: a worker that traps exits
    /// runs `terminate`, and a supervisor stops its own children. Processes still
    /// running after `timeout` are killed. Then the threads are joined, waiting up to
    /// `timeout` again; a thread still running user code then (a thread cannot be
    /// pre-empted) is reported in [`Error::ShutdownIncomplete`] and left detached.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), Error> {
        self.shut_down = true;
        self.stop(timeout)
    }

    fn stop(&self, timeout: Duration) -> Result<(), Error> {
        let inner = &self.handle.inner;
        inner.stopping.store(true, Ordering::Release);
        // No spawn succeeds from here on: threads freed by exiting workers can leave.
        inner.pool.begin_close();
        let deadline = deadline_after(timeout);
        // Plain threads' own processes first: their threads cannot answer an EXIT (one
        // of them may be the thread running this), so they end at once with
        // `Shutdown`, and their links pass it on to what they started.
        for cell in inner.table.all() {
            if cell.on_plain_thread {
                die(inner, &cell, ExitReason::Shutdown, true);
            }
        }
        // First the workers plain threads started, as a supervisor stops its children:
        // supervisors among them stop their own trees in order.
        let roots: Vec<_> = inner
            .table
            .all()
            .into_iter()
            .filter(|cell| cell.parent == inner.root)
            .collect();
        self.stop_and_wait(&roots, deadline);
        // Then whatever is left: workers started unlinked by workers that are gone.
        let orphans = inner.table.all();
        self.stop_and_wait(&orphans, deadline);
        if !inner.wait_until_empty(deadline) {
            let left = inner.table.all();
            log::warn!(
                "shutdown: killing {} workers still running after {timeout:?}",
                left.len()
            );
            for cell in left {
                die(inner, &cell, ExitReason::Killed, true);
            }
        }
        let stuck = inner.pool.close_and_join(deadline_after(timeout));
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(Error::ShutdownIncomplete(stuck))
        }
    }

    /// Sends `Shutdown` from the root pid to `cells` and waits for their DOWNs, at most
    /// until `deadline`.
    fn stop_and_wait(&self, cells: &[Arc<ProcessCell>], deadline: Instant) {
        let inner = &self.handle.inner;
        let (sender, downs) = crossbeam_channel::unbounded();
        for cell in cells {
            self.handle.monitor_to(&cell.pid, &sender);
        }
        for cell in cells {
            deliver_exit(inner, inner.root, cell.pid, ExitReason::Shutdown, false);
        }
        for _ in cells {
            if downs.recv_deadline(deadline).is_err() {
                return;
            }
        }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Deref for Runtime {
    type Target = RuntimeHandle;
    fn deref(&self) -> &RuntimeHandle {
        &self.handle
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.shut_down
            && let Err(error) = self.stop(self.shutdown_timeout)
        {
            log::error!("runtime dropped: {error}");
        }
    }
}
