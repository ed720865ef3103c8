//! The process table and the life and death of a process.
//!
//! Every worker has a [`ProcessCell`]: its pid, a lock-protected [`ProcessState`]
//! (links, monitors, name, trap-exit flag) and a type-erased handle to its mailbox
//! so that the runtime can deliver DOWN and EXIT messages without knowing the
//! worker's message types.
//!
//! Death is decided under the cell's lock and takes effect for everybody at once,
//! whichever thread decides it: the dying worker's own thread when it stops, or the
//! thread that sends it a killing exit signal. [`die`] then releases the name, and
//! only after that fires the links and monitors, as Erlang does.

use std::any::Any;
use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use crate::exit::{Down, ExitOutcome, ExitReason, receive_exit_signal};
use crate::fast_hash::FastMap;
use crate::observer::{Activity, SupervisorView};
use crate::pid::{MonitorRef, Pid};
use crate::runtime::RuntimeInner;

/// A system message for a worker's mailbox.
pub(crate) enum Signal {
    /// An exit signal that the worker traps (or, from its parent, obeys).
    Exit { from: Pid, reason: ExitReason },
    /// A monitor of this worker's fired.
    Down(Down),
    /// Stop in an orderly way: run `terminate(reason)` and exit (like `gen_server:stop`).
    Stop(ExitReason),
    /// The process was killed by another thread (with this reason); wake it so its
    /// thread can leave.
    Wake(ExitReason),
}

/// A worker's mailbox, seen without its message types.
pub(crate) trait Mailbox: Send + Sync {
    /// Delivers a system message; `false` if the mailbox is gone.
    fn signal(&self, signal: Signal) -> bool;
    /// The typed sender, for [`RuntimeHandle::worker_ref`](crate::RuntimeHandle::worker_ref).
    fn as_any(&self) -> &dyn Any;
    /// Messages and signals queued, not yet taken (for the observer).
    fn len(&self) -> usize;
}

/// Where a call waits for its reply; told when the callee dies.
pub(crate) trait CallWatch: Send + Sync {
    /// The callee of the call tagged `tag` (its monitor's id) died.
    fn callee_down(&self, tag: u64, reason: ExitReason);
}

/// Who is told when a monitored process dies.
pub(crate) enum Watcher {
    /// A worker: the DOWN goes into its mailbox.
    Process {
        cell: Arc<ProcessCell>,
        name: Option<Arc<str>>,
    },
    /// A plain thread: the DOWN goes into a channel.
    Channel {
        sender: Sender<Down>,
        name: Option<Arc<str>>,
    },
    /// A pending call: the callee's death ends the call (the caller's reply slot,
    /// shared by its calls, told which call by the monitor's id).
    Call(Arc<dyn CallWatch>),
}

impl Watcher {
    pub(crate) fn notify(&self, reference: MonitorRef, reason: ExitReason) {
        let pid = reference.target;
        let name = match self {
            Watcher::Process { name, .. } | Watcher::Channel { name, .. } => name.clone(),
            Watcher::Call(_) => None,
        };
        match self {
            Watcher::Process { cell, .. } => {
                // The watcher's `monitoring` entry stays until it takes this DOWN from
                // its mailbox: that is how `demonitor(flush)` knows one may be there.
                if cell.is_alive() {
                    cell.mailbox.signal(Signal::Down(Down {
                        reference,
                        pid,
                        name,
                        reason,
                    }));
                }
            }
            Watcher::Channel { sender, .. } => {
                // Never block a dying process on a watcher's full channel; a watcher
                // that dropped its receiver no longer cares.
                let down = Down {
                    reference,
                    pid,
                    name,
                    reason,
                };
                if let Err(crossbeam_channel::TrySendError::Full(down)) = sender.try_send(down) {
                    log::error!("DOWN {down:?} dropped: the watcher's channel is full");
                }
            }
            Watcher::Call(call) => call.callee_down(reference.id, reason),
        }
    }
}

/// Whether a process is running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Alive,
    Dead(ExitReason),
}

