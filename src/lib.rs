//! otp-threads (crate doc to come)

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

#[cfg(feature = "postgres")]
pub mod lsn;
#[cfg(feature = "tunnel")]
pub mod tunnel;

pub use error::Error;
pub use exit::{Down, Exit, ExitReason};
pub use monitor::Monitor;
pub use pid::{MonitorRef, NodeName, Pid, TimerRef};
pub use registry::KeyedRegistry;
pub use runtime::{Runtime, RuntimeBuilder, RuntimeHandle};
pub use worker::{Context, Info, ReplyTo, Step, Worker, WorkerRef};
