//! Plain threads as full processes: [`Process`], the process a blocking program's own
//! thread runs, the way an Erlang shell is a process.
//!
//! [`RuntimeHandle::process`](crate::RuntimeHandle::process) gives the calling thread
//! a process of its own: a pid, and a mailbox that is a crossbeam [`Receiver`] of
//! [`Received`] items, usable in `select!`. Through the handle the thread links and
//! unlinks, traps exits, monitors and demonitors, sends exit signals, registers a
//! name, and spawns workers (it is their parent). Others reach it with a
//! [`ProcessRef`]. Messages, EXITs and DOWNs arrive on the one mailbox, so those from
//! one sender keep their order.
//!
//! What holds, exactly, is documented on [`Process`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::clock::{Clock, ClockTimeout};
use crate::error::Error;
use crate::exit::{Down, Exit, ExitReason};
use crate::pid::{MonitorRef, Pid};
use crate::process::{Mailbox, ProcessCell, Signal, Watcher, deliver_exit, die};
use crate::runtime::RuntimeHandle;
use crate::worker::{
    SpawnOptions, Worker, WorkerRef, enter_thread_process, leave_thread_process,
    sending_is_allowed, spawn,
};
use crate::{link, monitor, registry};

/// What a plain-thread process receives, in the order it arrived.
#[derive(Debug, PartialEq)]
pub enum Received<M> {
    /// A message sent with [`ProcessRef::send`].
    Message(M),
    /// An exit signal this process traps (`{'EXIT', From, Reason}`).
    Exit(Exit),
    /// A monitor of this process fired (`{'DOWN', Ref, process, Pid, Reason}`).
    Down(Down),
    /// This process was killed by an exit signal it did not trap: the last item. Only
    /// the raw [`receiver`](Process::receiver) shows it; the `recv` family returns
    /// [`Error::Terminated`] instead.
    Terminated(ExitReason),
}

/// A plain-thread process's mailbox, seen by the runtime.
struct ProcessMailbox<M>(Sender<Received<M>>);

impl<M: Send + 'static> Mailbox for ProcessMailbox<M> {
    fn signal(&self, signal: Signal) -> bool {
        let item = match signal {
            Signal::Exit { from, reason } => Received::Exit(Exit { from, reason }),
            Signal::Down(down) => Received::Down(down),
            Signal::Wake(reason) => Received::Terminated(reason),
            // Only workers are stopped in order; nothing sends this to a process.
            Signal::Stop(_) => return true,
        };
        self.0.send(item).is_ok()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        &self.0
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The process a plain thread runs: its pid, its mailbox, and what a process can do.
/// Made with [`RuntimeHandle::process`](crate::RuntimeHandle::process). Dropping it
/// ends the process with `Normal`.
///
/// # What holds, exactly
///
/// - **One process per thread.** A thread that already runs a process (a worker
///   thread, or a thread holding a `Process`) is refused with
///   [`Error::AlreadyAProcess`]. The handle cannot leave its thread (`!Send`).
/// - **Receiving.** [`recv`](Process::recv), [`recv_timeout`](Process::recv_timeout),
///   [`try_recv`](Process::try_recv) take the oldest item; [`receive_matching`](Process::receive_matching)
///   takes the oldest item a predicate accepts, waiting up to a timeout, and leaves the
///   others queued in their order (Erlang's selective receive and its save queue).
///   Items a selective receive or a flush set aside are kept in the handle, not on the
///   channel: after one, the [`receiver`](Process::receiver) alone no longer shows
///   everything ([`has_set_aside`](Process::has_set_aside) says so); the `recv` family
///   always does. On a runtime with a [`ManualClock`](crate::ManualClock), receive
///   timeouts follow it.
/// - **Killed.** A thread cannot be pre-empted. When an exit signal kills the process
///   (it does not trap exits and the reason is abnormal, or `Kill` from `exit`), it is
///   dead at once for everyone else: its name is released, its links and monitors fire,
///   messages to it are dropped. The thread itself learns it at its next receive:
///   every `recv`-family call on a dead process returns [`Error::Terminated`] with the
///   reason, whatever was queued, and the raw receiver yields
///   [`Received::Terminated`] after what was queued before the death. From then on the
///   thread sends nothing as that process: casts and messages it sends through any
///   handle are dropped, calls and links fail with `NoProc`, exit signals are not sent,
///   monitors are not set, spawns fail, as for a killed worker.
/// - **Ending.** Dropping the handle ends the process with `Normal`: linked processes
///   that trap exits get an EXIT with `Normal`, monitors fire with `Normal`. The thread
///   may then make a new process.
/// - **Shutdown.** [`Runtime::shutdown`](crate::Runtime::shutdown) ends the live
///   plain-thread processes first, with `Shutdown`, trapping or not: their threads
///   cannot answer an EXIT in time (often one of them is the thread calling
///   `shutdown`). Their links pass the `Shutdown` on as any exit does: a trapping
///   worker they started stops with `terminate`, as when its parent exits.
pub struct Process<M: Send + 'static> {
    cell: Arc<ProcessCell>,
    sender: Sender<Received<M>>,
    receiver: Receiver<Received<M>>,
    runtime: RuntimeHandle,
    /// Items a selective receive or a flush took off the channel and left, in order.
    set_aside: RefCell<VecDeque<Received<M>>>,
    /// A thread's process stays on its thread.
    _on_this_thread: PhantomData<*const ()>,
}

