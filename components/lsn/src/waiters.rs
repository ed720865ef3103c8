//! [`Waiters`]: callers blocked until a standby has replayed a given [`Lsn`], indexed by
//! that LSN.
//!
//! fly_postgres keeps its requests in an ETS set keyed by requester pid and scans the whole
//! table on every replay change. Here the index is ordered by `(lsn, id)`, so a replay
//! advance visits only the waiters it releases, and each waiter has its own one-shot
//! channel:
//!
//! | operation                       | cost          |
//! |---------------------------------|---------------|
//! | [`Waiters::insert`]             | O(log n)      |
//! | [`Waiters::remove`]             | O(log n)      |
//! | [`Waiters::release_up_to`]      | O(k log n) for k released waiters |
//! | [`Waiters::release_all`]        | O(n)          |
//! | [`Waiters::lowest`], `len`      | O(log n), O(1) |
//!
//! A waiter is removed from the index when it is released, so it is notified at most once;
//! a caller that gives up (timeout, dropped receiver) calls [`Waiters::remove`], and one that
//! forgets to is dropped harmlessly at release time. The structure is not synchronised:
//! share it behind a mutex.

use std::collections::{BTreeMap, HashMap};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::position::Lsn;
use super::role::RoleChange;

/// Identifies one registered waiter in a [`Waiters`] index; unique within that index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId(u64);

impl WaiterId {
    /// The raw id (ids are handed out in increasing order, starting at 0).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Why a waiter was released: what it receives on its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The standby replayed WAL up to this position, at or past the awaited one.
    Replayed(Lsn),
    /// There is nothing to replay: the server is a primary (as expected), or a standby
    /// that is not replicating.
    NothingToReplay,
    /// The server's role is not the expected one; the position may never be replayed.
    RoleChanged(RoleChange),
    /// The tracker stopped; the position will not be seen replayed.
    Stopped,
}

/// What [`Waiters::release_up_to`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Waiters that were sent the replay position.
    pub notified: usize,
    /// Waiters removed without a notification because their receiver had been dropped.
    pub abandoned: usize,
}

impl Released {
    /// All waiters removed from the index by the release.
    pub fn total(self) -> usize {
        self.notified + self.abandoned
    }
}

/// Waiters indexed by the LSN each one waits for; see the [module docs](self).
///
/// Each waiter receives, exactly once, the [`Release`] that released it (normally the
/// replay position, [`Release::Replayed`]), on the [`Receiver`] returned by
/// [`Waiters::insert`]. If the index itself is dropped, the pending
/// receivers see a disconnected channel.
#[derive(Debug, Default)]
pub struct Waiters {
    /// `(lsn, id)` → notifier. Ordered so releases pop from the front.
    by_lsn: BTreeMap<(Lsn, WaiterId), Sender<Release>>,
    /// id → lsn, so [`Waiters::remove`] can find the entry without knowing the LSN.
    lsn_of: HashMap<WaiterId, Lsn>,
    /// Next id to hand out.
    next_id: u64,
}

impl Waiters {
    /// An empty index.
    pub fn new() -> Waiters {
        Waiters::default()
    }

    /// Registers a waiter for `lsn`. The returned receiver gets [`Release::Replayed`] once a
    /// [`Waiters::release_up_to`] with a replay position `>= lsn` happens.
    pub fn insert(&mut self, lsn: Lsn) -> (WaiterId, Receiver<Release>) {
        let id = WaiterId(self.next_id);
        self.next_id += 1;
        // Capacity 1: the single notification never blocks the releasing thread.
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.by_lsn.insert((lsn, id), tx);
        self.lsn_of.insert(id, lsn);
        (id, rx)
    }

    /// Removes a waiter that is no longer interested (timed out, gave up). Returns the LSN
    /// it waited for, or `None` if it is unknown or was already released.
    pub fn remove(&mut self, id: WaiterId) -> Option<Lsn> {
        let lsn = self.lsn_of.remove(&id)?;
        let removed = self.by_lsn.remove(&(lsn, id));
        debug_assert!(removed.is_some(), "waiter index out of sync for {id:?}");
        Some(lsn)
    }

