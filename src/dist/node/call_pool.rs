//! Threads that run calls from other nodes into local workers.
//!
//! A call blocks until the worker replies, so it cannot run on the connection's
//! reader. Threads are reused: an idle one takes the next call; a new one starts only
//! when none is idle; one idle for [`IDLE_TIMEOUT`] exits. Node shutdown wakes and joins
//! them all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// How long an idle call thread waits for work before it exits.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct CallPool {
    jobs: (Sender<Job>, Receiver<Job>),
    idle: AtomicUsize,
    /// Dropped at shutdown: every idle thread then leaves at once.
    stop: Mutex<Option<Sender<()>>>,
    stopped: Receiver<()>,
}

impl CallPool {
    pub(crate) fn new() -> CallPool {
        let (stop, stopped) = crossbeam_channel::bounded(0);
        CallPool {
            jobs: crossbeam_channel::unbounded(),
            idle: AtomicUsize::new(0),
            stop: Mutex::new(Some(stop)),
            stopped,
        }
    }

    /// Queues `job`; `true` if no thread is idle (the caller starts one with
    /// [`work`](Self::work)).
    pub(crate) fn submit(&self, job: Job) -> bool {
        let needs_thread = self.idle.load(Ordering::Acquire) == 0;
        let _ = self.jobs.0.send(job);
        needs_thread
    }

    /// A pool thread's body.
    pub(crate) fn work(&self) {
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let next = crossbeam_channel::select! {
                recv(self.jobs.1) -> job => job.ok(),
                recv(self.stopped) -> _ => None,
                default(IDLE_TIMEOUT) => None,
            };
            self.idle.fetch_sub(1, Ordering::AcqRel);
            match next {
                Some(job) => job(),
                None => return,
            }
        }
    }

    pub(crate) fn shut_down(&self) {
        self.stop.lock().take();
    }
}