/// A handle others use to send to a plain-thread [`Process`]; cheap to clone, usable
/// from any thread.
pub struct ProcessRef<M: Send + 'static> {
    cell: Arc<ProcessCell>,
    sender: Sender<Received<M>>,
}

impl<M: Send + 'static> Clone for ProcessRef<M> {
    fn clone(&self) -> Self {
        ProcessRef {
            cell: self.cell.clone(),
            sender: self.sender.clone(),
        }
    }
}

impl<M: Send + 'static> fmt::Debug for ProcessRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcessRef({})", self.cell.pid)
    }
}

impl<M: Send + 'static> fmt::Debug for Process<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Process({})", self.cell.pid)
    }
}

impl<M: Send + 'static> ProcessRef<M> {
    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// `true` while the process runs.
    pub fn is_alive(&self) -> bool {
        self.cell.is_alive()
    }

    /// Sends a message; dropped if the process is dead (as in Erlang).
    pub fn send(&self, message: M) {
        let _ = self.try_send(message);
    }

    /// Sends a message; `NoProc` if the process is dead.
    pub fn try_send(&self, message: M) -> Result<(), Error> {
        // A killed process whose thread still runs sends nothing more.
        if !sending_is_allowed() || !self.cell.is_alive() {
            return Err(Error::NoProc);
        }
        match self.sender.try_send(Received::Message(message)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Error::NoProc),
        }
    }
}

impl RuntimeHandle {
    /// Makes the calling plain thread a process of this runtime, with its own pid and
    /// mailbox of `M` messages (see [`Process`]). Fails with
    /// [`Error::AlreadyAProcess`] on a thread that already runs one, and with
    /// [`Error::RuntimeStopped`] once the runtime is shutting down.
    pub fn process<M: Send + 'static>(&self) -> Result<Process<M>, Error> {
        let rt = &self.inner;
        if rt.is_stopping() {
            return Err(Error::RuntimeStopped);
        }
        let (sender, receiver) = crossbeam_channel::unbounded::<Received<M>>();
        let pid = rt.new_pid();
        let mut cell = ProcessCell::new(pid, rt.root, Box::new(ProcessMailbox(sender.clone())));
        cell.on_plain_thread = true;
        cell.activity.bind_to_current_thread();
        let cell = Arc::new(cell);
        enter_thread_process(&cell).map_err(Error::AlreadyAProcess)?;
        rt.table_insert(cell.clone());
        Ok(Process {
            cell,
            sender,
            receiver,
            runtime: self.clone(),
            set_aside: RefCell::new(VecDeque::new()),
            _on_this_thread: PhantomData,
        })
    }

    /// A handle to send to the plain-thread process `pid`, if it runs and takes `M`.
    pub fn process_ref<M: Send + 'static>(&self, pid: &Pid) -> Result<ProcessRef<M>, Error> {
        let cell = self.inner.lookup(pid).ok_or(Error::NoProc)?;
        let sender = cell
            .mailbox
            .as_any()
            .downcast_ref::<Sender<Received<M>>>()
            .ok_or(Error::WrongWorkerType(cell.pid))?
            .clone();
        Ok(ProcessRef { cell, sender })
    }
}