/// The mutable part of a process, behind its cell's lock.
pub(crate) struct ProcessState {
    pub(crate) status: Status,
    pub(crate) trap_exit: bool,
    /// Std's hasher: a peer node's pids land here (a remote LINK).
    pub(crate) links: HashSet<Pid>,
    /// Monitors other processes (or threads, or calls) hold on this process. Keyed by
    /// reference ids this runtime numbers, so the fast hasher: every call inserts and
    /// removes one.
    pub(crate) monitored_by: FastMap<u64, Watcher>,
    /// Monitors this process holds on others, by reference id, until their DOWN is
    /// taken from the mailbox.
    pub(crate) monitoring: FastMap<u64, Pid>,
    pub(crate) name: Option<Arc<str>>,
}

/// One process: identity, state and mailbox.
pub(crate) struct ProcessCell {
    pub(crate) pid: Pid,
    /// The process that spawned it (the runtime's root pid for plain threads).
    pub(crate) parent: Pid,
    /// A plain thread's own process ([`Process`](crate::Process)), not a worker.
    pub(crate) on_plain_thread: bool,
    /// The worker's type (`std::any::type_name`), empty for a plain thread's process.
    pub(crate) type_name: &'static str,
    /// What it is doing, for the observer (src/observer/activity.rs).
    pub(crate) activity: Activity,
    /// Set by a supervisor in its `init`: what the observer shows of it. Boxed: most
    /// processes are not supervisors, and the view is some 100 bytes.
    pub(crate) supervision: OnceLock<Box<SupervisorView>>,
    alive: AtomicBool,
    pub(crate) state: Mutex<ProcessState>,
    pub(crate) mailbox: Box<dyn Mailbox>,
}

impl ProcessCell {
    pub(crate) fn new(pid: Pid, parent: Pid, mailbox: Box<dyn Mailbox>) -> ProcessCell {
        ProcessCell {
            pid,
            parent,
            on_plain_thread: false,
            type_name: "",
            activity: Activity::new(),
            supervision: OnceLock::new(),
            alive: AtomicBool::new(true),
            state: Mutex::new(ProcessState {
                status: Status::Alive,
                trap_exit: false,
                links: HashSet::new(),
                monitored_by: FastMap::default(),
                monitoring: FastMap::default(),
                name: None,
            }),
            mailbox,
        }
    }

    /// The same cell, for a worker of type `type_name`.
    pub(crate) fn with_type_name(mut self, type_name: &'static str) -> ProcessCell {
        self.type_name = type_name;
        self
    }

    /// A lock-free liveness check for hot paths (sends); the state lock is the truth.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// The exit reason once dead.
    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        match &self.state.lock().status {
            Status::Alive => None,
            Status::Dead(reason) => Some(reason.clone()),
        }
    }
}

const SHARDS: usize = 32;

/// Keyed by process numbers this runtime hands out: the fast hasher.
type Shard = RwLock<FastMap<u64, Arc<ProcessCell>>>;

/// Live processes by process number, sharded to keep spawn and lookup cheap.
pub(crate) struct ProcessTable {
    shards: Box<[Shard]>,
    count: AtomicUsize,
}

impl ProcessTable {
    pub(crate) fn new() -> ProcessTable {
        ProcessTable {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(FastMap::default()))
                .collect(),
            count: AtomicUsize::new(0),
        }
    }

    fn shard(&self, number: u64) -> &Shard {
        &self.shards[(number as usize) % SHARDS]
    }

    pub(crate) fn insert(&self, cell: Arc<ProcessCell>) {
        let number = cell.pid.number();
        // Counted first, so that a death racing the insert never takes the count below 0.
        self.count.fetch_add(1, Ordering::AcqRel);
        self.shard(number).write().insert(number, cell);
    }

    pub(crate) fn get(&self, number: u64) -> Option<Arc<ProcessCell>> {
        self.shard(number).read().get(&number).cloned()
    }

    /// Removes a process; returns how many are left.
    pub(crate) fn remove(&self, number: u64) -> usize {
        if self.shard(number).write().remove(&number).is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel) - 1
        } else {
            self.count.load(Ordering::Acquire)
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub(crate) fn all(&self) -> Vec<Arc<ProcessCell>> {
        let mut cells = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            cells.extend(shard.read().values().cloned());
        }
        cells
    }
}

