//! [`Context`]: what a worker can do from inside its callbacks.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::run::{Envelope, SpawnOptions, spawn};
use super::{Worker, WorkerRef};
use crate::clock::Clock;
use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::{MonitorRef, Pid, TimerRef};
use crate::process::{ProcessCell, Watcher, deliver_exit};
use crate::runtime::RuntimeHandle;
use crate::timer::Timers;
use crate::{link, monitor, registry};

/// The worker's view of itself and the runtime, passed to every callback.
pub struct Context<W: Worker> {
    pub(crate) cell: Arc<ProcessCell>,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) mailbox: Sender<Envelope<W>>,
    pub(crate) timers: Timers<W::Info>,
    /// Monitors demonitored with flush whose DOWN may still be in the mailbox.
    pub(crate) flushed: HashSet<u64>,
    /// The receiving end of the mailbox, for [`take_queued_messages`](Self::take_queued_messages).
    pub(crate) inbox: Receiver<Envelope<W>>,
    /// Envelopes taken off the mailbox by `take_queued_messages` and not selected: the
    /// loop serves them, in order, before anything still in the channel.
    pub(crate) saved: VecDeque<Envelope<W>>,
}

impl<W: Worker> Context<W> {
    /// This worker's pid.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// The process that started this worker (the runtime's root pid if a plain thread
    /// did). An exit signal from it, when trapped, stops the worker with `terminate`, as
    /// a `gen_server` obeys its parent.
    pub fn parent(&self) -> Pid {
        self.cell.parent
    }