impl<M: Send + 'static> Process<M> {
    /// This process's pid.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// The runtime.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.runtime
    }

    /// A handle for others to send to this process.
    pub fn process_ref(&self) -> ProcessRef<M> {
        ProcessRef {
            cell: self.cell.clone(),
            sender: self.sender.clone(),
        }
    }

    /// `true` until the process is killed (or dropped).
    pub fn is_alive(&self) -> bool {
        self.cell.is_alive()
    }

    /// The exit reason, once killed.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.cell.exit_reason()
    }

    /// The mailbox as a crossbeam channel, for `select!`. Items set aside by a
    /// selective receive or a flush are not on it (see [`has_set_aside`](Self::has_set_aside)).
    pub fn receiver(&self) -> &Receiver<Received<M>> {
        &self.receiver
    }

    /// `true` if a selective receive or a flush left items in the handle that the raw
    /// receiver does not show; the `recv` family takes them first.
    pub fn has_set_aside(&self) -> bool {
        !self.set_aside.borrow().is_empty()
    }

    /// `Terminated` once the process is dead.
    fn check_alive(&self) -> Result<(), Error> {
        match self.cell.exit_reason() {
            None => Ok(()),
            Some(reason) => Err(Error::Terminated(reason)),
        }
    }

    /// Waits for the oldest item.
    pub fn recv(&self) -> Result<Received<M>, Error> {
        self.take(|_| true, None)
    }

    /// Waits up to `timeout` for the oldest item; [`Error::Timeout`] if none comes.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Received<M>, Error> {
        self.take(|_| true, Some(timeout))
    }

    /// The oldest item if there is one, without waiting.
    pub fn try_recv(&self) -> Result<Option<Received<M>>, Error> {
        match self.take(|_| true, Some(Duration::ZERO)) {
            Ok(item) => Ok(Some(item)),
            Err(Error::Timeout) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Selective receive: the oldest item `matches` accepts, waiting up to `timeout`
    /// (`Duration::MAX` waits forever); the items it passes over stay queued, in their
    /// order, for later receives. [`Error::Timeout`] if none matched in time.
    /// `matches` must not receive from this process itself.
    pub fn receive_matching(
        &self,
        matches: impl FnMut(&Received<M>) -> bool,
        timeout: Duration,
    ) -> Result<Received<M>, Error> {
        let timeout = (timeout != Duration::MAX).then_some(timeout);
        self.take(matches, timeout)
    }

    /// The receive loop: the set-aside items first, then the channel.
    fn take(
        &self,
        mut matches: impl FnMut(&Received<M>) -> bool,
        timeout: Option<Duration>,
    ) -> Result<Received<M>, Error> {
        self.check_alive()?;
        {
            let mut set_aside = self.set_aside.borrow_mut();
            if let Some(index) = set_aside.iter().position(&mut matches) {
                let item = set_aside.remove(index).expect("the index was just found");
                drop(set_aside);
                return Ok(self.taken(item));
            }
        }
        let manual = match (&self.runtime.inner.clock, timeout) {
            (Clock::Manual(clock), Some(timeout)) if !timeout.is_zero() => {
                Some(ClockTimeout::start(clock, timeout))
            }
            _ => None,
        };
        let deadline = match (&manual, timeout) {
            (None, Some(timeout)) => Some(crate::timer::deadline_after(timeout)),
            _ => None,
        };
        loop {
            let item = self.next_item(manual.as_ref(), deadline)?;
            if let Received::Terminated(reason) = item {
                return Err(Error::Terminated(reason));
            }
            // Killed while this item was on its way: the process is dead all the same.
            self.check_alive()?;
            if matches(&item) {
                return Ok(self.taken(item));
            }
            self.set_aside.borrow_mut().push_back(item);
        }
    }

    /// The next item from the channel, by the deadline or the manual clock's timeout.
    fn next_item(
        &self,
        manual: Option<&ClockTimeout<'_>>,
        deadline: Option<Instant>,
    ) -> Result<Received<M>, Error> {
        let received = match (manual, deadline) {
            (Some(timeout), _) => crossbeam_channel::select! {
                recv(self.receiver) -> item => item.map_err(|_| RecvTimeoutError::Disconnected),
                recv(timeout.ended()) -> _ => Err(RecvTimeoutError::Timeout),
            },
            (None, Some(deadline)) => self.receiver.recv_deadline(deadline),
            (None, None) => self
                .receiver
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        // The handle holds a sender: the channel cannot be disconnected.
        received.map_err(|_| Error::Timeout)
    }

    /// Book-keeping for an item handed to the caller: a DOWN ends its monitor's entry.
    fn taken(&self, item: Received<M>) -> Received<M> {
        if let Received::Down(down) = &item {
            self.cell.state.lock().monitoring.remove(&down.reference.id);
        }
        item
    }

    /// Sets whether exit signals become [`Received::Exit`] items instead of killing this
    /// process (`process_flag(trap_exit, Bool)`); the previous value.
    pub fn trap_exit(&self, trap: bool) -> bool {
        std::mem::replace(&mut self.cell.state.lock().trap_exit, trap)
    }

    /// Links this process with `pid` (see [`Context::link`](crate::Context::link)).
    pub fn link(&self, pid: &Pid) -> Result<(), Error> {
        link::link(&self.runtime.inner, &self.cell, *pid)
    }

    /// Removes the link with `pid`, if any.
    pub fn unlink(&self, pid: &Pid) {
        link::unlink(&self.runtime.inner, &self.cell, *pid)
    }

    /// Monitors `pid`: one [`Received::Down`] comes when it terminates, at once with
    /// `NoProc` if it is not running.
    pub fn monitor(&self, pid: &Pid) -> MonitorRef {
        let watcher = Watcher::Process {
            cell: self.cell.clone(),
            name: None,
        };
        monitor::monitor(&self.runtime.inner, *pid, watcher, Some(&self.cell))
    }

    /// Removes a monitor, as `demonitor(Ref)` / `demonitor(Ref, [flush])`: `true`
    /// whatever the monitor's state. With `flush` its DOWN is removed from the mailbox
    /// if it is there (also after an earlier demonitor without flush).
    pub fn demonitor(&self, reference: MonitorRef, flush: bool) -> bool {
        self.demonitor_info(reference, flush);
        true
    }

    /// Removes a monitor and says what it found (the `info` option): without `flush`
    /// `true` if it was active; with `flush` `false` exactly when a DOWN had to be
    /// removed from the mailbox.
    pub fn demonitor_info(&self, reference: MonitorRef, flush: bool) -> bool {
        let active = monitor::demonitor(&self.runtime.inner, &reference, None);
        self.cell.state.lock().monitoring.remove(&reference.id);
        if active {
            return true;
        }
        if !flush {
            return false;
        }
        // DOWNs are delivered under the target's lock: an inactive monitor's DOWN is on
        // the channel by now, unless it was taken. Move the channel's items aside, in
        // order, and take the DOWN out of them.
        let mut set_aside = self.set_aside.borrow_mut();
        set_aside.extend(self.receiver.try_iter());
        let position = set_aside
            .iter()
            .position(|item| matches!(item, Received::Down(down) if down.reference == reference));
        match position {
            Some(index) => {
                set_aside.remove(index);
                false
            }
            None => true,
        }
    }

    /// Sends an exit signal to `pid` from this process (`exit(Pid, Reason)`).
    pub fn exit(&self, pid: &Pid, reason: ExitReason) {
        // A killed process whose thread still runs sends no more signals.
        if self.cell.is_alive() {
            deliver_exit(&self.runtime.inner, self.cell.pid, *pid, reason, false);
        }
    }

    /// Registers this process under `name`.
    pub fn register(&self, name: &str) -> Result<(), Error> {
        registry::register(&self.runtime.inner, name.into(), &self.cell)
    }

    /// Starts a worker linked to this process, which is its parent (its exit signal
    /// stops a trapping worker with `terminate`, as a `gen_server` obeys its parent).
    pub fn spawn_link<W: Worker>(&self, worker: W) -> Result<WorkerRef<W>, Error> {
        let options = SpawnOptions {
            parent: Some(self.cell.clone()),
            link: true,
            name: None,
        };
        spawn(&self.runtime.inner, worker, options)
    }

    /// Starts a worker with this process as its parent, not linked.
    pub fn spawn<W: Worker>(&self, worker: W) -> Result<WorkerRef<W>, Error> {
        let options = SpawnOptions {
            parent: Some(self.cell.clone()),
            link: false,
            name: None,
        };
        spawn(&self.runtime.inner, worker, options)
    }
}

impl<M: Send + 'static> Drop for Process<M> {
    fn drop(&mut self) {
        // The process ends with `normal` (a no-op if it was killed before).
        die(&self.runtime.inner, &self.cell, ExitReason::Normal, false);
        leave_thread_process(&self.cell);
    }
}
