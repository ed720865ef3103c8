//! [`WorkerRef`], the typed handle to a worker, and [`ReplyTo`], a call's reply token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendError, Sender, TrySendError};

use super::Worker;
use super::reply_slot::{CallOutcome, CallRequest, CallbackSlot, ReplySlot, Settler};
use super::run::{Envelope, sending_is_allowed};
use crate::clock::{Clock, ClockTimeout};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::Pid;
use crate::process::{CallWatch, ProcessCell, Signal, Status, Watcher};
use crate::runtime::{RuntimeHandle, RuntimeInner};

/// The token a worker answers a call with, now or later, from any thread.
///
/// Dropping it unanswered ends the call with [`Error::NoReply`].
pub struct ReplyTo<R: Send + 'static> {
    /// Where the outcome goes; `None` once used (or disarmed).
    slot: Option<Settler<R>>,
    /// The call's tag: its monitor's reference id.
    tag: u64,
    /// The called worker: if it panics holding the token, its DOWN ends the call.
    callee: Arc<ProcessCell>,
}

impl<R: Send + 'static> ReplyTo<R> {
    pub(crate) fn new(slot: Settler<R>, tag: u64, callee: Arc<ProcessCell>) -> ReplyTo<R> {
        ReplyTo {
            slot: Some(slot),
            tag,
            callee,
        }
    }

    /// Sends the reply. `false` if the caller is no longer waiting (it timed out, or the
    /// call already ended with the callee's exit): the reply is then dropped, never left
    /// in anyone's mailbox.
    pub fn reply(mut self, value: R) -> bool {
        let slot = self.slot.take().expect("a reply token is used once");
        settle_call(&slot, self.tag, &self.callee, CallOutcome::Reply(value))
    }
}

/// Settles a call from the callee's side (a reply or a dropped token): `true` if this
/// outcome ended the call.
///
/// A dead callee answers nothing: the call ends with its exit reason, as its DOWN would
/// have reached the caller first. That matters because a waiting caller enters its
/// monitor only when the reply is slow (see [`WorkerRef::call_timeout`]): a token
/// dropped with a dead worker's mailbox, or replied by code still running after a kill,
/// must not decide the call. A call nobody waits on ([`Settler::Callback`]) had its
/// monitor entered at once; whoever settles it removes that.
fn settle_call<R: Send + 'static>(
    slot: &Settler<R>,
    tag: u64,
    callee: &ProcessCell,
    outcome: CallOutcome<R>,
) -> bool {
    let (outcome, as_given) = match callee.is_alive() {
        true => (outcome, true),
        false => {
            let reason = callee.exit_reason().unwrap_or(ExitReason::NoProc);
            (CallOutcome::Down(reason), false)
        }
    };
    if !slot.settle(tag, outcome) {
        return false;
    }
    if let Settler::Callback(_) = slot {
        callee.state.lock().monitored_by.remove(&tag);
    }
    as_given
}

/// A call's envelope the mailbox gave back (its worker is gone): a token in it must
/// not settle the call as `Dropped`; a `CallRequest`, dropped here, takes its request
/// back out of the caller's slot.
fn forget_returned_call<W: Worker>(envelope: Envelope<W>) {
    if let Envelope::BoxedCall(call) = envelope {
        let (_, mut token) = *call;
        token.slot = None;
    }
}

/// What a call returns for its outcome.
fn call_result<R>(outcome: CallOutcome<R>) -> Result<R, Error> {
    match outcome {
        CallOutcome::Reply(reply) => Ok(reply),
        CallOutcome::Down(ExitReason::NoProc) => Err(Error::NoProc),
        CallOutcome::Down(reason) => Err(Error::Exited(reason)),
        CallOutcome::Dropped => Err(Error::NoReply),
    }
}

impl<R: Send + 'static> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        // A worker unwinding from a panic is about to die: its DOWN tells the caller
        // the real reason, which `Dropped` would hide.
        if std::thread::panicking() && super::run::is_current(&self.callee) {
            return;
        }
        if let Some(slot) = self.slot.take() {
            let tag = self.tag;
            // Dropped by the callee's own callback: a `Stop` from that callback makes the
            // call end with the exit reason instead (gen_server:call exits with it).
            if super::run::is_current(&self.callee) {
                let callee = self.callee.clone();
                super::run::defer_dropped_reply(Box::new(move || {
                    settle_call(&slot, tag, &callee, CallOutcome::Dropped);
                }));
            } else {
                settle_call(&slot, tag, &self.callee, CallOutcome::Dropped);
            }
        }
    }
}

