//! A value handed once to a thread that waits for it: a spawned worker's outcome of
//! `init`, sent to the spawner.
//!
//! A `bounded(1)` channel did this before. Its two cache-padded halves cost some 690
//! bytes per start, and whichever thread let go last freed them into its own
//! allocator cache; for a worker that thread was often the worker's, so an idle
//! worker kept them resident (W5). A one-shot needs one small allocation.
//!
//! The receiving half belongs to the thread that made the pair: the sender wakes
//! that thread, which spins first (the sender is usually quick) and then parks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::Duration;

use parking_lot::Mutex;

use super::pool::spin_until_whole;

struct Shared<T> {
    /// `None` until sent; stays `None` if the sender was dropped unsent.
    value: Mutex<Option<T>>,
    /// Set once, after `value` (sent or not): the waiter reads it without the lock.
    settled: AtomicBool,
    waiter: Thread,
}

/// The sending half: [`send`](Self::send) once, or drop it to tell the waiter that
/// nothing will come.
pub(crate) struct OneShotSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half, owned by the thread that called [`one_shot`].
pub(crate) struct OneShotReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// A pair whose receiver is the current thread.
pub(crate) fn one_shot<T>() -> (OneShotSender<T>, OneShotReceiver<T>) {
    let shared = Arc::new(Shared {
        value: Mutex::new(None),
        settled: AtomicBool::new(false),
        waiter: std::thread::current(),
    });
    (
        OneShotSender {
            shared: shared.clone(),
        },
        OneShotReceiver { shared },
    )
}

impl<T> OneShotSender<T> {
    pub(crate) fn send(self, value: T) {
        *self.shared.value.lock() = Some(value);
        // `self` drops here: that settles and wakes.
    }
}

impl<T> Drop for OneShotSender<T> {
    fn drop(&mut self) {
        self.shared.settled.store(true, Ordering::Release);
        self.shared.waiter.unpark();
    }
}

impl<T> OneShotReceiver<T> {
    /// Waits for the value: spins up to `spin`, then parks. `None` if the sender was
    /// dropped without sending.
    pub(crate) fn recv(self, spin: Duration) -> Option<T> {
        debug_assert_eq!(std::thread::current().id(), self.shared.waiter.id());
        let settled = || self.shared.settled.load(Ordering::Acquire).then_some(());
        if spin_until_whole(spin, settled).is_none() {
            // Parking may wake spuriously, or from an earlier stray unpark: re-check.
            while !self.shared.settled.load(Ordering::Acquire) {
                std::thread::park();
            }
        }
        self.shared.value.lock().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sent_from_another_thread_is_received() {
        let (sender, receiver) = one_shot();
        let thread = std::thread::spawn(move || sender.send(7));
        assert_eq!(receiver.recv(Duration::ZERO), Some(7));
        thread.join().unwrap();
    }

    #[test]
    fn a_sender_dropped_unsent_ends_the_wait_with_none() {
        let (sender, receiver) = one_shot::<u32>();
        let thread = std::thread::spawn(move || drop(sender));
        assert_eq!(receiver.recv(Duration::ZERO), None);
        thread.join().unwrap();
    }

    #[test]
    fn a_value_sent_before_the_wait_is_taken_at_once() {
        let (sender, receiver) = one_shot();
        sender.send("ready");
        assert_eq!(receiver.recv(Duration::from_secs(1)), Some("ready"));
    }
}