    /// Wakes and removes every waiter whose LSN is `<= replay`, sending it
    /// [`Release::Replayed`]`(replay)`.
    /// Waiters whose receiver is gone are removed silently. Later waiters are untouched.
    pub fn release_up_to(&mut self, replay: Lsn) -> Released {
        let mut released = Released::default();
        // Cut the ready prefix off in one split (O(log n)) rather than removing entries
        // one by one: every key below (replay + 1, id 0) is ready.
        let ready = match replay.0.checked_add(1) {
            Some(next) => {
                let waiting = self.by_lsn.split_off(&(Lsn(next), WaiterId(0)));
                std::mem::replace(&mut self.by_lsn, waiting)
            }
            None => std::mem::take(&mut self.by_lsn),
        };
        if self.by_lsn.is_empty() {
            self.lsn_of.clear();
        }
        for ((_, id), tx) in ready {
            if !self.by_lsn.is_empty() {
                self.lsn_of.remove(&id);
            }
            match tx.try_send(Release::Replayed(replay)) {
                Ok(()) => released.notified += 1,
                Err(TrySendError::Disconnected(_)) => released.abandoned += 1,
                // Unreachable: each channel has capacity 1 and is used once.
                Err(TrySendError::Full(_)) => released.notified += 1,
            }
        }
        released
    }

    /// Wakes and removes every waiter, sending each `release`.
    pub fn release_all(&mut self, release: Release) -> Released {
        let mut released = Released::default();
        self.lsn_of.clear();
        for (_, tx) in std::mem::take(&mut self.by_lsn) {
            match tx.try_send(release) {
                Err(TrySendError::Disconnected(_)) => released.abandoned += 1,
                // Full is unreachable, as in release_up_to.
                Ok(()) | Err(TrySendError::Full(_)) => released.notified += 1,
            }
        }
        released
    }

    /// The smallest LSN anyone waits for (the next position that will release somebody).
    pub fn lowest(&self) -> Option<Lsn> {
        self.by_lsn.first_key_value().map(|((lsn, _), _)| *lsn)
    }

    /// Whether `id` is still registered (neither released nor removed).
    pub fn contains(&self, id: WaiterId) -> bool {
        self.lsn_of.contains_key(&id)
    }

    /// Number of registered waiters.
    pub fn len(&self) -> usize {
        self.lsn_of.len()
    }

    /// True when nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.lsn_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::TryRecvError;

    fn lsn(text: &str) -> Lsn {
        text.parse().unwrap()
    }

    #[test]
    fn empty_index() {
        let mut w = Waiters::new();
        assert!(w.is_empty());
        assert_eq!(w.len(), 0);
        assert_eq!(w.lowest(), None);
        assert_eq!(w.release_up_to(Lsn::MAX), Released::default());
        assert_eq!(w.remove(WaiterId(0)), None);
    }

    #[test]
    fn releases_only_replayed_waiters_in_order() {
        let mut w = Waiters::new();
        let (a, ra) = w.insert(lsn("0/300"));
        let (b, rb) = w.insert(lsn("0/100"));
        let (c, rc) = w.insert(lsn("1/0"));
        assert_eq!(w.len(), 3);
        assert_eq!(w.lowest(), Some(lsn("0/100")));

        // Below everything: nothing happens.
        assert_eq!(w.release_up_to(lsn("0/FF")).total(), 0);
        assert_eq!(rb.try_recv(), Err(TryRecvError::Empty));

        // Equal counts as replayed.
        let r = w.release_up_to(lsn("0/100"));
        assert_eq!(
            r,
            Released {
                notified: 1,
                abandoned: 0
            }
        );
        assert_eq!(rb.try_recv(), Ok(Release::Replayed(lsn("0/100"))));
        assert!(!w.contains(b) && w.contains(a) && w.contains(c));

        // High part dominates the low part.
        let r = w.release_up_to(lsn("0/FFFFFFFF"));
        assert_eq!(r.notified, 1);
        assert_eq!(ra.try_recv(), Ok(Release::Replayed(lsn("0/FFFFFFFF"))));
        assert_eq!(rc.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(w.lowest(), Some(lsn("1/0")));

        let r = w.release_up_to(lsn("2/0"));
        assert_eq!(r.notified, 1);
        assert_eq!(rc.try_recv(), Ok(Release::Replayed(lsn("2/0"))));
        assert!(w.is_empty());
    }

    #[test]
    fn each_waiter_is_notified_at_most_once() {
        let mut w = Waiters::new();
        let (id, rx) = w.insert(lsn("0/10"));
        assert_eq!(w.release_up_to(lsn("0/10")).notified, 1);
        assert_eq!(w.release_up_to(lsn("0/20")).total(), 0);
        assert_eq!(w.release_up_to(lsn("5/0")).total(), 0);
        assert_eq!(rx.try_recv(), Ok(Release::Replayed(lsn("0/10"))));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        // Removing after release is a harmless no-op.
        assert_eq!(w.remove(id), None);
    }

    #[test]
    fn many_waiters_on_the_same_lsn() {
        let mut w = Waiters::new();
        let target = lsn("0/17BB660");
        let waiters: Vec<_> = (0..100).map(|_| w.insert(target)).collect();
        let later = w.insert(lsn("0/17BB661"));
        assert_eq!(w.len(), 101);
        let ids: std::collections::HashSet<_> = waiters.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 100, "ids are unique");

        assert_eq!(w.release_up_to(lsn("0/17BB65F")).total(), 0);
        let r = w.release_up_to(target);
        assert_eq!(r.notified, 100);
        for (_, rx) in &waiters {
            assert_eq!(rx.try_recv(), Ok(Release::Replayed(target)));
        }
        assert_eq!(w.len(), 1);
        assert!(w.contains(later.0));
    }

