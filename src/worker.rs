//! Workers: the `gen_server` behaviour on an OS thread.
//!
//! A worker is a value implementing [`Worker`], started with
//! [`RuntimeHandle::spawn_worker`](crate::RuntimeHandle::spawn_worker) (or
//! [`Context::spawn_link`] from another worker). Its thread runs `init`, then takes
//! messages from its mailbox one at a time:
//!
//! | message | callback | Erlang |
//! |---|---|---|
//! | [`WorkerRef::call`] | [`Worker::handle_call`] | `gen_server:call` |
//! | [`WorkerRef::cast`] | [`Worker::handle_cast`] | `gen_server:cast` |
//! | [`WorkerRef::send`], timers, DOWN, trapped EXIT | [`Worker::handle_info`] | `handle_info` |
//! | [`Step::Continue`] | [`Worker::handle_continue`] | `{continue, C}` |
//!
//! `init` (or [`Worker::init_outcome`], for every outcome of `init/1`: ready,
//! continue, ignore, stop) runs before any message. A callback returns a [`Step`]: wait for the next message, continue with
//! `handle_continue`, or stop with a reason. On an orderly stop (a `Stop` step, a panic
//! in a callback, [`WorkerRef::stop`], or an exit signal from its parent while it traps
//! exits) the worker's [`terminate`](Worker::terminate) runs, then the process exits
//! and its links and monitors fire. A worker killed by an exit signal it does not trap
//! does not run `terminate`, as in OTP.

mod context;
mod handle;
mod reply_slot;
mod run;

pub use context::Context;
pub use handle::{ReplyTo, WorkerRef};
pub(crate) use run::{
    SpawnOptions, enter_thread_process, leave_thread_process, sending_is_allowed, spawn,
};

use crate::exit::{Down, Exit, ExitReason};
use crate::pid::TimerRef;

/// What a worker does after a callback.
pub enum Step<W: Worker> {
    /// Wait for the next message (`{noreply, State}`).
    Next,
    /// Run [`Worker::handle_continue`] before any other message (`{continue, C}`).
    Continue(W::Continue),
    /// Run `terminate(reason)` and exit (`{stop, Reason, State}`).
    Stop(ExitReason),
}

/// How a worker's start ends: every outcome of a `gen_server`'s `init/1`.
///
/// Returned by [`Worker::init_outcome`]; a worker that only needs "ok or error"
/// implements [`Worker::init`] instead.
pub enum InitOutcome<W: Worker> {
    /// Start serving messages (`{ok, State}`).
    Ready,
    /// Run [`Worker::handle_continue`] before any message (`{ok, State, {continue, C}}`).
    Continue(W::Continue),
    /// Start nothing (`ignore`): the spawn returns [`Error::Ignored`](crate::Error::Ignored),
    /// the process exits with `Normal` before anyone could reach it, and its thread is
    /// free again. A supervisor keeps an ignored static child without a pid.
    Ignore,
    /// Fail the start with this reason (`{stop, Reason}` or `{error, Reason}`): the spawn
    /// returns [`Error::InitFailed`](crate::Error::InitFailed).
    Stop(ExitReason),
}

/// A message for [`Worker::handle_info`].
#[derive(Debug)]
pub enum Info<M> {
    /// A message sent with [`WorkerRef::send`].
    Message(M),
    /// A timer set with [`Context::send_after`] fired.
    Timer(TimerRef, M),
    /// A monitor of this worker's fired.
    Down(Down),
    /// An exit signal this worker traps (see [`Context::trap_exit`]).
    Exit(Exit),
}

