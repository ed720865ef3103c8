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
//! # Names
//!
//! [`RuntimeHandle::register`] and [`RuntimeHandle::whereis`] name workers; a name is
//! released when its worker dies, before its links and monitors fire.
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

#![warn(missing_docs)]
#![warn(clippy::mod_module_files)]

mod error;
mod exit;
mod link;
mod monitor;
mod pid;
mod process;
mod registry;
mod runtime;
mod timer;
mod worker;

// ---- dist (Erlang distribution) ----
#[cfg(feature = "dist")]
pub mod dist;
// ---- end dist ----
#[cfg(feature = "kafka")]
pub mod group;
#[cfg(feature = "postgres")]
pub mod lsn;
pub mod supervisor;
#[cfg(feature = "tunnel")]
pub mod tunnel;

pub use error::Error;
pub use exit::{Down, Exit, ExitReason};
pub use monitor::Monitor;
pub use pid::{MonitorRef, NodeName, Pid, TimerRef};
pub use registry::KeyedRegistry;
pub use runtime::{Runtime, RuntimeBuilder, RuntimeHandle};
pub use supervisor::{
    ChildSpec, DynamicSupervisor, DynamicSupervisorRef, Supervisor, SupervisorError, SupervisorRef,
};
pub use worker::{Context, Info, ReplyTo, Step, Worker, WorkerRef};

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