    #[test]
    fn interleaved_removals() {
        let mut w = Waiters::new();
        let target = lsn("0/500");
        let all: Vec<_> = (0..10)
            .map(|i| w.insert(if i % 2 == 0 { target } else { lsn("0/400") }))
            .collect();
        // Remove every third waiter, some on each LSN.
        let mut removed = Vec::new();
        for (i, (id, _)) in all.iter().enumerate() {
            if i % 3 == 0 {
                let expected = if i % 2 == 0 { target } else { lsn("0/400") };
                assert_eq!(w.remove(*id), Some(expected));
                assert_eq!(w.remove(*id), None, "second removal is a no-op");
                removed.push(i);
            }
        }
        assert_eq!(w.len(), 10 - removed.len());
        // Insert more after the removals; ids never repeat.
        let (late_id, late_rx) = w.insert(target);
        assert!(all.iter().all(|(id, _)| *id != late_id));

        let r = w.release_up_to(lsn("0/400"));
        assert_eq!(r.notified, 3, "odd indices 1,5,7 remain on 0/400");
        let r = w.release_up_to(target);
        assert_eq!(r.notified, 3 + 1, "even indices 2,4,8 + one late waiter");
        for (i, (_, rx)) in all.iter().enumerate() {
            if removed.contains(&i) {
                // Removed waiters were never notified; their sender is gone.
                assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
            } else {
                assert!(rx.try_recv().is_ok(), "waiter {i} notified");
            }
        }
        assert!(late_rx.try_recv().is_ok());
        assert!(w.is_empty());
    }

    #[test]
    fn dropped_receivers_are_removed_without_harm() {
        let mut w = Waiters::new();
        let (_, rx1) = w.insert(lsn("0/1"));
        let (_, rx2) = w.insert(lsn("0/1"));
        drop(rx1);
        let r = w.release_up_to(lsn("0/1"));
        assert_eq!(
            r,
            Released {
                notified: 1,
                abandoned: 1
            }
        );
        assert_eq!(rx2.try_recv(), Ok(Release::Replayed(lsn("0/1"))));
        assert!(w.is_empty());
    }

    #[test]
    fn release_all_sends_the_same_reason_to_everyone() {
        let mut w = Waiters::new();
        let (_, a) = w.insert(lsn("0/1"));
        let (_, b) = w.insert(lsn("9/0"));
        let (_, gone) = w.insert(lsn("9/0"));
        drop(gone);
        let r = w.release_all(Release::Stopped);
        assert_eq!(
            r,
            Released {
                notified: 2,
                abandoned: 1
            }
        );
        assert_eq!(a.try_recv(), Ok(Release::Stopped));
        assert_eq!(b.try_recv(), Ok(Release::Stopped));
        assert!(w.is_empty() && w.lowest().is_none());
    }

    #[test]
    fn dropping_the_index_disconnects_pending_waiters() {
        let mut w = Waiters::new();
        let (_, rx) = w.insert(lsn("0/1"));
        drop(w);
        assert_eq!(rx.recv(), Err(crossbeam_channel::RecvError));
    }

    #[test]
    fn cross_thread_wakeup() {
        let waiters = std::sync::Arc::new(parking_lot::Mutex::new(Waiters::new()));
        let handles: Vec<_> = (0u64..8)
            .map(|i| {
                let (_, rx) = waiters.lock().insert(Lsn(i * 10));
                std::thread::spawn(move || rx.recv().unwrap())
            })
            .collect();
        waiters.lock().release_up_to(Lsn(35));
        waiters.lock().release_up_to(Lsn(1_000));
        let got: Vec<Release> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(&got[..4], &[Release::Replayed(Lsn(35)); 4]);
        assert_eq!(&got[4..], &[Release::Replayed(Lsn(1_000)); 4]);
        assert!(waiters.lock().is_empty());
    }
}
