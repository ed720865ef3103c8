//! [`Failures`]: the consecutive failures of one partition's workers, which set the
//! restart delay and decide when the dead-letter handler is due.
//!
//! A failure inside a batch records that batch's offsets; the count goes back to zero
//! once a later worker has handled a batch reaching the failed batch's last offset
//! (it got past the messages that failed). A failure outside a batch (`init`) keeps
//! the batch of the previous failure, if any.

use std::time::{Duration, Instant};

use super::backoff::RestartDelay;
use otp_threads::ExitReason;

/// The failure record of a partition in one generation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Failures {
    /// Consecutive failures.
    pub(crate) attempts: u32,
    /// The first and last offsets of the batch that failed, if one did.
    pub(crate) batch: Option<(i64, i64)>,
    /// Why the latest attempt failed.
    pub(crate) reason: Option<ExitReason>,
    /// When the pending restart is due.
    pub(crate) retry_at: Option<Instant>,
}

impl Failures {
    /// Records a failure (in `batch`, if it failed in one); returns the attempt number
    /// and the delay before the restart.
    pub(crate) fn record(
        &mut self,
        batch: Option<(i64, i64)>,
        reason: ExitReason,
        delay: &RestartDelay,
        now: Instant,
    ) -> (u32, Duration) {
        self.attempts = self.attempts.saturating_add(1);
        if batch.is_some() {
            self.batch = batch;
        }
        self.reason = Some(reason);
        let wait = delay.after(self.attempts);
        self.retry_at = Some(now.checked_add(wait).unwrap_or(now));
        (self.attempts, wait)
    }

    /// A batch ending at `last` was handled: if that is past the failed batch (or no
    /// batch failed), the record is cleared; returns the attempts it had.
    pub(crate) fn handled_through(&mut self, last: i64) -> Option<u32> {
        if self.attempts == 0 {
            return None;
        }
        if self
            .batch
            .is_some_and(|(_, failed_last)| last < failed_last)
        {
            return None;
        }
        let attempts = self.attempts;
        *self = Failures::default();
        Some(attempts)
    }

    /// The failed batch's last offset, if the dead-letter handler is due after
    /// `threshold` attempts.
    pub(crate) fn dead_letter_due(&self, threshold: u32) -> Option<i64> {
        if self.attempts < threshold {
            return None;
        }
        self.batch.map(|(_, last)| last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_grow_the_delay_until_the_failed_batch_is_passed() {
        let delay = RestartDelay {
            base: Duration::from_millis(10),
            cap: Duration::from_secs(1),
        };
        let now = Instant::now();
        let mut failures = Failures::default();
        assert_eq!(
            failures.record(Some((5, 9)), ExitReason::error("x"), &delay, now),
            (1, Duration::from_millis(10))
        );
        assert_eq!(
            failures
                .record(None, ExitReason::error("init"), &delay, now)
                .1,
            Duration::from_millis(20)
        );
        assert_eq!(
            failures.batch,
            Some((5, 9)),
            "an init failure keeps the batch"
        );
        assert_eq!(failures.dead_letter_due(3), None);
        failures.record(Some((5, 9)), ExitReason::error("x"), &delay, now);
        assert_eq!(failures.dead_letter_due(3), Some(9));
        assert_eq!(failures.handled_through(7), None, "not past offset 9 yet");
        assert_eq!(failures.handled_through(9), Some(3));
        assert_eq!(failures.attempts, 0);
        assert_eq!(failures.handled_through(20), None, "nothing to clear");
    }

    #[test]
    fn failures_outside_batches_are_cleared_by_any_handled_batch() {
        let mut failures = Failures::default();
        let delay = RestartDelay::default();
        failures.record(None, ExitReason::error("init"), &delay, Instant::now());
        assert_eq!(failures.dead_letter_due(1), None, "no batch to dead-letter");
        assert_eq!(failures.handled_through(0), Some(1));
    }
}
