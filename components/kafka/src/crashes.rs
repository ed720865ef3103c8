//! [`Crashes`]: which partitions' workers failed lately, to name the culprit when the
//! restart intensity is exceeded.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use otp_threads::ExitReason;

/// A failed worker.
#[derive(Clone, Debug)]
pub(crate) struct Crash {
    pub(crate) at: Instant,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) reason: ExitReason,
}

/// Worker failures within the restart period.
#[derive(Default)]
pub(crate) struct Crashes {
    recent: Mutex<VecDeque<Crash>>,
}

/// Bound on the failures kept, whatever the period.
const KEPT: usize = 4096;

impl Crashes {
    pub(crate) fn record(&self, crash: Crash, period: Duration) {
        let mut recent = self.recent.lock();
        while recent
            .front()
            .is_some_and(|c| crash.at.duration_since(c.at) > period)
            || recent.len() >= KEPT
        {
            recent.pop_front();
        }
        recent.push_back(crash);
    }

    /// The partition that failed most often within `period` of the latest failure (the
    /// latest to fail on a tie), with its latest failure.
    pub(crate) fn culprit(&self, period: Duration) -> Option<Crash> {
        let recent = self.recent.lock();
        let latest = recent.back()?.at;
        let window: Vec<&Crash> = recent
            .iter()
            .filter(|c| latest.duration_since(c.at) <= period)
            .collect();
        let count = |c: &Crash| {
            window
                .iter()
                .filter(|o| o.topic == c.topic && o.partition == c.partition)
                .count()
        };
        // Latest first, so that `max_by_key` (which keeps the last maximum) is reversed.
        window
            .iter()
            .rev()
            .enumerate()
            .max_by_key(|(i, c)| (count(c), std::cmp::Reverse(*i)))
            .map(|(_, c)| (*c).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(partition: i32, at: Instant) -> Crash {
        Crash {
            at,
            topic: "t".into(),
            partition,
            reason: ExitReason::error(partition),
        }
    }

    #[test]
    fn the_culprit_failed_most_often_and_latest_on_a_tie() {
        let crashes = Crashes::default();
        let period = Duration::from_secs(5);
        let t = Instant::now();
        assert!(crashes.culprit(period).is_none());
        crashes.record(crash(1, t), period);
        crashes.record(crash(2, t), period);
        assert_eq!(crashes.culprit(period).unwrap().partition, 2);
        crashes.record(crash(1, t), period);
        assert_eq!(crashes.culprit(period).unwrap().partition, 1);
        // Old failures leave the window.
        let later = t + Duration::from_secs(10);
        crashes.record(crash(3, later), period);
        assert_eq!(crashes.culprit(period).unwrap().partition, 3);
    }
}