/// What a death leaves to do after the state lock is released.
struct Remains {
    cell: Arc<ProcessCell>,
    reason: ExitReason,
    wake: bool,
    links: HashSet<Pid>,
    monitoring: FastMap<u64, Pid>,
    name: Option<Arc<str>>,
}

/// Marks a process dead under its (held) state lock and takes what must be signalled.
fn mark_dead(
    cell: &Arc<ProcessCell>,
    state: &mut ProcessState,
    reason: ExitReason,
    wake: bool,
) -> Option<Remains> {
    if state.status != Status::Alive {
        return None;
    }
    state.status = Status::Dead(reason.clone());
    cell.alive.store(false, Ordering::Release);
    Some(Remains {
        cell: cell.clone(),
        reason,
        wake,
        links: std::mem::take(&mut state.links),
        monitoring: std::mem::take(&mut state.monitoring),
        name: state.name.take(),
    })
}

/// Terminates a process with `reason`, unless it is dead already.
///
/// `wake` is set when another thread decides the death (a kill or a killing exit
/// signal): the worker's thread is then woken so that it notices and leaves.
/// Returns `false` if the process was already dead.
///
/// Deaths that this one causes over links are handled in a loop, not by recursion,
/// so that a long chain of links cannot overflow a small worker stack.
pub(crate) fn die(
    rt: &RuntimeInner,
    cell: &Arc<ProcessCell>,
    reason: ExitReason,
    wake: bool,
) -> bool {
    let Some(first) = mark_dead(cell, &mut cell.state.lock(), reason, wake) else {
        return false;
    };
    finish_deaths(rt, first);
    true
}

/// Finishes `first` and every death it causes over links, then wakes the threads of
/// the processes killed by this thread's decision.
///
/// Those wakes come last, after a yield of this thread: every EXIT and DOWN is out by
/// then, and a watcher woken onto this core runs before the victims' threads, which
/// only free themselves. Without the yield the watcher waited for the victim's wake,
/// which costs its waker 17-19 µs on our VMs when it follows another wake, and for the
/// victim's clean-up: kill -> DOWN at a watcher took 26-30 µs instead of 5-8 µs (W4).
/// When the watcher is on another core the yield costs one syscall.
fn finish_deaths(rt: &RuntimeInner, first: Remains) {
    let mut pending = VecDeque::from([first]);
    let mut victims = Vec::new();
    while let Some(remains) = pending.pop_front() {
        if let Some(victim) = finish_death(rt, remains, &mut pending) {
            victims.push(victim);
        }
    }
    if victims.is_empty() {
        return;
    }
    yield_to_watchers();
    for (cell, reason) in victims {
        cell.mailbox.signal(Signal::Wake(reason));
    }
}

/// The least time between two of a thread's yields to watchers.
const WATCHER_YIELD_GAP: Duration = Duration::from_micros(100);