    /// The runtime, to spawn, look up names, and so on.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.runtime
    }

    /// A typed handle to this worker, to hand to others.
    pub fn handle(&self) -> WorkerRef<W> {
        WorkerRef::new(
            self.cell.clone(),
            self.mailbox.clone(),
            self.runtime.inner.clone(),
        )
    }

    /// Sets whether exit signals become [`Info::Exit`](super::Info::Exit) messages
    /// instead of killing this worker (`process_flag(trap_exit, Bool)`). Returns the
    /// previous value.
    pub fn trap_exit(&mut self, trap: bool) -> bool {
        std::mem::replace(&mut self.cell.state.lock().trap_exit, trap)
    }

    /// `true` if this worker traps exits.
    pub fn is_trapping_exits(&self) -> bool {
        self.cell.state.lock().trap_exit
    }

    /// Links this worker with `pid`. Linking twice makes one link. A pid that is not
    /// running gives [`Error::NoProc`], or, if this worker traps exits, an EXIT message
    /// with reason `NoProc`.
    pub fn link(&mut self, pid: &Pid) -> Result<(), Error> {
        link::link(&self.runtime.inner, &self.cell, *pid)
    }

    /// Removes the link with `pid`, if any; no exit signal travels over it afterwards.
    pub fn unlink(&mut self, pid: &Pid) {
        link::unlink(&self.runtime.inner, &self.cell, *pid)
    }

    /// Monitors `pid`: one [`Info::Down`](super::Info::Down) comes when it terminates, at
    /// once with `NoProc` if it is not running.
    pub fn monitor(&mut self, pid: &Pid) -> MonitorRef {
        let watcher = Watcher::Process {
            cell: self.cell.clone(),
            name: None,
        };
        monitor::monitor(&self.runtime.inner, *pid, watcher, Some(&self.cell))
    }

    /// Monitors the process registered as `name`; the DOWN carries the name.
    pub fn monitor_name(&mut self, name: &str) -> MonitorRef {
        let name: Arc<str> = name.into();
        let target = self
            .runtime
            .whereis(&name)
            .unwrap_or(self.runtime.inner.root);
        let watcher = Watcher::Process {
            cell: self.cell.clone(),
            name: Some(name),
        };
        monitor::monitor(&self.runtime.inner, target, watcher, Some(&self.cell))
    }

    /// Removes a monitor, as Erlang's `demonitor(Ref)` / `demonitor(Ref, [flush])`:
    /// returns `true` whatever the monitor's state (use
    /// [`demonitor_info`](Self::demonitor_info) to learn it). With `flush`, a DOWN for it
    /// already in the mailbox is removed too, also after an earlier `demonitor` without
    /// flush.
    pub fn demonitor(&mut self, reference: MonitorRef, flush: bool) -> bool {
        self.demonitor_info(reference, flush);
        true
    }

    /// Removes a monitor and says what it found, as `demonitor(Ref, [info])` and
    /// `demonitor(Ref, [flush, info])`. Without `flush`: `true` if the monitor was active
    /// (no DOWN will come), `false` if its DOWN was already delivered (it stays in the
    /// mailbox) or the reference is unknown. With `flush`: `false` if a DOWN had to be
    /// removed from the mailbox, `true` otherwise.
    pub fn demonitor_info(&mut self, reference: MonitorRef, flush: bool) -> bool {
        let active = monitor::demonitor(&self.runtime.inner, &reference, None);
        let mut state = self.cell.state.lock();
        if active {
            state.monitoring.remove(&reference.id);
            return true;
        }
        // DOWNs are delivered under the target's lock, so an inactive monitor's DOWN is
        // in the mailbox exactly while our entry for it lives (it goes when the DOWN is
        // taken from the mailbox).
        if flush && state.monitoring.remove(&reference.id).is_some() {
            self.flushed.insert(reference.id);
            return false;
        }
        flush
    }

    /// Removes from this worker's mailbox the messages already queued there
    /// ([`Info::Message`](super::Info::Message), sent with `WorkerRef::send` and the like)
    /// that `selects` picks, and returns them in the order they came. Everything else in
    /// the mailbox (calls, casts, other messages, timers, signals) stays, in its order,
    /// and is served before anything that arrives later: Erlang's selective
    /// `receive Pattern -> ... after 0 -> ... end`, without waiting.
    ///
    /// This is how a library that delivered a message into a worker's mailbox takes it
    /// back before the worker handles it (a zen monitor's `demonitor(Ref, [flush])`
    /// removing a DOWN it already handed over). Messages sent while this runs may or may
    /// not be looked at. Cost: one pass over the queued envelopes; while some are held
    /// back, the observer's message-queue length (the channel's) does not count them.
    pub fn take_queued_messages(
        &mut self,
        mut selects: impl FnMut(&W::Info) -> bool,
    ) -> Vec<W::Info> {
        self.saved.extend(self.inbox.try_iter());
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.saved.len());
        for envelope in self.saved.drain(..) {
            match envelope {
                Envelope::Info(message) if selects(&message) => taken.push(message),
                other => kept.push_back(other),
            }
        }
        self.saved = kept;
        taken
    }

    /// Sends an exit signal to `pid` from this worker (Erlang `exit(Pid, Reason)`).
    pub fn exit(&mut self, pid: &Pid, reason: ExitReason) {
        // A killed worker whose code still runs sends no more signals.
        if self.cell.is_alive() {
            deliver_exit(&self.runtime.inner, self.cell.pid, *pid, reason, false);
        }
    }

    /// Registers this worker under `name`.
    pub fn register(&mut self, name: &str) -> Result<(), Error> {
        registry::register(&self.runtime.inner, name.into(), &self.cell)
    }

    /// Starts a worker linked to this one, with this one as its parent (`spawn_link`
    /// through `proc_lib:start_link`). Returns once its `init` succeeded; if `init`
    /// fails, the error comes back and no EXIT reaches this worker (OTP 26 and later).
    pub fn spawn_link<C: Worker>(&mut self, worker: C) -> Result<WorkerRef<C>, Error> {
        let options = SpawnOptions {
            parent: Some(self.cell.clone()),
            link: true,
            name: None,
        };
        spawn(&self.runtime.inner, worker, options)
    }

    /// Starts a worker with this one as its parent, not linked.
    pub fn spawn<C: Worker>(&mut self, worker: C) -> Result<WorkerRef<C>, Error> {
        let options = SpawnOptions {
            parent: Some(self.cell.clone()),
            link: false,
            name: None,
        };
        spawn(&self.runtime.inner, worker, options)
    }

    /// The time on the runtime's clock (the real clock, or a
    /// [`ManualClock`](crate::ManualClock)): use it to compute deadlines for
    /// [`send_at`](Self::send_at).
    pub fn now(&self) -> Instant {
        self.runtime.inner.clock.now()
    }

    /// Sends `message` to this worker after `delay`, as [`Info::Timer`](super::Info::Timer).
    pub fn send_after(&mut self, message: W::Info, delay: Duration) -> TimerRef {
        match &self.runtime.inner.clock {
            Clock::Real => self.send_at(message, crate::timer::deadline_after(delay)),
            Clock::Manual(clock) => {
                let fire = self.timer_delivery(message);
                clock.schedule_after(delay, Some(self.cell.pid), fire)
            }
        }
    }

    /// Sends `message` to this worker at `deadline` (an absolute timer, as
    /// `erlang:send_after/4` with `{abs, true}`); a past deadline fires at once.
    pub fn send_at(&mut self, message: W::Info, deadline: Instant) -> TimerRef {
        match &self.runtime.inner.clock {
            Clock::Real => {
                let id = self.runtime.inner.new_ref_id();
                self.timers.insert(id, deadline, message)
            }
            Clock::Manual(clock) => {
                let fire = self.timer_delivery(message);
                clock.schedule(deadline, Some(self.cell.pid), fire)
            }
        }
    }

    /// How a manual clock delivers a timer: into this worker's mailbox, where its loop
    /// takes it like any message.
    fn timer_delivery(&self, message: W::Info) -> crate::clock::Fire {
        let mailbox = self.mailbox.clone();
        Box::new(move |timer| {
            let _ = mailbox.send(Envelope::Timer(timer, message));
        })
    }

    /// Cancels a timer; the time that was left, or `None` if it had fired already (its
    /// message is then in the mailbox) or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerRef) -> Option<Duration> {
        match &self.runtime.inner.clock {
            Clock::Real => self.timers.cancel(timer, Instant::now()),
            Clock::Manual(clock) => clock.cancel(timer),
        }
    }

    /// The time left on a pending timer.
    pub fn read_timer(&self, timer: TimerRef) -> Option<Duration> {
        match &self.runtime.inner.clock {
            Clock::Real => self.timers.read(timer, Instant::now()),
            Clock::Manual(clock) => clock.read(timer),
        }
    }

    /// The number of pending timers.
    pub fn pending_timers(&self) -> usize {
        match &self.runtime.inner.clock {
            Clock::Real => self.timers.len(),
            Clock::Manual(clock) => clock.pending_of(self.cell.pid),
        }
    }
}
