//! A thread's reusable reply slot for its calls, with call tags.
//!
//! Contract: each thread has one slot per reply type, reused by every call it makes
//! (a thread waits on one call at a time). A call takes a fresh tag (its monitor's
//! reference id) and arms the slot with it; whoever *claims* the tag first — the
//! reply, a dropped token, the callee's DOWN, or the caller's own timeout — decides
//! the call's outcome, and only a claimer sends into the slot. A late reply (its call
//! timed out, or a later call owns the slot now) finds another tag armed, cannot claim
//! it and is dropped: `ReplyTo::reply` returns `false`, as OTP drops a reply to a
//! deactivated alias. So at most one outcome per call is ever in the slot, and the
//! caller always takes it before its next call.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::exit::ExitReason;
use crate::process::CallWatch;

/// No call armed.
const IDLE: u64 = 0;

/// What ends a call.
pub(crate) enum CallOutcome<R> {
    Reply(R),
    /// The callee died (the call's monitor fired).
    Down(ExitReason),
    /// The reply token was dropped unanswered.
    Dropped,
}

/// One thread's slot for replies of type `R`.
pub(crate) struct ReplySlot<R> {
    /// The tag of the call the owning thread waits on, `IDLE` once it is settled.
    armed: AtomicU64,
    sender: Sender<(u64, CallOutcome<R>)>,
    receiver: Receiver<(u64, CallOutcome<R>)>,
}

thread_local! {
    /// This thread's slots, one per reply type (few: a linear search is cheapest).
    static SLOTS: RefCell<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>> =
        const { RefCell::new(Vec::new()) };
}

impl<R: Send + 'static> ReplySlot<R> {
    fn new() -> ReplySlot<R> {
        // One outcome at most is in flight (see the module doc); room for a second in
        // case a call was unwound between arming and taking its outcome.
        let (sender, receiver) = crossbeam_channel::bounded(2);
        ReplySlot {
            armed: AtomicU64::new(IDLE),
            sender,
            receiver,
        }
    }

    /// The current thread's slot for `R` (a fresh one during thread teardown).
    pub(crate) fn for_this_thread() -> Arc<ReplySlot<R>> {
        let found = SLOTS.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            let key = TypeId::of::<R>();
            if let Some((_, slot)) = slots.iter().find(|(id, _)| *id == key) {
                return slot.clone();
            }
            let slot: Arc<dyn Any + Send + Sync> = Arc::new(ReplySlot::<R>::new());
            slots.push((key, slot.clone()));
            slot
        });
        match found {
            Ok(slot) => slot
                .downcast::<ReplySlot<R>>()
                .unwrap_or_else(|_| Arc::new(ReplySlot::new())),
            Err(_) => Arc::new(ReplySlot::new()),
        }
    }

    /// Arms the slot for the call tagged `tag`; before the call can be settled.
    pub(crate) fn arm(&self, tag: u64) {
        self.armed.store(tag, Ordering::Release);
        // Left only by a call unwound before it took its outcome: never the new call's.
        while self.receiver.try_recv().is_ok() {}
    }

    /// Takes the call tagged `tag`: `true` for exactly one claimer.
    pub(crate) fn claim(&self, tag: u64) -> bool {
        self.armed
            .compare_exchange(tag, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Settles the call tagged `tag` with `outcome`, if it is still armed: `false` if
    /// it was settled already (or timed out), and `outcome` is then dropped.
    pub(crate) fn settle(&self, tag: u64, outcome: CallOutcome<R>) -> bool {
        if !self.claim(tag) {
            return false;
        }
        // Never full: the caller takes each outcome before it arms the next call.
        self.sender.try_send((tag, outcome)).is_ok()
    }

    /// The receiving side, for the owning thread only.
    pub(crate) fn receiver(&self) -> &Receiver<(u64, CallOutcome<R>)> {
        &self.receiver
    }
}

impl<R: Send + 'static> CallWatch for ReplySlot<R> {
    fn callee_down(&self, tag: u64, reason: ExitReason) {
        self.settle(tag, CallOutcome::Down(reason));
    }
}

/// Where a call's outcome goes.
pub(crate) enum Settler<R> {
    /// The calling thread's slot: the caller waits on it.
    Slot(Arc<ReplySlot<R>>),
    /// Nobody waits: the outcome runs a callback on the thread that settles the call
    /// (the callee's, for a reply). Distribution's served calls answer the remote
    /// caller this way, with no thread blocked in between.
    Callback(Arc<CallbackSlot<R>>),
}

impl<R: Send + 'static> Settler<R> {
    /// See [`ReplySlot::settle`].
    pub(crate) fn settle(&self, tag: u64, outcome: CallOutcome<R>) -> bool {
        match self {
            Settler::Slot(slot) => slot.settle(tag, outcome),
            Settler::Callback(slot) => slot.settle(tag, outcome),
        }
    }
}

/// The outcome's consumer, for a call nobody waits on.
pub(crate) type OutcomeCallback<R> = Box<dyn FnOnce(CallOutcome<R>) + Send>;

/// One call's callback: whoever settles the call first runs it, once.
pub(crate) struct CallbackSlot<R> {
    tag: u64,
    callback: Mutex<Option<OutcomeCallback<R>>>,
}

impl<R: Send + 'static> CallbackSlot<R> {
    pub(crate) fn new(tag: u64, callback: OutcomeCallback<R>) -> CallbackSlot<R> {
        CallbackSlot {
            tag,
            callback: Mutex::new(Some(callback)),
        }
    }

    /// Runs the callback with `outcome` if the call is not settled yet; `false` if it
    /// was (and `outcome` is dropped). The lock is not held while the callback runs.
    pub(crate) fn settle(&self, tag: u64, outcome: CallOutcome<R>) -> bool {
        if tag != self.tag {
            return false;
        }
        let callback = self.callback.lock().take();
        match callback {
            Some(callback) => {
                callback(outcome);
                true
            }
            None => false,
        }
    }

    /// Takes the call without running the callback: `true` if it was not settled.
    pub(crate) fn disarm(&self) -> bool {
        self.callback.lock().take().is_some()
    }
}

impl<R: Send + 'static> CallWatch for CallbackSlot<R> {
    fn callee_down(&self, tag: u64, reason: ExitReason) {
        self.settle(tag, CallOutcome::Down(reason));
    }
}
