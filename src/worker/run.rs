//! Starting a worker and its message loop.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::reply_slot::CallRequest;
use super::{Context, Info, InitOutcome, ReplyTo, Step, Worker, WorkerRef};
use crate::error::Error;
use crate::exit::{Exit, ExitReason};
use crate::observer::Callback;
use crate::pid::{Pid, TimerRef};
use crate::process::{Mailbox, ProcessCell, Signal, die};
use crate::runtime::{OneShotSender, RuntimeHandle, RuntimeInner, ThreadSlot};
use crate::timer::Timers;
use crate::{link, registry};

/// What travels through a worker's mailbox. One channel carries everything, so that
/// messages and signals from one sender keep their order.
pub(crate) enum Envelope<W: Worker> {
    /// A call from a waiting caller: the request is in the caller's reply slot, so
    /// that the envelope stays as small as a cast's (inline, the request and token
    /// would make every slot of the mailbox larger) without an allocation per call.
    Call(CallRequest<W::Call, W::Reply>),
    /// A call whose request cannot be in a slot (nobody waits on it, or the caller's
    /// slot still holds an earlier, timed-out request): boxed, for the same reason.
    BoxedCall(Box<(W::Call, ReplyTo<W::Reply>)>),
    Cast(W::Cast),
    Info(W::Info),
    Timer(TimerRef, W::Info),
    /// Boxed: signals are rare, and inline they would make every slot of the mailbox
    /// (every cast) several times larger.
    Signal(Box<Signal>),
}

