//! The runtime's clock: the real monotonic clock by default, or a [`ManualClock`] that
//! moves only when a test tells it to.
//!
//! What follows which clock is documented on [`ManualClock`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use crate::pid::{Pid, TimerRef};

/// Which clock a runtime reads.
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    /// `Instant::now()`.
    #[default]
    Real,
    /// Time moves by [`ManualClock::advance`] only.
    Manual(ManualClock),
}

impl Clock {
    /// The current time on this clock.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match self {
            Clock::Real => Instant::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// `now + delay`, capped at a century (`Duration::MAX` means "forever" in the crate).
fn far_deadline(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay.min(CENTURY))
        .unwrap_or_else(|| now + Duration::from_secs(24 * 3600))
}

const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What a due timer does: deliver its message (or end a call), given its reference.
pub(crate) type Fire = Box<dyn FnOnce(TimerRef) + Send>;

struct PendingTimer {
    owner: Option<Pid>,
    fire: Fire,
}

struct State {
    /// How far the clock has been advanced since it was made.
    elapsed: Duration,
    next_id: u64,
    /// Pending timers by (deadline, id): ordered as they fall due.
    timers: BTreeMap<(Instant, u64), PendingTimer>,
    deadlines: HashMap<u64, Instant>,
}

struct Shared {
    origin: Instant,
    state: Mutex<State>,
}

/// A clock for tests: it stands still until [`advance`](Self::advance) moves it.
///
/// Build a runtime with it ([`RuntimeBuilder::manual_clock`](crate::RuntimeBuilder::manual_clock)),
/// and timers, call timeouts and supervisors' restart windows follow it: a test of a
/// 30-second timeout takes no time and no sleep, and its result is exact. Clones share
/// one clock.
///
/// What follows the runtime's clock: worker timers ([`Context::send_after`](crate::Context::send_after),
/// [`send_at`](crate::Context::send_at), `cancel_timer`, `read_timer`), call timeouts
/// ([`WorkerRef::call_timeout`](crate::WorkerRef::call_timeout) and the default call
/// timeout), and supervisors' restart-intensity windows. What stays on real time: the
/// waits of stopping (`stop`, shutdown timeouts of children, [`Runtime::shutdown`](crate::Runtime::shutdown)),
/// so that a test that forgets to advance its clock cannot hang its own teardown.
///
/// With the real clock a worker keeps its timers in its own deadline heap and waits on
/// its mailbox until the earliest one; the clock is not involved. Receive timeouts of
/// plain-thread [`Process`](crate::Process)es follow the runtime's clock too.
/// With a manual clock the timers of every worker live in the clock, and
/// [`ManualClock::advance`] delivers each one that falls due, in deadline order, before
/// it returns: a timer's message is then in its worker's mailbox, ahead of anything the
/// advancing thread sends afterwards.
///
/// `advance(d)` is a jump: the timers due at the new time fire, earliest first, each
/// once; a timer set while (or after) it runs counts from the new time. To see a
/// periodic timer fire `n` times, advance `n` times.
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("ManualClock")
            .field("elapsed", &state.elapsed)
            .field("pending_timers", &state.timers.len())
            .finish()
    }
}

impl ManualClock {
    /// A clock standing at the current real time.
    pub fn new() -> ManualClock {
        ManualClock {
            shared: Arc::new(Shared {
                origin: Instant::now(),
                state: Mutex::new(State {
                    elapsed: Duration::ZERO,
                    next_id: 1,
                    timers: BTreeMap::new(),
                    deadlines: HashMap::new(),
                }),
            }),
        }
    }

    /// The clock's time: where it was made, plus every advance.
    pub fn now(&self) -> Instant {
        self.shared.origin + self.shared.state.lock().elapsed
    }

    /// How far the clock has been advanced in all.
    pub fn elapsed(&self) -> Duration {
        self.shared.state.lock().elapsed
    }

