//! Erlang/OTP fault tolerance for ordinary blocking Rust programs.
//!
//! otp-threads gives every worker its own OS thread with a crossbeam-channel mailbox,
//! and gives workers and plain threads the process model Erlang programmers rely on:
//! links, monitors, trapped exits, registered names, timers, `call` with timeouts, and
//! supervisors. There is no async runtime: handlers are plain functions that may block.
//! The guarantees, rule by rule, are in `SEMANTICS.md` beside this crate.
//!
//! # Hello, worker
//!
//! A worker implements [`Worker`], the `gen_server` behaviour. Start it with
//! [`RuntimeHandle::spawn_worker`]: it returns once the worker's `init` has run.
//!
//! ```
//! use std::time::Duration;
//! use otp_threads::{Context, ReplyTo, Runtime, Step, Worker};
//!
//! struct Greeter;
//!
//! impl Worker for Greeter {
//!     type Call = String;
//!     type Reply = String;
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!
//!     fn handle_call(&mut self, name: String, reply: ReplyTo<String>, _: &mut Context<Self>) -> Step<Self> {
//!         reply.reply(format!("Hello, {name}!"));
//!         Step::Next
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let greeter = runtime.spawn_worker(Greeter).unwrap();
//! assert_eq!(greeter.call("world".into()).unwrap(), "Hello, world!");
//! runtime.shutdown(Duration::from_secs(5)).unwrap();
//! ```
//!
//! # Calls fail fast
//!
//! A call monitors the callee while it waits, so a dead callee fails it at once with
//! [`Error::NoProc`] instead of a timeout, and a callee dying mid-call gives its exit
//! reason. A timed-out call's late reply is dropped, never delivered later.
//!
//! ```
//! # use std::time::Duration;
//! # use otp_threads::{Context, ReplyTo, Runtime, Step, Worker, Error, ExitReason};
//! # struct Greeter;
//! # impl Worker for Greeter {
//! #     type Call = String; type Reply = String; type Cast = (); type Info = (); type Continue = ();
//! #     fn handle_call(&mut self, n: String, r: ReplyTo<String>, _: &mut Context<Self>) -> Step<Self> { r.reply(n); Step::Next }
//! # }
//! let runtime = Runtime::new();
//! let greeter = runtime.spawn_worker(Greeter).unwrap();
//! greeter.stop(ExitReason::Normal, Duration::from_secs(5)).unwrap();
//! assert_eq!(greeter.call("anyone?".into()), Err(Error::NoProc));
//! ```
//!
//! # Monitors from plain threads
//!
//! Any thread can monitor any pid and receive the [`Down`] on a crossbeam
//! [`Receiver`](crossbeam_channel::Receiver), usable in `select!`:
//!
//! ```
//! # use std::time::Duration;
//! # use otp_threads::{Runtime, Worker, ExitReason};
//! # struct Idle;
//! # impl Worker for Idle { type Call = (); type Reply = (); type Cast = (); type Info = (); type Continue = (); }
//! let runtime = Runtime::new();
//! let worker = runtime.spawn_worker(Idle).unwrap();
//! let monitor = runtime.monitor(&worker.pid());
//! runtime.exit(&worker.pid(), ExitReason::error("bad data"));
//! let down = monitor.wait(Duration::from_secs(5)).unwrap();
//! assert_eq!(down.reason, ExitReason::error("bad data"));
//! ```
//!
//! # Plain threads as processes
//!
//! A program's own thread becomes a full process with [`RuntimeHandle::process`], the
//! way an Erlang shell is one: it gets a pid and a mailbox that is a crossbeam
//! [`Receiver`](crossbeam_channel::Receiver) of [`Received`] items (messages, trapped
//! EXITs, DOWNs, in order), and through the [`Process`] handle it links, traps exits,
//! monitors, sends exit signals, spawns workers as their parent, and receives
//! selectively. Dropping the handle ends the process with `Normal`. A thread cannot be
//! pre-empted: when an exit signal kills it, it is dead at once for everyone else and
//! its next receive says so ([`Error::Terminated`]).
//!
//! ```
//! use std::time::Duration;
//! use otp_threads::{Context, Exit, ExitReason, Process, Received, Runtime, Step, Worker};
//!
//! struct Fragile;
//!
//! impl Worker for Fragile {
//!     type Call = ();
//!     type Reply = ();
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!
//!     fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Step<Self> {
//!         Step::Stop(ExitReason::error("crashed"))
//!     }
//! }
//!
//! let runtime = Runtime::new();
//! let shell: Process<&'static str> = runtime.process().unwrap();
//! shell.trap_exit(true);
//! let worker = shell.spawn_link(Fragile).unwrap();
//! shell.process_ref().send("hello");
//! worker.cast(());
//! // Selective receive: the EXIT first, though the message came before it.
//! let exit = shell
//!     .receive_matching(|item| matches!(item, Received::Exit(_)), Duration::from_secs(5))
//!     .unwrap();
//! assert_eq!(
//!     exit,
//!     Received::Exit(Exit { from: worker.pid(), reason: ExitReason::error("crashed") })
//! );
//! assert_eq!(shell.recv().unwrap(), Received::Message("hello"));
//! drop(shell);
//! runtime.shutdown(Duration::from_secs(5)).unwrap();
//! ```
//!
//! # Links and trapped exits
//!
//! Linked workers share their fate: an abnormal exit kills the linked worker with the
//! same reason, unless it traps exits ([`Context::trap_exit`]); then the exit arrives in
//! [`Worker::handle_info`] as [`Info::Exit`] and it keeps running. The full table is in
//! the [`ExitReason`] docs and `SEMANTICS.md`.
//!
//! # Timers
//!
//! [`Context::send_after`] delivers a message to the worker itself after a delay, and
//! [`Context::cancel_timer`] returns the time that was left. Timers live in one deadline
//! heap per worker: no thread per timer.
//!
//! # The test clock
//!
//! A runtime built with a [`ManualClock`] runs timers, call timeouts and supervisors'
//! restart windows on it: time stands still until the test calls
//! [`advance`](ManualClock::advance), which delivers every timer that falls due, in
//! deadline order, before it returns. A 30-second timeout is tested in no time, with
//! no sleep and an exact result. The real clock stays the default.
//!
//! ```
//! use std::time::Duration;
//! use otp_threads::{Context, Info, ManualClock, ReplyTo, Runtime, Step, Worker};
//!
//! /// Counts the ticks it asked for, one per second.
//! struct Ticker(u32);
//!
//! impl Worker for Ticker {
//!     type Call = ();
//!     type Reply = u32;
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!
//!     fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), otp_threads::ExitReason> {
//!         ctx.send_after((), Duration::from_secs(1));
//!         Ok(())
//!     }
//!
//!     fn handle_info(&mut self, info: Info<()>, ctx: &mut Context<Self>) -> Step<Self> {
//!         if let Info::Timer(..) = info {
//!             self.0 += 1;
//!             ctx.send_after((), Duration::from_secs(1));
//!         }
//!         Step::Next
//!     }
//!
//!     fn handle_call(&mut self, _: (), reply: ReplyTo<u32>, _: &mut Context<Self>) -> Step<Self> {
//!         reply.reply(self.0);
//!         Step::Next
//!     }
//! }
//!
//! let clock = ManualClock::new();
//! let runtime = Runtime::builder().manual_clock(&clock).build().unwrap();
//! let ticker = runtime.spawn_worker(Ticker(0)).unwrap();
//! assert_eq!(ticker.call(()).unwrap(), 0);
//! for _ in 0..3 {
//!     // The tick is in the mailbox when advance returns; the call comes after it.
//!     clock.advance(Duration::from_secs(1));
//!     ticker.call(()).unwrap();
//! }
//! assert_eq!(ticker.call(()).unwrap(), 3);
//! runtime.shutdown(Duration::from_secs(5)).unwrap();
//! ```
//!
//! # Names
//!
//! [`RuntimeHandle::register`] and [`RuntimeHandle::whereis`] name workers; a name is
//! released when its worker dies, before its links and monitors fire.
//! [`RuntimeHandle::call_name`], [`cast_name`](RuntimeHandle::cast_name) and
//! [`send_name`](RuntimeHandle::send_name) reach whoever holds a [`RegisteredName`]
//! now, with `gen_server`'s results.
//! [`KeyedRegistry::lookup_or_start`] starts exactly one worker per key, however many
//! threads ask at once.
//!
//! # Threads
//!
//! A worker's thread, once its worker has exited, runs the next spawned worker, which
//! makes a spawn cost a thread hand-off rather than a thread creation. A reused thread
//! keeps only what the OS thread keeps (user thread-locals); turn reuse off with
//! [`RuntimeBuilder::reuse_threads`]. [`Runtime::shutdown`] stops every worker and joins
//! every thread. A thread cannot be pre-empted: a killed worker is dead at once for
//! everyone else, and its thread is joined when its code returns
//! ([`RuntimeHandle::zombies`] lists such threads).
//!
//! # Looking at a live node
//!
//! [`RuntimeHandle::process_info`] tells what a process is doing — waiting, running
//! which callback for how long, or blocked in a call to which pid — and what it holds
//! (mailbox length, links, monitors, name, timers, its thread), as
//! `erlang:process_info` does. [`RuntimeHandle::snapshot`] gives every process, the
//! supervision trees with restart counts and intensity, and the call cycles, as a
//! [`Snapshot`] or as JSON. A cycle of calls is an exact deadlock here (calls block
//! threads): it is logged when it closes, and
//! [`RuntimeBuilder::fail_deadlocked_calls`] fails the closing call with
//! [`Error::Deadlock`] instead of letting the calls wait for their timeouts.
//!
//! ```
//! use std::time::Duration;
//! use otp_threads::{Context, Error, ReplyTo, Runtime, Step, Worker, WorkerRef};
//!
//! /// Calls the next peer of the chain it is given.
//! struct Peer;
//! impl Worker for Peer {
//!     type Call = Vec<WorkerRef<Peer>>;
//!     type Reply = Result<(), Error>;
//!     type Cast = ();
//!     type Info = ();
//!     type Continue = ();
//!     fn handle_call(
//!         &mut self,
//!         mut chain: Vec<WorkerRef<Peer>>,
//!         reply: ReplyTo<Result<(), Error>>,
//!         _: &mut Context<Self>,
//!     ) -> Step<Self> {
//!         let result = match chain.is_empty() {
//!             true => Ok(()),
//!             false => chain.remove(0).call(chain).and_then(|inner| inner),
//!         };
//!         reply.reply(result);
//!         Step::Next
//!     }
//! }
//!
//! let runtime = Runtime::builder().fail_deadlocked_calls(true).build().unwrap();
//! let a = runtime.spawn_worker(Peer).unwrap();
//! let b = runtime.spawn_worker(Peer).unwrap();
//! // A calls B, which calls A back: failed at once, not after 5 s.
//! let closed = a.call(vec![b.clone(), a.clone()]).unwrap();
//! assert_eq!(closed, Err(Error::Deadlock(vec![b.pid(), a.pid()])));
//! // Counted when the callback returns, just after its reply.
//! # use otp_threads_testkit::{Patience, poll_until};
//! poll_until(
//!     "A's call counted",
//!     Patience::default(),
//!     || runtime.process_info(&a.pid()).unwrap().messages_handled,
//!     |handled| *handled == 1,
//! );
//! assert_eq!(runtime.snapshot().processes.len(), 2);
//! runtime.shutdown(Duration::from_secs(5)).unwrap();
//! ```