impl<W: Worker> Mailbox for Sender<Envelope<W>> {
    fn signal(&self, signal: Signal) -> bool {
        self.send(Envelope::Signal(Box::new(signal))).is_ok()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn len(&self) -> usize {
        Sender::len(self)
    }
}

thread_local! {
    /// The process the current thread runs, if it is a worker thread.
    static CURRENT: RefCell<Option<Arc<ProcessCell>>> = const { RefCell::new(None) };
    /// `CURRENT.is_some()`, readable without a borrow: the fast path of every send
    /// from a plain thread.
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Reply tokens of this worker's own calls dropped unanswered during the current
    /// callback: whether that is `NoReply` or the worker's exit depends on what the
    /// callback returns.
    static DROPPED_REPLIES: RefCell<Vec<Box<dyn FnOnce()>>> = const { RefCell::new(Vec::new()) };
}

/// Holds back a reply token's "dropped" notice until the current callback returns.
pub(crate) fn defer_dropped_reply(notice: Box<dyn FnOnce()>) {
    DROPPED_REPLIES.with_borrow_mut(|pending| pending.push(notice));
}

/// After a callback: tokens it dropped fail their calls with `NoReply` if the worker
/// goes on; if it stops, the calls end with its exit reason (their monitors fire).
#[inline]
fn settle_dropped_replies(stopping: bool) {
    let pending = DROPPED_REPLIES.with_borrow_mut(|pending| {
        if pending.is_empty() {
            None
        } else {
            Some(std::mem::take(pending))
        }
    });
    if let Some(pending) = pending
        && !stopping
    {
        for notice in pending {
            notice();
        }
    }
}

fn set_current(cell: Option<Arc<ProcessCell>>) {
    ON_WORKER.set(cell.is_some());
    CURRENT.set(cell);
}

/// Makes the current plain thread run `cell` as its process; `Err(pid)` if the thread
/// already runs one (a worker, or another plain-thread process).
pub(crate) fn enter_thread_process(cell: &Arc<ProcessCell>) -> Result<(), Pid> {
    if let Some(pid) = CURRENT.with_borrow(|current| current.as_ref().map(|own| own.pid)) {
        return Err(pid);
    }
    set_current(Some(cell.clone()));
    Ok(())
}

/// Ends the current thread's run of `cell` (if it is the one it runs).
pub(crate) fn leave_thread_process(cell: &Arc<ProcessCell>) {
    if is_current(cell) {
        set_current(None);
    }
}

/// `false` on the thread of a worker that has been killed but still runs its code.
#[inline]
pub(crate) fn sending_is_allowed() -> bool {
    !ON_WORKER.get()
        || CURRENT.with_borrow(|current| current.as_ref().is_none_or(|cell| cell.is_alive()))
}

/// The process the current thread runs (a worker, or a plain thread's process).
#[inline]
pub(crate) fn current_cell() -> Option<Arc<ProcessCell>> {
    if !ON_WORKER.get() {
        return None;
    }
    CURRENT.with_borrow(|current| current.clone())
}

/// `true` if the current thread runs `cell`.
pub(crate) fn is_current(cell: &Arc<ProcessCell>) -> bool {
    CURRENT.with_borrow(|current| current.as_ref().is_some_and(|own| Arc::ptr_eq(own, cell)))
}

/// How to start a worker.
#[derive(Default)]
pub(crate) struct SpawnOptions {
    /// The spawning worker; `None` for a plain thread (the root pid is the parent).
    pub(crate) parent: Option<Arc<ProcessCell>>,
    /// Link the new worker with its parent (needs `parent`).
    pub(crate) link: bool,
    /// Register the new worker under this name before `init`.
    pub(crate) name: Option<Arc<str>>,
}

/// Starts `worker` and waits for its `init`.
pub(crate) fn spawn<W: Worker>(
    rt: &Arc<RuntimeInner>,
    worker: W,
    options: SpawnOptions,
) -> Result<WorkerRef<W>, Error> {
    if rt.is_stopping() {
        return Err(Error::RuntimeStopped);
    }
    // A worker killed while its code still runs starts nothing more.
    if options
        .parent
        .as_ref()
        .is_some_and(|parent| !parent.is_alive())
    {
        return Err(Error::NoProc);
    }
    // Checked before anything exists, so that a refusal leaves nothing behind.
    let slot = rt.worker_slots.acquire().map_err(Error::SystemLimit)?;
    let pid = rt.new_pid();
    let parent_pid = options.parent.as_ref().map_or(rt.root, |parent| parent.pid);
    let (mailbox, inbox) = crossbeam_channel::unbounded::<Envelope<W>>();
    let cell = Arc::new(
        ProcessCell::new(pid, parent_pid, Box::new(mailbox.clone()))
            .with_type_name(std::any::type_name::<W>()),
    );
    rt.table_insert(cell.clone());
    // Undo the start if anything before `init` fails.
    let abandon = |error: Error| {
        die(rt, &cell, ExitReason::NoProc, false);
        Err(error)
    };
    if let Some(name) = options.name
        && let Err(error) = registry::register(rt, name, &cell)
    {
        return abandon(error);
    }
    if options.link
        && let Some(parent) = &options.parent
        && let Err(error) = link::link(rt, parent, pid)
    {
        return abandon(error);
    }
    let (ack, acked) = crate::runtime::one_shot::<Result<(), Error>>();
    let job_cell = cell.clone();
    let job_mailbox = mailbox.clone();
    let runtime = RuntimeHandle { inner: rt.clone() };
    let linked_parent = options.link.then_some(parent_pid);
    let job = Box::new(move |thread: &ThreadSlot| {
        // Given back once the worker's code has returned and the thread is free (or
        // when the job is dropped unrun).
        let _slot = slot;
        thread.set_running(Some(job_cell.pid));
        run(
            worker,
            job_cell,
            job_mailbox,
            inbox,
            ack,
            runtime,
            linked_parent,
        );
        thread.set_running(None);
    });
    if let Err((job, error)) = rt.pool.execute(job) {
        drop(job);
        if rt.is_stopping() {
            return abandon(Error::RuntimeStopped);
        }
        let limit = crate::runtime::diagnose_thread_failure(&error);
        log::error!("cannot start a worker thread: {limit}");
        return abandon(Error::SystemLimit(limit));
    }
    match acked.recv(crate::runtime::HANDOFF_SPIN) {
        Some(Ok(())) => Ok(WorkerRef::new(cell, mailbox, rt.clone())),
        Some(Err(error)) => Err(error),
        // The job was dropped unrun: the pool closed under it.
        None => Err(Error::RuntimeStopped),
    }
}

/// Runs a worker on the current (pool) thread, from `init` to exit.
fn run<W: Worker>(
    mut worker: W,
    cell: Arc<ProcessCell>,
    mailbox: Sender<Envelope<W>>,
    inbox: Receiver<Envelope<W>>,
    ack: OneShotSender<Result<(), Error>>,
    runtime: RuntimeHandle,
    linked_parent: Option<crate::pid::Pid>,
) {
    set_current(Some(cell.clone()));
    cell.activity.bind_to_current_thread();
    let rt = runtime.inner.clone();
    let mut ctx = Context {
        cell: cell.clone(),
        runtime,
        mailbox,
        timers: Timers::new(),
        flushed: HashSet::new(),
        inbox: inbox.clone(),
        saved: std::collections::VecDeque::new(),
    };
    let introspect = rt.introspection;
    let init = run_init(&mut worker, &mut ctx, introspect);
    let (init, first) = match init {
        InitOutcome::Continue(next) => (InitOutcome::Ready, Some(next)),
        other => (other, None),
    };
    match init {
        InitOutcome::Stop(reason) => {
            // OTP 26+ (proc_lib:init_fail): the starter gets the error as a return
            // value, and no EXIT over the link from the start.
            if let Some(parent) = linked_parent {
                link::unlink(&rt, &cell, parent);
            }
            die(&rt, &cell, reason.clone(), false);
            ack.send(Err(Error::InitFailed(reason)));
        }
        InitOutcome::Ignore => {
            // `ignore`: the process goes with `normal`, and as for a failed init the
            // starter gets the outcome as a return value, no EXIT.
            if let Some(parent) = linked_parent {
                link::unlink(&rt, &cell, parent);
            }
            die(&rt, &cell, ExitReason::Normal, false);
            ack.send(Err(Error::Ignored));
        }
        InitOutcome::Ready | InitOutcome::Continue(_) => {
            // (A continuation was taken out above.) Killed during init: the start fails with how it died.
            match cell.exit_reason() {
                Some(reason) => {
                    ack.send(Err(Error::InitFailed(reason)));
                }
                None => {
                    ack.send(Ok(()));
                    // A worker killed while its last callback ran does not run
                    // terminate, whatever that callback returned.
                    if let Some(reason) = serve(&mut worker, &mut ctx, &inbox, first)
                        && cell.is_alive()
                    {
                        run_terminate(&mut worker, &mut ctx, reason, introspect);
                    }
                }
            }
        }
    }
    release(worker, ctx, inbox, cell.pid);
    // A manual clock holds this worker's timers: they die with it.
    if let crate::clock::Clock::Manual(clock) = &rt.clock {
        clock.cancel_all_of(cell.pid);
    }
    // Tokens dropped by terminate, by a callback a kill interrupted, or with the
    // worker's state: their calls ended with the exit reason, already sent.
    settle_dropped_replies(true);
    set_current(None);
}

// The cold phases of a worker's life run in functions of their own, never inlined
// into `run`: `serve`, inlined there, rests under `run`'s frame for the worker's whole
// life, and with these phases' locals inlined too an idle worker rested a few hundred
// bytes above its stack's third page, touching it or not by the compiler's inlining
// elsewhere (W5: 12.8 or 16.7 KiB per idle worker).

/// Runs `init` (a panic is a failed start).
#[inline(never)]
fn run_init<W: Worker>(worker: &mut W, ctx: &mut Context<W>, introspect: bool) -> InitOutcome<W> {
    if introspect {
        ctx.cell.activity.begin(Callback::Init, true);
    }
    let init = match catch_unwind(AssertUnwindSafe(|| worker.init_outcome(ctx))) {
        Ok(outcome) => outcome,
        Err(payload) => InitOutcome::Stop(panic_reason(payload)),
    };
    if introspect {
        ctx.cell.activity.end(false, ctx.pending_timers());
    }
    init
}

/// Runs `terminate(reason)` after an orderly stop, then the worker dies with the
/// reason (or with the panic `terminate` raised).
#[inline(never)]
fn run_terminate<W: Worker>(
    worker: &mut W,
    ctx: &mut Context<W>,
    reason: ExitReason,
    introspect: bool,
) {
    let cell = ctx.cell.clone();
    if !reason.is_normal_stop() {
        log::error!(
            "worker {} ({}) terminating: {reason}",
            cell.pid,
            std::any::type_name::<W>()
        );
    }
    if introspect {
        cell.activity.begin(Callback::Terminate, true);
    }
    let reason = match catch_unwind(AssertUnwindSafe(|| worker.terminate(&reason, ctx))) {
        Ok(()) => reason,
        Err(payload) => panic_reason(payload),
    };
    die(&ctx.runtime.inner, &cell, reason, false);
}

/// Drops the worker's state and its pending messages; a panic in either is logged,
/// since it must not take the pool thread down.
#[inline(never)]
fn release<W: Worker>(
    worker: W,
    ctx: Context<W>,
    inbox: Receiver<Envelope<W>>,
    pid: crate::pid::Pid,
) {
    // The worker's state goes before the thread takes another worker.
    if catch_unwind(AssertUnwindSafe(move || drop(worker))).is_err() {
        log::error!("dropping worker {pid} panicked");
    }
    // Pending timers and queued messages are user values too.
    if catch_unwind(AssertUnwindSafe(move || drop((ctx, inbox)))).is_err() {
        log::error!("dropping the pending messages of worker {pid} panicked");
    }
}

/// The message loop. Returns the reason of an orderly stop (`terminate` then runs), or
/// `None` if the worker was killed (it then runs nothing more).
fn serve<W: Worker>(
    worker: &mut W,
    ctx: &mut Context<W>,
    inbox: &Receiver<Envelope<W>>,
    first: Option<W::Continue>,
) -> Option<ExitReason> {
    // Read once: the message path then costs one predictable branch per callback.
    let introspect = ctx.runtime.inner.introspection;
    // A continuation from `init` runs before any message.
    let mut continuation: Option<W::Continue> = first;
    loop {
        // One liveness check before each callback: a kill during the previous callback
        // or during the wait is seen before anything else runs.
        let step = match continuation.take() {
            Some(next) => {
                if !ctx.cell.is_alive() {
                    return None;
                }
                if introspect {
                    ctx.cell.activity.begin(Callback::HandleContinue, false);
                }
                let step = guarded(|| worker.handle_continue(next, ctx));
                if introspect {
                    ctx.cell.activity.end(false, ctx.pending_timers());
                }
                step
            }
            None => {
                let (envelope, waited) = match next_envelope(ctx, inbox) {
                    Some(next) => next,
                    None => continue,
                };
                if !ctx.cell.is_alive() {
                    return None;
                }
                let step = match envelope {
                    Envelope::Call(call) => {
                        // Never `None`: only this envelope takes its request.
                        let Some((request, settler, tag)) = call.take() else {
                            continue;
                        };
                        let reply = ReplyTo::new(settler, tag, ctx.cell.clone());
                        if introspect {
                            ctx.cell.activity.begin(Callback::HandleCall, waited);
                        }
                        guarded(|| worker.handle_call(request, reply, ctx))
                    }
                    Envelope::BoxedCall(call) => {
                        let (request, reply) = *call;
                        if introspect {
                            ctx.cell.activity.begin(Callback::HandleCall, waited);
                        }
                        guarded(|| worker.handle_call(request, reply, ctx))
                    }
                    Envelope::Cast(message) => {
                        if introspect {
                            ctx.cell.activity.begin(Callback::HandleCast, waited);
                        }
                        guarded(|| worker.handle_cast(message, ctx))
                    }
                    Envelope::Info(message) => {
                        if introspect {
                            ctx.cell.activity.begin(Callback::HandleInfo, waited);
                        }
                        guarded(|| worker.handle_info(Info::Message(message), ctx))
                    }
                    Envelope::Timer(timer, message) => {
                        if introspect {
                            ctx.cell.activity.begin(Callback::HandleInfo, waited);
                        }
                        guarded(|| worker.handle_info(Info::Timer(timer, message), ctx))
                    }
                    Envelope::Signal(signal) => {
                        match signal_callback(worker, ctx, *signal, waited, introspect) {
                            Dispatched::Step(step) => step,
                            Dispatched::Nothing => continue,
                            Dispatched::Stop(reason) => return Some(reason),
                        }
                    }
                };
                if introspect {
                    ctx.cell.activity.end(true, ctx.pending_timers());
                }
                step
            }
        };
        settle_dropped_replies(matches!(step, Step::Stop(_)));
        match step {
            Step::Next => {}
            Step::Continue(next) => continuation = Some(next),
            Step::Stop(reason) => return Some(reason),
        }
    }
}

/// What a system message came to.
enum Dispatched<W: Worker> {
    /// A callback ran and returned this.
    Step(Step<W>),
    /// Nothing to run (a flushed DOWN, a wake).
    Nothing,
    /// Stop with this reason, without a callback (the parent's EXIT, a stop signal).
    Stop(ExitReason),
}

/// Runs the callback for a system message (a DOWN, an EXIT, a stop, a wake). Rare, so
/// never inlined into the loop, whose frame lies under every wait of the worker.
#[inline(never)]
fn signal_callback<W: Worker>(
    worker: &mut W,
    ctx: &mut Context<W>,
    signal: Signal,
    waited: bool,
    introspect: bool,
) -> Dispatched<W> {
    let step = match signal {
        Signal::Down(down) => {
            if ctx.flushed.remove(&down.reference.id) {
                return Dispatched::Nothing;
            }
            ctx.cell.state.lock().monitoring.remove(&down.reference.id);
            if introspect {
                ctx.cell.activity.begin(Callback::HandleInfo, waited);
            }
            guarded(|| worker.handle_info(Info::Down(down), ctx))
        }
        // A gen_server that traps exits stops when its parent tells it to.
        Signal::Exit { from, reason } if from == ctx.cell.parent => {
            return Dispatched::Stop(reason);
        }
        Signal::Exit { from, reason } => {
            if introspect {
                ctx.cell.activity.begin(Callback::HandleInfo, waited);
            }
            guarded(|| worker.handle_info(Info::Exit(Exit { from, reason }), ctx))
        }
        Signal::Stop(reason) => return Dispatched::Stop(reason),
        Signal::Wake(_) => return Dispatched::Nothing,
    };
    Dispatched::Step(step)
}

/// Moves due timers into the mailbox, then waits for the next envelope until the
/// earliest timer's deadline. `None` when the deadline passed first; with the
/// envelope, whether the thread had to wait for it (the observer's start times).
#[inline]
fn next_envelope<W: Worker>(
    ctx: &mut Context<W>,
    inbox: &Receiver<Envelope<W>>,
) -> Option<(Envelope<W>, bool)> {
    // Envelopes held back by `Context::take_queued_messages` came before the channel's.
    if let Some(envelope) = ctx.saved.pop_front() {
        return Some((envelope, false));
    }
    if ctx.timers.is_empty() {
        return match inbox.try_recv() {
            Ok(envelope) => Some((envelope, false)),
            Err(TryRecvError::Disconnected) => None,
            // Idle: spin briefly (back-to-back calls find the worker awake), then park.
            Err(TryRecvError::Empty) => {
                match crate::runtime::spin_recv(inbox, crate::runtime::MESSAGE_SPIN) {
                    Ok(envelope) => Some((envelope, true)),
                    Err(TryRecvError::Disconnected) => None,
                    Err(TryRecvError::Empty) => inbox.recv().ok().map(|envelope| (envelope, true)),
                }
            }
        };
    }
    let now = Instant::now();
    while let Some((timer, message)) = ctx.timers.pop_due(now) {
        let _ = ctx.mailbox.send(Envelope::Timer(timer, message));
    }
    if let Ok(envelope) = inbox.try_recv() {
        return Some((envelope, false));
    }
    let envelope = match ctx.timers.next_deadline() {
        Some(deadline) => match inbox.recv_deadline(deadline) {
            Ok(envelope) => Some(envelope),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        },
        None => inbox.recv().ok(),
    };
    envelope.map(|envelope| (envelope, true))
}

/// Runs a callback; a panic becomes a stop with reason `Panic`.
fn guarded<W: Worker>(callback: impl FnOnce() -> Step<W>) -> Step<W> {
    match catch_unwind(AssertUnwindSafe(callback)) {
        Ok(step) => step,
        Err(payload) => Step::Stop(panic_reason(payload)),
    }
}

fn panic_reason(payload: Box<dyn Any + Send>) -> ExitReason {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    ExitReason::Panic(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose calls and casts are one word (its timers' messages none, since a
    /// timer's envelope also carries the timer's reference).
    struct Words;

    impl Worker for Words {
        type Call = u64;
        type Reply = u64;
        type Cast = u64;
        type Info = ();
        type Continue = ();
    }

    #[test]
    fn a_call_envelope_is_no_larger_than_a_cast_envelope() {
        // Every slot of a mailbox is as large as its largest envelope: a call (its
        // request rides in the caller's slot) must not make casts pay for it.
        assert_eq!(
            std::mem::size_of::<Envelope<Words>>(),
            2 * std::mem::size_of::<u64>(),
            "a discriminant and one word"
        );
    }
}