impl<R: Send + 'static> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyTo")
    }
}

/// A typed handle to a worker: call, cast and send to it from any thread.
///
/// The handle names one incarnation: once the worker has exited, calls fail with
/// [`Error::NoProc`] and casts are dropped, as messages to a dead Erlang process are.
pub struct WorkerRef<W: Worker> {
    cell: Arc<ProcessCell>,
    mailbox: Sender<Envelope<W>>,
    runtime: Arc<RuntimeInner>,
}

impl<W: Worker> Clone for WorkerRef<W> {
    fn clone(&self) -> Self {
        WorkerRef {
            cell: self.cell.clone(),
            mailbox: self.mailbox.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<W: Worker> fmt::Debug for WorkerRef<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WorkerRef<{}>({})",
            std::any::type_name::<W>(),
            self.cell.pid
        )
    }
}

impl<W: Worker> WorkerRef<W> {
    pub(crate) fn new(
        cell: Arc<ProcessCell>,
        mailbox: Sender<Envelope<W>>,
        runtime: Arc<RuntimeInner>,
    ) -> Self {
        WorkerRef {
            cell,
            mailbox,
            runtime,
        }
    }

    pub(crate) fn from_cell(
        runtime: &Arc<RuntimeInner>,
        cell: Arc<ProcessCell>,
    ) -> Result<Self, Error> {
        let mailbox = cell
            .mailbox
            .as_any()
            .downcast_ref::<Sender<Envelope<W>>>()
            .ok_or(Error::WrongWorkerType(cell.pid))?
            .clone();
        Ok(WorkerRef::new(cell, mailbox, runtime.clone()))
    }

    /// The worker's pid.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// The runtime the worker runs in.
    pub fn runtime(&self) -> RuntimeHandle {
        RuntimeHandle {
            inner: self.runtime.clone(),
        }
    }

    /// `true` while the worker runs.
    pub fn is_alive(&self) -> bool {
        self.cell.is_alive()
    }