// One `unsafe` block, allowed where it stands: the `prctl` that sizes the process's
// futex table (`src/runtime/futex_hash.rs`).
#![deny(unsafe_code)]

mod clock;
mod error;
mod exit;
mod link;
mod monitor;
mod observer;
mod pid;
mod process;
mod registry;
mod runtime;
mod thread_process;
mod timer;
mod worker;

#[cfg(feature = "dist")]
pub mod dist;
pub mod fast_hash;
pub mod supervisor;

pub use clock::ManualClock;
pub use error::Error;
pub use exit::{Down, Exit, ExitReason};
pub use monitor::Monitor;
pub use observer::{
    Callback, ProcessInfo, ProcessStatus, Snapshot, SupervisedChild, SupervisorNode,
};
pub use pid::{MonitorRef, NodeName, Pid, TimerRef};
pub use registry::{KeyedRegistry, RegisteredName};
pub use runtime::{Runtime, RuntimeBuilder, RuntimeHandle, SystemLimit};
pub use supervisor::{
    ChildSpec, DynamicSupervisor, DynamicSupervisorRef, Supervisor, SupervisorError, SupervisorRef,
};
pub use thread_process::{Process, ProcessRef, Received};
pub use worker::{Context, Info, InitOutcome, ReplyTo, Step, Worker, WorkerRef};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
