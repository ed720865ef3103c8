//! Timers: `send_after` and `cancel_timer` inside a worker.
//!
//! Each worker keeps its pending timers in one deadline heap; its loop waits on its
//! mailbox until the earliest deadline (crossbeam's deadline receive), so timers cost
//! no thread. When a timer is due, its message is appended to the worker's own mailbox
//! at that moment, so it is ordered after the messages that arrived before it expired,
//! as an Erlang timer message is. Cancelling returns the time that was left, or `None`
//! once the timer has fired (its message is then already in the mailbox).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::pid::TimerRef;

/// `now + delay`, or a century from now when `delay` is too long for an `Instant`
/// (`Duration::MAX` means "forever" throughout the crate).
pub(crate) fn deadline_after(delay: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Pending timers of one worker.
pub(crate) struct Timers<M> {
    /// Deadlines by time; entries of cancelled timers are skipped lazily.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, (Instant, M)>,
}

impl<M> Timers<M> {
    pub(crate) fn new() -> Timers<M> {
        Timers {
            heap: BinaryHeap::new(),
            pending: HashMap::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn insert(&mut self, id: u64, deadline: Instant, message: M) -> TimerRef {
        self.heap.push(Reverse((deadline, id)));
        self.pending.insert(id, (deadline, message));
        TimerRef(id)
    }

    /// Cancels a timer; the time that was left if it had not fired.
    pub(crate) fn cancel(&mut self, timer: TimerRef, now: Instant) -> Option<Duration> {
        let (deadline, _) = self.pending.remove(&timer.0)?;
        // Cancelled entries stay in the heap until they surface; rebuild it when they
        // outnumber the live ones, so that set-and-cancel loops cannot grow it.
        if self.heap.len() > 64 && self.heap.len() > 2 * self.pending.len() {
            self.heap = self
                .pending
                .iter()
                .map(|(&id, &(deadline, _))| Reverse((deadline, id)))
                .collect();
        }
        Some(deadline.saturating_duration_since(now))
    }

    /// The time left on a pending timer.
    pub(crate) fn read(&self, timer: TimerRef, now: Instant) -> Option<Duration> {
        self.pending
            .get(&timer.0)
            .map(|(deadline, _)| deadline.saturating_duration_since(now))
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, id))) = self.heap.peek() {
            if self.pending.contains_key(id) {
                return Some(*deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the next timer due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerRef, M)> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        let (_, message) = self.pending.remove(&id)?;
        Some((TimerRef(id), message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_out_in_deadline_order() {
        let now = Instant::now();
        let mut timers = Timers::new();
        timers.insert(1, now + Duration::from_millis(30), "c");
        timers.insert(2, now + Duration::from_millis(10), "a");
        timers.insert(3, now + Duration::from_millis(20), "b");
        assert!(timers.pop_due(now).is_none());
        let later = now + Duration::from_millis(40);
        let order: Vec<_> = std::iter::from_fn(|| timers.pop_due(later))
            .map(|(_, m)| m)
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert!(timers.is_empty());
    }

    #[test]
    fn cancel_returns_time_left_once() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let timer = timers.insert(7, now + Duration::from_millis(100), ());
        assert_eq!(timers.read(timer, now), Some(Duration::from_millis(100)));
        assert_eq!(
            timers.cancel(timer, now + Duration::from_millis(40)),
            Some(Duration::from_millis(60))
        );
        assert_eq!(timers.cancel(timer, now), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn set_and_cancel_loops_do_not_grow_the_heap() {
        let now = Instant::now();
        let mut timers = Timers::new();
        for id in 0..10_000 {
            let timer = timers.insert(id, now + Duration::from_secs(60), ());
            timers.cancel(timer, now);
        }
        assert!(
            timers.heap.len() <= 130,
            "heap kept {} entries",
            timers.heap.len()
        );
    }
}