    /// The exit reason, once the worker has terminated.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.cell.exit_reason()
    }

    /// Calls the worker with the runtime's default timeout (5 s unless configured).
    pub fn call(&self, request: W::Call) -> Result<W::Reply, Error> {
        self.call_timeout(request, self.runtime.call_timeout)
    }

    /// Calls the worker and waits up to `timeout` (`Duration::MAX` waits forever).
    ///
    /// As `gen_server:call` does, the caller monitors the worker, sends the request and
    /// waits for the reply, the worker's DOWN, or the timeout, whichever comes first. A
    /// dead worker fails the call at once with [`Error::NoProc`]; a worker that dies
    /// before replying gives [`Error::Exited`]. After a timeout a late reply is dropped.
    ///
    /// The monitor is entered in the worker's table only when the reply is slow (not
    /// back within a 10 µs spin), so a quick call takes no lock of the worker's state;
    /// the guarantees are the same (SEMANTICS.md 4.1).
    pub fn call_timeout(&self, request: W::Call, timeout: Duration) -> Result<W::Reply, Error> {
        if super::run::is_current(&self.cell) {
            return Err(Error::CallingSelf);
        }
        // A killed worker whose code still runs sends nothing more.
        if !sending_is_allowed() {
            return Err(Error::NoProc);
        }
        // The wait-for edge caller -> callee, kept while this call waits (cleared on
        // every return); a cycle it closes is reported, or failed at once if asked.
        let caller = match self.runtime.introspection {
            true => super::run::current_cell(),
            false => None,
        };
        let _waiting = match caller {
            Some(caller) => Some(crate::observer::start_waiting(
                &self.runtime,
                caller,
                &self.cell,
            )?),
            None => None,
        };
        // The call behaves as if it monitored the worker from here: a worker dead now
        // fails it at once, and a death from now on ends it with the exit reason. The
        // monitor itself is entered only if the reply is not back within the spin
        // below (`watch_call`); a reply within it (most calls) costs no lock of the
        // worker's state and no table entry, on either thread.
        if !self.cell.is_alive() {
            return Err(Error::NoProc);
        }
        // The thread's reusable reply slot, armed with this call's tag (its monitor's
        // id) before anyone can settle the call, and given its request.
        let slot = ReplySlot::<W::Call, W::Reply>::for_this_thread();
        let tag = self.runtime.new_ref_id();
        let offered = slot.arm_with(tag, request);
        // A manual clock's timeout ends the wait through the slot.
        let manual_timeout = match &self.runtime.clock {
            Clock::Manual(clock) if timeout != Duration::MAX => {
                let slot = slot.clone();
                Some(ClockTimeout::start_then(clock, timeout, move || {
                    slot.time_out(tag)
                }))
            }
            _ => None,
        };
        let envelope = match offered {
            Ok(()) => Envelope::Call(CallRequest::new(slot.clone())),
            // The worker has not reached this thread's earlier, timed-out call yet.
            Err(request) => Envelope::BoxedCall(Box::new((
                request,
                ReplyTo::new(Settler::Slot(slot.clone()), tag, self.cell.clone()),
            ))),
        };
        let sent = self.mailbox.send(envelope);
        if let Err(SendError(envelope)) = sent {
            // The mailbox is gone with the worker: the call is `NoProc`, whatever
            // settles it.
            forget_returned_call(envelope);
            self.give_up(&slot, tag);
            return Err(Error::NoProc);
        }
        let deadline = match manual_timeout {
            Some(_) => None,
            None => Instant::now().checked_add(timeout),
        };
        // A reply usually comes within a few µs: catch it before parking, which costs a
        // wake-up (6-14 µs here, tens of µs on an idle VM).
        let mut monitored = false;
        let outcome = match slot.spin(crate::runtime::MESSAGE_SPIN) {
            Some(outcome) => Some(outcome),
            None => {
                // Slow: the monitor goes in before this thread parks. If the worker
                // has died, the claim fails only if the call was settled meanwhile.
                monitored = true;
                match self.watch_call(slot.clone(), tag) {
                    Some(reason) if slot.claim(tag) => Some(CallOutcome::Down(reason)),
                    _ => slot.wait(deadline),
                }
            }
        };
        let outcome = outcome.or_else(|| self.give_up(&slot, tag));
        // A DOWN took the monitor with it; a reply, a dropped token or a timeout did not.
        if monitored && !matches!(outcome, Some(CallOutcome::Down(_))) {
            self.cell.state.lock().monitored_by.remove(&tag);
        }
        match outcome {
            Some(outcome) => call_result(outcome),
            None => Err(Error::Timeout),
        }
    }

    /// Sends a call whose outcome nobody waits for: `on_outcome` gets it, run on the
    /// thread that settles the call — the worker's own when it replies or drops the
    /// token, the exiting thread when it dies first. As `gen_server:send_request/2`
    /// with the response handled where it is produced; no timeout (a call nobody
    /// replies to simply never runs `on_outcome`, until the worker exits).
    ///
    /// Fails at once with [`Error::NoProc`] (and `on_outcome` never runs) when the
    /// worker is not alive.
    #[cfg_attr(not(feature = "dist"), allow(dead_code))] // distribution's served calls
    pub(crate) fn call_then(
        &self,
        request: W::Call,
        on_outcome: impl FnOnce(Result<W::Reply, Error>) + Send + 'static,
    ) -> Result<(), Error> {
        if !sending_is_allowed() {
            return Err(Error::NoProc);
        }
        let tag = self.runtime.new_ref_id();
        let slot = Arc::new(CallbackSlot::new(
            tag,
            Box::new(move |outcome| on_outcome(call_result(outcome))),
        ));
        if self.watch_call(slot.clone(), tag).is_some() {
            return Err(Error::NoProc);
        }
        let sent = self.mailbox.send(Envelope::BoxedCall(Box::new((
            request,
            ReplyTo::new(Settler::Callback(slot.clone()), tag, self.cell.clone()),
        ))));
        if let Err(SendError(envelope)) = sent {
            forget_returned_call(envelope);
            if slot.disarm() {
                self.cell.state.lock().monitored_by.remove(&tag);
            }
            return Err(Error::NoProc);
        }
        Ok(())
    }

    /// Enters the monitor of a call (tagged `tag`, its outcome going to `watch`) into
    /// the worker's table: `None` if it is in (the worker's death will end the call),
    /// or the exit reason if the worker has died, whose DOWN the call would have had.
    fn watch_call(&self, watch: Arc<dyn CallWatch>, tag: u64) -> Option<ExitReason> {
        let mut state = self.cell.state.lock();
        if let Status::Dead(reason) = &state.status {
            return Some(reason.clone());
        }
        state.monitored_by.insert(tag, Watcher::Call(watch));
        None
    }

    /// The caller stops waiting for the call tagged `tag`: `None` if it took the call,
    /// or the outcome that settled it meanwhile. Its monitor is the caller's to remove.
    fn give_up(
        &self,
        slot: &ReplySlot<W::Call, W::Reply>,
        tag: u64,
    ) -> Option<CallOutcome<W::Reply>> {
        if slot.claim(tag) {
            return None;
        }
        // Settled by another thread just now: settling puts the outcome in the slot
        // as it takes the tag.
        Some(slot.take().unwrap_or(CallOutcome::Down(ExitReason::NoProc)))
    }

    /// Sends a cast. Like `gen_server:cast` it never fails: a cast to a dead worker is
    /// dropped. Use [`try_cast`](Self::try_cast) to learn that.
    #[inline]
    pub fn cast(&self, message: W::Cast) {
        let _ = self.deliver(Envelope::Cast(message));
    }

    /// Sends a cast; `Err(NoProc)` if the worker is not running.
    pub fn try_cast(&self, message: W::Cast) -> Result<(), Error> {
        self.deliver(Envelope::Cast(message))
    }

    /// Sends a plain message, taken by `handle_info` as [`Info::Message`](super::Info::Message).
    pub fn send(&self, message: W::Info) {
        let _ = self.deliver(Envelope::Info(message));
    }

    /// Sends a plain message; `Err(NoProc)` if the worker is not running.
    pub fn try_send(&self, message: W::Info) -> Result<(), Error> {
        self.deliver(Envelope::Info(message))
    }

    #[inline]
    fn deliver(&self, envelope: Envelope<W>) -> Result<(), Error> {
        // A killed worker whose thread still runs sends nothing more: its messages
        // would otherwise arrive after its DOWN.
        if !sending_is_allowed() || !self.cell.is_alive() {
            return Err(Error::NoProc);
        }
        match self.mailbox.try_send(envelope) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Error::NoProc),
        }
    }

    /// Stops the worker in an orderly way and waits for it to exit (`gen_server:stop`):
    /// its `terminate(reason)` runs. Fails with `NoProc` if it was not running,
    /// `Timeout` (the worker keeps stopping), or `Exited(actual)` if it exited with
    /// another reason than `reason` (its `terminate` panicked, or it was killed
    /// meanwhile), as `gen_server:stop/3` exits with the real reason.
    pub fn stop(&self, reason: ExitReason, timeout: Duration) -> Result<(), Error> {
        // A worker cannot wait for its own exit; it returns `Step::Stop` instead.
        if super::run::is_current(&self.cell) {
            return Err(Error::CallingSelf);
        }
        if !sending_is_allowed() {
            return Err(Error::NoProc);
        }
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let watcher = Watcher::Channel { sender, name: None };
        let reference = crate::monitor::monitor(&self.runtime, self.cell.pid, watcher, None);
        if self
            .mailbox
            .try_send(Envelope::Signal(Box::new(Signal::Stop(reason.clone()))))
            .is_err()
        {
            crate::monitor::demonitor(&self.runtime, &reference, None);
            return Err(Error::NoProc);
        }
        match receiver.recv_timeout(timeout) {
            Ok(down) if down.reason == reason => Ok(()),
            Ok(down) if down.reason == ExitReason::NoProc => Err(Error::NoProc),
            Ok(down) => Err(Error::Exited(down.reason)),
            Err(_) => {
                crate::monitor::demonitor(&self.runtime, &reference, None);
                Err(Error::Timeout)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crossbeam_channel::Receiver;

    use std::sync::Arc;

    use super::{CallOutcome, ReplySlot, Settler};
    use crate::worker::reply_slot::CallRequest;
    use crate::{Context, Error, ExitReason, ReplyTo, Runtime, Step, Worker};

    /// `Some(n)` replies `n` on the worker's thread, `None` drops the token, a negative
    /// number panics without replying.
    struct Replier;

    impl Worker for Replier {
        type Call = Option<i32>;
        type Reply = (i32, std::thread::ThreadId);
        type Cast = ();
        type Info = ();
        type Continue = ();

        fn handle_call(
            &mut self,
            request: Option<i32>,
            reply: ReplyTo<Self::Reply>,
            _: &mut Context<Self>,
        ) -> Step<Self> {
            match request {
                Some(n) if n < 0 => panic!("asked to fail"),
                Some(n) => {
                    reply.reply((n, std::thread::current().id()));
                }
                None => drop(reply),
            }
            Step::Next
        }
    }

    /// A reply and the thread it was made on.
    type Answer = (i32, std::thread::ThreadId);
    type CallResult = Result<Answer, Error>;
    /// A calling thread's slot for calls to a [`Replier`].
    type ReplierSlot = ReplySlot<Option<i32>, Answer>;
    /// The call's result and the thread the callback ran on.
    type Outcome = (CallResult, std::thread::ThreadId);

    fn outcome_channel() -> (impl FnOnce(CallResult) + Send + 'static, Receiver<Outcome>) {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let callback = move |result| {
            let _ = sender.send((result, std::thread::current().id()));
        };
        (callback, receiver)
    }

    #[test]
    fn a_reply_runs_the_callback_on_the_replying_worker_thread() {
        let runtime = Runtime::new();
        let worker = runtime.spawn_worker(Replier).unwrap();
        let (callback, outcome) = outcome_channel();
        worker.call_then(Some(7), callback).unwrap();
        let (result, ran_on) = outcome.recv_timeout(Duration::from_secs(10)).unwrap();
        let (value, replied_on) = result.unwrap();
        assert_eq!(value, 7);
        assert_eq!(
            ran_on, replied_on,
            "the callback runs where the reply is made"
        );
        assert_ne!(ran_on, std::thread::current().id());
        // Settled calls leave no monitor behind on the callee.
        assert!(worker.cell.state.lock().monitored_by.is_empty());
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_dropped_token_gives_no_reply_and_the_worker_goes_on() {
        let runtime = Runtime::new();
        let worker = runtime.spawn_worker(Replier).unwrap();
        let (callback, outcome) = outcome_channel();
        worker.call_then(None, callback).unwrap();
        let (result, _) = outcome.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(result, Err(Error::NoReply)), "{result:?}");
        assert_eq!(worker.call(Some(1)).unwrap().0, 1);
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_callee_that_dies_before_replying_gives_its_exit_reason() {
        let runtime = Runtime::new();
        let worker = runtime.spawn_worker(Replier).unwrap();
        let (callback, outcome) = outcome_channel();
        worker.call_then(Some(-1), callback).unwrap();
        let (result, _) = outcome.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            matches!(result, Err(Error::Exited(ExitReason::Panic(_)))),
            "{result:?}"
        );
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_call_to_a_dead_worker_fails_at_once_and_never_runs_the_callback() {
        let runtime = Runtime::new();
        let worker = runtime.spawn_worker(Replier).unwrap();
        worker
            .stop(ExitReason::Normal, Duration::from_secs(5))
            .unwrap();
        let (callback, outcome) = outcome_channel();
        assert!(matches!(
            worker.call_then(Some(1), callback),
            Err(Error::NoProc)
        ));
        // The callback was dropped unrun: its sender is gone.
        assert!(outcome.recv_timeout(Duration::from_secs(1)).is_err());
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    /// A token of a waiting call whose monitor is not in yet (the caller still spins),
    /// made by hand: a dead worker's token must still end the call with its reason.
    fn unwatched_call(
        worker: &super::WorkerRef<Replier>,
    ) -> (ReplyTo<Answer>, Arc<ReplierSlot>, u64) {
        let slot = ReplySlot::for_this_thread();
        let tag = worker.runtime.new_ref_id();
        assert!(slot.arm_with(tag, None).is_ok());
        // The request is not needed: the token is made here.
        drop(CallRequest::new(slot.clone()));
        let token = ReplyTo::new(Settler::Slot(slot.clone()), tag, worker.cell.clone());
        (token, slot, tag)
    }

    fn killed_replier(runtime: &Runtime) -> super::WorkerRef<Replier> {
        let worker = runtime.spawn_worker(Replier).unwrap();
        runtime.kill(&worker.pid());
        assert!(!worker.cell.is_alive());
        worker
    }

    #[test]
    fn a_token_dropped_after_its_worker_died_ends_the_call_with_the_exit_reason() {
        let runtime = Runtime::new();
        let worker = killed_replier(&runtime);
        let (token, slot, tag) = unwatched_call(&worker);
        drop(token);
        let outcome = slot.take().expect("the call is settled");
        assert!(matches!(outcome, CallOutcome::Down(ExitReason::Killed)));
        assert!(!slot.claim(tag));
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_reply_after_its_worker_died_is_not_delivered_and_ends_the_call_with_the_exit_reason() {
        let runtime = Runtime::new();
        let worker = killed_replier(&runtime);
        let (token, slot, tag) = unwatched_call(&worker);
        assert!(!token.reply((1, std::thread::current().id())));
        let outcome = slot.take().expect("the call is settled");
        assert!(matches!(outcome, CallOutcome::Down(ExitReason::Killed)));
        assert!(!slot.claim(tag));
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    /// Hands every call's token to the test.
    struct Keeper(crossbeam_channel::Sender<ReplyTo<i32>>);

    impl Worker for Keeper {
        type Call = ();
        type Reply = i32;
        type Cast = ();
        type Info = ();
        type Continue = ();

        fn handle_call(&mut self, _: (), reply: ReplyTo<i32>, _: &mut Context<Self>) -> Step<Self> {
            let _ = self.0.send(reply);
            Step::Next
        }
    }

    #[test]
    fn a_call_answered_within_the_spin_enters_no_monitor() {
        let runtime = Runtime::new();
        let worker = runtime.spawn_worker(Replier).unwrap();
        for n in 0..100 {
            assert_eq!(worker.call(Some(n)).unwrap().0, n);
            assert!(worker.cell.state.lock().monitored_by.is_empty());
        }
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_slow_call_enters_its_monitor_before_parking_and_removes_it_after_the_reply() {
        let runtime = Runtime::new();
        let (keeper, tokens) = crossbeam_channel::unbounded();
        let worker = runtime.spawn_worker(Keeper(keeper)).unwrap();
        let caller = {
            let worker = worker.clone();
            std::thread::spawn(move || worker.call_timeout((), Duration::from_secs(30)))
        };
        let token = tokens.recv_timeout(Duration::from_secs(10)).unwrap();
        otp_threads_testkit::wait_for("the call's monitor", Default::default(), || {
            (worker.cell.state.lock().monitored_by.len() == 1).then_some(())
        });
        assert!(token.reply(5));
        assert_eq!(caller.join().unwrap(), Ok(5));
        assert!(worker.cell.state.lock().monitored_by.is_empty());
        runtime.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_call_request_dropped_untaken_frees_its_slot_and_drops_the_request() {
        let slot = ReplySlot::<crossbeam_channel::Sender<()>, ()>::for_this_thread();
        let (request, dropped) = crossbeam_channel::bounded::<()>(0);
        assert!(slot.arm_with(7, request).is_ok());
        let (second, _) = crossbeam_channel::bounded::<()>(0);
        let second = slot
            .arm_with(8, second)
            .expect_err("the slot holds a request");
        assert!(!slot.claim(7), "arming for 8 disarmed 7");
        drop(CallRequest::new(slot.clone()));
        assert!(dropped.recv().is_err(), "the request was dropped");
        assert!(slot.arm_with(8, second).is_ok());
        let (request, _, tag) = CallRequest::new(slot.clone()).take().unwrap();
        assert_eq!(tag, 8);
        drop(request);
        assert!(slot.claim(8));
    }
}