    /// Moves the clock forward by `by` and, before returning, fires every timer that is
    /// due at the new time, in deadline order (equal deadlines in the order they were
    /// set). The clock stops a century after it was made.
    pub fn advance(&self, by: Duration) {
        let due: Vec<(u64, PendingTimer)> = {
            let mut state = self.shared.state.lock();
            state.elapsed = state.elapsed.saturating_add(by).min(CENTURY);
            let now = self.shared.origin + state.elapsed;
            let mut due = Vec::new();
            while let Some(entry) = state.timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let ((_, id), timer) = entry.remove_entry();
                state.deadlines.remove(&id);
                due.push((id, timer));
            }
            due
        };
        // Fired without the lock: a timer's delivery may wake a worker that sets the
        // next timer at once.
        for (id, timer) in due {
            (timer.fire)(TimerRef(id));
        }
    }

    /// The number of timers waiting for the clock, over every runtime that uses it.
    pub fn pending_timers(&self) -> usize {
        self.shared.state.lock().timers.len()
    }

    /// Sets a timer; a deadline not after now fires at once, before this returns.
    pub(crate) fn schedule(&self, deadline: Instant, owner: Option<Pid>, fire: Fire) -> TimerRef {
        let mut state = self.shared.state.lock();
        let id = state.next_id;
        state.next_id += 1;
        if deadline <= self.shared.origin + state.elapsed {
            drop(state);
            fire(TimerRef(id));
            return TimerRef(id);
        }
        state
            .timers
            .insert((deadline, id), PendingTimer { owner, fire });
        state.deadlines.insert(id, deadline);
        TimerRef(id)
    }

    /// A timer after `delay` from now.
    pub(crate) fn schedule_after(
        &self,
        delay: Duration,
        owner: Option<Pid>,
        fire: Fire,
    ) -> TimerRef {
        self.schedule(far_deadline(self.now(), delay), owner, fire)
    }

    /// Cancels a pending timer; the time that was left, `None` if it fired or is unknown.
    pub(crate) fn cancel(&self, timer: TimerRef) -> Option<Duration> {
        let (pending, left) = {
            let mut state = self.shared.state.lock();
            let deadline = state.deadlines.remove(&timer.0)?;
            let now = self.shared.origin + state.elapsed;
            let pending = state.timers.remove(&(deadline, timer.0));
            (pending, deadline.saturating_duration_since(now))
        };
        // The message goes with the timer, outside the lock (it is a user value).
        drop(pending);
        Some(left)
    }

    /// The time left on a pending timer.
    pub(crate) fn read(&self, timer: TimerRef) -> Option<Duration> {
        let state = self.shared.state.lock();
        let deadline = state.deadlines.get(&timer.0)?;
        Some(deadline.saturating_duration_since(self.shared.origin + state.elapsed))
    }

    /// The number of pending timers `owner` set.
    pub(crate) fn pending_of(&self, owner: Pid) -> usize {
        let state = self.shared.state.lock();
        state
            .timers
            .values()
            .filter(|timer| timer.owner == Some(owner))
            .count()
    }

    /// Drops the pending timers of a process that has exited: its timers die with it.
    pub(crate) fn cancel_all_of(&self, owner: Pid) {
        let gone: Vec<PendingTimer> = {
            let mut state = self.shared.state.lock();
            let ids: Vec<(Instant, u64)> = state
                .timers
                .iter()
                .filter(|(_, timer)| timer.owner == Some(owner))
                .map(|(key, _)| *key)
                .collect();
            ids.into_iter()
                .filter_map(|key| {
                    state.deadlines.remove(&key.1);
                    state.timers.remove(&key)
                })
                .collect()
        };
        drop(gone);
    }
}

/// A timeout on a manual clock, as a channel that becomes ready when the clock reaches
/// it: wait on it in `select!` beside what the timeout bounds. Set it before whatever
/// may be waited for is started, so that the clock cannot be advanced past the
/// deadline before it exists. Dropping it removes the timer.
pub(crate) struct ClockTimeout<'a> {
    clock: &'a ManualClock,
    timer: TimerRef,
    ended: Receiver<()>,
}

impl<'a> ClockTimeout<'a> {
    pub(crate) fn start(clock: &'a ManualClock, timeout: Duration) -> ClockTimeout<'a> {
        ClockTimeout::start_then(clock, timeout, || {})
    }

    /// The same timeout, which also runs `then` when the clock reaches it (on the thread
    /// that advances the clock): for a waiter that does not wait on a channel.
    pub(crate) fn start_then(
        clock: &'a ManualClock,
        timeout: Duration,
        then: impl FnOnce() + Send + 'static,
    ) -> ClockTimeout<'a> {
        let (ends, ended) = crossbeam_channel::bounded::<()>(1);
        let timer = clock.schedule_after(
            timeout,
            None,
            Box::new(move |_| {
                let _ = ends.try_send(());
                then();
            }),
        );
        ClockTimeout {
            clock,
            timer,
            ended,
        }
    }

    /// Ready once the clock has reached the timeout.
    pub(crate) fn ended(&self) -> &Receiver<()> {
        &self.ended
    }
}

impl Drop for ClockTimeout<'_> {
    fn drop(&mut self) {
        self.clock.cancel(self.timer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(log: &Arc<Mutex<Vec<&'static str>>>, name: &'static str) -> Fire {
        let log = log.clone();
        Box::new(move |_| log.lock().push(name))
    }

    #[test]
    fn advance_fires_due_timers_in_deadline_order_and_no_others() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let ms = Duration::from_millis;
        clock.schedule_after(ms(30), None, recorder(&log, "c"));
        clock.schedule_after(ms(10), None, recorder(&log, "a"));
        clock.schedule_after(ms(20), None, recorder(&log, "b1"));
        clock.schedule_after(ms(20), None, recorder(&log, "b2"));
        clock.schedule_after(ms(50), None, recorder(&log, "d"));
        clock.advance(ms(5));
        assert!(log.lock().is_empty());
        clock.advance(ms(25));
        assert_eq!(*log.lock(), ["a", "b1", "b2", "c"]);
        assert_eq!(clock.pending_timers(), 1);
        assert_eq!(clock.elapsed(), ms(30));
    }

    #[test]
    fn a_past_deadline_fires_at_once_and_cancel_returns_the_exact_time_left() {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        clock.schedule(clock.now(), None, recorder(&log, "now"));
        assert_eq!(*log.lock(), ["now"]);
        let timer = clock.schedule_after(Duration::from_secs(10), None, recorder(&log, "never"));
        clock.advance(Duration::from_secs(4));
        assert_eq!(clock.read(timer), Some(Duration::from_secs(6)));
        assert_eq!(clock.cancel(timer), Some(Duration::from_secs(6)));
        assert_eq!(clock.cancel(timer), None);
        clock.advance(Duration::from_secs(60));
        assert_eq!(*log.lock(), ["now"]);
    }

    #[test]
    fn advancing_past_a_century_saturates() {
        let clock = ManualClock::new();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.elapsed(), CENTURY);
        let log = Arc::new(Mutex::new(Vec::new()));
        // A "forever" timer never falls due, even at the clock's end.
        clock.schedule_after(Duration::MAX, None, recorder(&log, "forever"));
        assert_eq!(clock.pending_timers(), 1);
    }
}