thread_local! {
    /// When this thread last yielded to watchers.
    static LAST_WATCHER_YIELD: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Yields the core, at most once per [`WATCHER_YIELD_GAP`]: a loop of kills (a
/// supervisor stopping its children, a shutdown) yields now and then, not at every
/// kill, since on a busy core each yield may cost the thread a time slice.
fn yield_to_watchers() {
    let now = Instant::now();
    let due = LAST_WATCHER_YIELD
        .try_with(|last| {
            let due = last
                .get()
                .is_none_or(|at| now.saturating_duration_since(at) >= WATCHER_YIELD_GAP);
            if due {
                last.set(Some(now));
            }
            due
        })
        .unwrap_or(false);
    if due {
        std::thread::yield_now();
    }
}

/// Sends a death's signals; returns the process and reason if its thread must be woken
/// to notice (another thread decided the death).
fn finish_death(
    rt: &RuntimeInner,
    remains: Remains,
    pending: &mut VecDeque<Remains>,
) -> Option<(Arc<ProcessCell>, ExitReason)> {
    let Remains {
        cell,
        reason,
        wake,
        links,
        monitoring,
        name,
    } = remains;
    let pid = cell.pid;
    if !reason.is_normal_stop() {
        log::debug!("process {pid} exited: {reason}");
    }
    // The name is a directly visible resource: released before links and monitors fire,
    // so that whoever gets the EXIT or DOWN can register it again at once.
    if let Some(name) = name {
        rt.release_name(&name, pid);
    }
    // So are its timers on a manual clock: whoever gets the DOWN sees them gone. (The
    // thread's clean-up cancels again, for a timer set by code still running after a kill.)
    if let crate::clock::Clock::Manual(clock) = &rt.clock {
        clock.cancel_all_of(pid);
    }
    rt.table_remove(pid);
    // Monitors this process held on others are gone with it.
    for (id, target) in monitoring {
        if let Some(target_cell) = rt.lookup(&target) {
            target_cell.state.lock().monitored_by.remove(&id);
        }
        // Distribution: a monitor of a process on another node (src/dist/hooks.rs).
        #[cfg(feature = "dist")]
        crate::dist::hooks::demonitor_remote(rt, &MonitorRef { id, target });
    }
    for linked in links {
        // Distribution: a link to a process on another node (src/dist/hooks.rs).
        #[cfg(feature = "dist")]
        if crate::dist::hooks::link_exit_to_remote(rt, pid, linked, &reason) {
            continue;
        }
        if let Some(death) = exit_signal(rt, pid, linked, reason.clone(), true) {
            pending.push_back(death);
        }
    }
    // The DOWNs are sent under the dead process's lock, so that a `demonitor` that no
    // longer finds its monitor knows its DOWN is already delivered (and can flush it).
    // Every watcher's delivery is a non-blocking send and takes no other process lock.
    // The watchers themselves are dropped after the lock is released: a watcher may
    // hold the last reference to a mailbox full of user values.
    let watchers: Vec<(u64, Watcher)> = {
        let mut state = cell.state.lock();
        let watchers: Vec<_> = state.monitored_by.drain().collect();
        for (id, watcher) in &watchers {
            watcher.notify(
                MonitorRef {
                    id: *id,
                    target: pid,
                },
                reason.clone(),
            );
        }
        watchers
    };
    drop(watchers);
    // Waking the killed worker's idle thread (a futex wake) only frees the thread, and
    // must not delay the signals everyone else is waiting for: the caller does it last.
    wake.then_some((cell, reason))
}

/// Delivers an exit signal from `from` to `to`, applying the receiving rules.
pub(crate) fn deliver_exit(
    rt: &RuntimeInner,
    from: Pid,
    to: Pid,
    reason: ExitReason,
    linked: bool,
) {
    if let Some(death) = exit_signal(rt, from, to, reason, linked) {
        finish_deaths(rt, death);
    }
}

/// Applies an exit signal; a death it causes is returned for the caller to finish.
fn exit_signal(
    rt: &RuntimeInner,
    from: Pid,
    to: Pid,
    reason: ExitReason,
    linked: bool,
) -> Option<Remains> {
    let cell = rt.lookup(&to)?;
    let mut state = cell.state.lock();
    if state.status != Status::Alive {
        return None;
    }
    // A link signal whose link was removed (unlink) is dropped; otherwise the link is
    // gone with the process that sent it.
    if linked && !state.links.remove(&from) {
        return None;
    }
    match receive_exit_signal(state.trap_exit, &reason, linked, from == to) {
        ExitOutcome::Ignore => None,
        ExitOutcome::Trap => {
            // Delivered under the lock so that trap_exit cannot change in between.
            cell.mailbox.signal(Signal::Exit { from, reason });
            None
        }
        ExitOutcome::Die(reason) => mark_dead(&cell, &mut state, reason, true),
    }
}
