//! Restart intensity: a sliding window of restart times, one per supervisor.
//!
//! As `add_restart` in `supervisor.erl`: each restart drops the times older than the
//! period, records the new one, and the supervisor gives up when more than
//! `max_restarts` remain.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The restart times of one supervisor within its period.
#[derive(Debug)]
pub(crate) struct RestartWindow {
    max_restarts: u32,
    period: Duration,
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(max_restarts: u32, period: Duration) -> RestartWindow {
        RestartWindow {
            max_restarts,
            period,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; `false` if that makes more than `max_restarts`
    /// within the period (the supervisor must then shut down).
    pub(crate) fn add_restart(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) > self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.max_restarts as usize
    }

    pub(crate) fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// The restart times in the window, oldest first (the observer's view keeps its
    /// own window).
    pub(crate) fn times(&self) -> impl Iterator<Item = Instant> + '_ {
        self.restarts.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn restarts_up_to_the_intensity_are_allowed_and_one_more_is_not() {
        let start = Instant::now();
        let mut window = RestartWindow::new(3, 5 * SECOND);
        assert!(window.add_restart(start));
        assert!(window.add_restart(start + SECOND));
        assert!(window.add_restart(start + 2 * SECOND));
        assert!(!window.add_restart(start + 3 * SECOND));
    }

    #[test]
    fn restarts_older_than_the_period_slide_out_of_the_window() {
        let start = Instant::now();
        let mut window = RestartWindow::new(2, 5 * SECOND);
        assert!(window.add_restart(start));
        assert!(window.add_restart(start + 4 * SECOND));
        // The first is 6 s old: it no longer counts.
        assert!(window.add_restart(start + 6 * SECOND));
        // The second is only 3 s old: three in the window now.
        assert!(!window.add_restart(start + 7 * SECOND));
    }

    #[test]
    fn intensity_zero_allows_no_restart() {
        let mut window = RestartWindow::new(0, SECOND);
        assert!(!window.add_restart(Instant::now()));
    }

    #[test]
    fn a_window_of_thirty_in_five_seconds_as_the_kafka_group_worker_needs() {
        let start = Instant::now();
        let mut window = RestartWindow::new(30, 5 * SECOND);
        for i in 0..30 {
            assert!(window.add_restart(start + Duration::from_millis(i * 100)));
        }
        assert!(!window.add_restart(start + Duration::from_millis(3100)));
    }
}
