//! [`PartitionLock`]: no two workers of one member handle a partition at once — and
//! no worker waits behind a killed one.
//!
//! A worker holds its partition's lock while it takes and handles a batch, so a worker
//! that was asked to stop but is still finishing a batch keeps the partition's next
//! worker waiting. A killed worker's thread, though, may never return (a hung
//! handler): the member then *abandons* the lock it holds, and later workers use a
//! fresh one. A worker also gives up waiting after a bound (the worker shutdown
//! timeout) and abandons the lock itself, so even a holder the member did not kill
//! cannot wedge the partition. Waits are short slices between which the worker serves
//! its mailbox, so a waiting worker can always be stopped.
//!
//! What an abandoned holder does when it comes back is fenced elsewhere: its acks carry
//! its generation, and a revoked generation's acks are ignored.

use std::sync::Arc;

use parking_lot::Mutex;

/// The lock of one (topic, partition) of a member, for the member's lifetime.
#[derive(Default)]
pub(crate) struct PartitionLock {
    current: Mutex<Arc<Mutex<()>>>,
}

impl PartitionLock {
    /// The lock workers take now.
    pub(crate) fn current(&self) -> Arc<Mutex<()>> {
        self.current.lock().clone()
    }

    /// Its holder will not release `held`: later workers use a fresh lock. Returns
    /// `false` if `held` was abandoned already.
    pub(crate) fn abandon(&self, held: &Arc<Mutex<()>>) -> bool {
        let mut current = self.current.lock();
        if !Arc::ptr_eq(&current, held) {
            return false;
        }
        *current = Arc::default();
        true
    }

    /// Abandons the current lock if it is held (its holder was killed).
    pub(crate) fn abandon_if_held(&self) -> bool {
        let held = self.current();
        held.is_locked() && self.abandon(&held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_lock_is_replaced_once_and_the_holder_keeps_the_old_one() {
        let lock = PartitionLock::default();
        let old = lock.current();
        let guard = old.lock();
        assert!(lock.abandon_if_held());
        assert!(!lock.abandon(&old), "already replaced");
        let fresh = lock.current();
        assert!(!Arc::ptr_eq(&old, &fresh));
        assert!(fresh.try_lock().is_some(), "the next worker does not wait");
        drop(guard);
        assert!(!lock.abandon_if_held(), "nobody holds the fresh lock");
    }
}