/// The behaviour of a worker, after Erlang's `gen_server`.
///
/// Each message kind has its own type, so no message is ever of the wrong type. Use
/// `()` for the kinds a worker does not take.
///
/// ```
/// use std::time::Duration;
/// use otp_threads::{Context, ReplyTo, Runtime, Step, Worker};
///
/// struct Counter(u64);
///
/// impl Worker for Counter {
///     type Call = ();
///     type Reply = u64;
///     type Cast = u64;
///     type Info = ();
///     type Continue = ();
///
///     fn handle_call(&mut self, _: (), reply: ReplyTo<u64>, _: &mut Context<Self>) -> Step<Self> {
///         reply.reply(self.0);
///         Step::Next
///     }
///
///     fn handle_cast(&mut self, add: u64, _: &mut Context<Self>) -> Step<Self> {
///         self.0 += add;
///         Step::Next
///     }
/// }
///
/// let runtime = Runtime::new();
/// let counter = runtime.spawn_worker(Counter(0)).unwrap();
/// counter.cast(2);
/// counter.cast(3);
/// assert_eq!(counter.call(()).unwrap(), 5);
/// runtime.shutdown(Duration::from_secs(1)).unwrap();
/// ```
pub trait Worker: Send + Sized + 'static {
    /// Requests taken by [`handle_call`](Self::handle_call).
    type Call: Send + 'static;
    /// Replies to calls.
    type Reply: Send + 'static;
    /// Messages taken by [`handle_cast`](Self::handle_cast).
    type Cast: Send + 'static;
    /// Plain messages and timer messages, taken by [`handle_info`](Self::handle_info).
    type Info: Send + 'static;
    /// Continuations taken by [`handle_continue`](Self::handle_continue).
    type Continue: Send + 'static;

    /// Runs on the worker's thread before any message. An error (or a panic) fails the
    /// start: [`spawn_worker`](crate::RuntimeHandle::spawn_worker) returns it.
    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        let _ = ctx;
        Ok(())
    }

    /// Runs on the worker's thread before any message, and may end in any of `init/1`'s
    /// outcomes: ready, continue with [`handle_continue`](Self::handle_continue) first,
    /// ignore the start, or fail it. By default it runs [`init`](Self::init): `Ok` is
    /// [`InitOutcome::Ready`], an error [`InitOutcome::Stop`]. A panic fails the start.
    fn init_outcome(&mut self, ctx: &mut Context<Self>) -> InitOutcome<Self> {
        match self.init(ctx) {
            Ok(()) => InitOutcome::Ready,
            Err(reason) => InitOutcome::Stop(reason),
        }
    }

    /// Handles a call. Reply through `reply` now, or keep it and reply later from this
    /// or any other thread. Dropping it unanswered fails the call with
    /// [`Error::NoReply`](crate::Error::NoReply) if the worker goes on; if the callback
    /// stops the worker (or panics) without replying, the call fails with its exit
    /// reason, [`Error::Exited`](crate::Error::Exited), as `gen_server:call` exits.
    fn handle_call(
        &mut self,
        request: Self::Call,
        reply: ReplyTo<Self::Reply>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let _ = (request, ctx);
        log::warn!(
            "worker {} got a call but does not implement handle_call",
            std::any::type_name::<Self>()
        );
        drop(reply);
        Step::Next
    }

    /// Handles a cast.
    fn handle_cast(&mut self, message: Self::Cast, ctx: &mut Context<Self>) -> Step<Self> {
        let _ = (message, ctx);
        Step::Next
    }

    /// Handles a plain message, a timer message, a DOWN or a trapped EXIT.
    fn handle_info(&mut self, info: Info<Self::Info>, ctx: &mut Context<Self>) -> Step<Self> {
        let _ = ctx;
        if let Info::Exit(exit) = info {
            log::debug!(
                "worker {} ignored trapped exit {exit:?}",
                std::any::type_name::<Self>()
            );
        }
        Step::Next
    }

    /// Runs after a callback returned [`Step::Continue`], before any other message.
    fn handle_continue(
        &mut self,
        continuation: Self::Continue,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let _ = (continuation, ctx);
        Step::Next
    }

    /// Runs on an orderly stop, before the process exits.
    fn terminate(&mut self, reason: &ExitReason, ctx: &mut Context<Self>) {
        let _ = (reason, ctx);
    }
}
