//! What a process is doing right now, kept in atomics on its cell.
//!
//! Contract: only the process's own thread writes these (so plain loads and stores,
//! no read-modify-write on the message path); any thread may read them at any time,
//! and a reader sees a recent state, not a consistent one across fields. The one
//! cross-thread rule is the wait-for edge (`calling`): it is stored and read with
//! `SeqCst`, so that of two calls closing a cycle at the same moment at least one
//! sees the other's edge (see `deadlock.rs`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Callback;

/// No callback runs: the worker waits for its next message.
const WAITING: u8 = 0;
/// No call in progress.
const NOT_CALLING: u64 = 0;

/// The instant all activity times count from (one per OS process: times are only
/// ever compared with `now`).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The OS thread a process runs on.
#[derive(Clone, Debug)]
pub(crate) struct ThreadIdentity {
    pub(crate) name: Option<String>,
    pub(crate) id: String,
}

/// One process's live activity.
pub(crate) struct Activity {
    /// The running callback (`Callback as u8`), or `WAITING`.
    callback: AtomicU8,
    /// Callbacks begun so far (owner-written): names the current one.
    seq: AtomicU64,
    /// When the callback numbered `since_seq` started, in nanoseconds since `epoch()`;
    /// taken only for a callback that follows a wait (its thread was woken anyway),
    /// never for messages handled back to back, so the message path reads no clock.
    since: AtomicU64,
    since_seq: AtomicU64,
    /// For a callback without a start time: when an observer first saw it (seq, nanos).
    first_seen: Mutex<(u64, u64)>,
    /// Messages taken from the mailbox and handled.
    handled: AtomicU64,
    /// The pid number + 1 of the local process this one is blocked calling; 0 if none.
    calling: AtomicU64,
    /// When that call started.
    calling_since: AtomicU64,
    /// Timers set and not yet fired or cancelled.
    timers: AtomicU64,
    /// The OS thread, set once when the process starts on it.
    /// The std handle (a reference count, no allocation of its own): the observer
    /// reads the name and id from it when asked.
    thread: Mutex<Option<std::thread::Thread>>,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            callback: AtomicU8::new(WAITING),
            seq: AtomicU64::new(0),
            since: AtomicU64::new(0),
            since_seq: AtomicU64::new(0),
            first_seen: Mutex::new((0, 0)),
            handled: AtomicU64::new(0),
            calling: AtomicU64::new(NOT_CALLING),
            calling_since: AtomicU64::new(0),
            timers: AtomicU64::new(0),
            thread: Mutex::new(None),
        }
    }

    /// Records the current thread as this process's thread.
    pub(crate) fn bind_to_current_thread(&self) {
        *self.thread.lock() = Some(std::thread::current());
    }

    pub(crate) fn thread(&self) -> Option<ThreadIdentity> {
        let thread = self.thread.lock().clone()?;
        Some(ThreadIdentity {
            name: thread.name().map(str::to_owned),
            id: format!("{:?}", thread.id()),
        })
    }

    /// A callback starts (on the owning thread); `after_wait` if the thread waited
    /// for it (then, and only then, the start time is taken).
    #[inline]
    pub(crate) fn begin(&self, callback: Callback, after_wait: bool) {
        let seq = self.seq.load(Ordering::Relaxed).wrapping_add(1);
        self.seq.store(seq, Ordering::Relaxed);
        if after_wait {
            self.since
                .store(nanos_since_epoch(Instant::now()), Ordering::Relaxed);
            self.since_seq.store(seq, Ordering::Relaxed);
        }
        self.callback.store(callback as u8, Ordering::Release);
    }

    /// The callback that began with a message ended; `timers` are pending now.
    #[inline]
    pub(crate) fn end(&self, message: bool, timers: usize) {
        if message {
            // Written by the owning thread only: no atomic increment needed.
            let handled = self.handled.load(Ordering::Relaxed);
            self.handled
                .store(handled.wrapping_add(1), Ordering::Relaxed);
        }
        self.timers.store(timers as u64, Ordering::Relaxed);
        // Last, with Release: a reader that sees the process waiting (an Acquire load)
        // sees the count and the timers of the callback that just ended.
        self.callback.store(WAITING, Ordering::Release);
    }

    /// The running callback and how long it has run, or `None` while waiting. For a
    /// callback that started back to back with the previous one (no start time), the
    /// time since an observer first saw it: a lower bound.
    pub(crate) fn running(&self) -> Option<(Callback, Duration)> {
        let callback = Callback::from_code(self.callback.load(Ordering::Acquire))?;
        let seq = self.seq.load(Ordering::Relaxed);
        if self.since_seq.load(Ordering::Relaxed) == seq {
            return Some((callback, elapsed_since(self.since.load(Ordering::Relaxed))));
        }
        let mut first_seen = self.first_seen.lock();
        if first_seen.0 != seq {
            *first_seen = (seq, nanos_since_epoch(Instant::now()));
        }
        Some((callback, elapsed_since(first_seen.1)))
    }

    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub(crate) fn pending_timers(&self) -> usize {
        usize::try_from(self.timers.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// This process starts waiting for a call to the process numbered `callee`.
    pub(crate) fn start_calling(&self, callee: u64, now: Instant) {
        self.calling_since
            .store(nanos_since_epoch(now), Ordering::Relaxed);
        self.calling.store(callee.wrapping_add(1), Ordering::SeqCst);
    }

    /// The call ended (whatever its outcome).
    pub(crate) fn stop_calling(&self) {
        self.calling.store(NOT_CALLING, Ordering::SeqCst);
    }

    /// The number of the process this one is blocked calling.
    pub(crate) fn calling(&self) -> Option<u64> {
        match self.calling.load(Ordering::SeqCst) {
            NOT_CALLING => None,
            plus_one => Some(plus_one - 1),
        }
    }

    /// How long the current call has waited.
    pub(crate) fn calling_for(&self) -> Duration {
        elapsed_since(self.calling_since.load(Ordering::Relaxed))
    }
}

fn elapsed_since(nanos: u64) -> Duration {
    let now = nanos_since_epoch(Instant::now());
    Duration::from_nanos(now.saturating_sub(nanos))
}
