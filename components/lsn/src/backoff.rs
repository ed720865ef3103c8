//! [`Backoff`]: capped exponential delays between reconnection attempts.

use std::time::Duration;

/// Capped exponential backoff: the first delay is `min`, each following delay doubles,
/// never exceeding `max`; [`Backoff::reset`] starts over after a success.
///
/// ```
/// use std::time::Duration;
/// use otp_threads_lsn::Backoff;
///
/// let ms = Duration::from_millis;
/// let mut b = Backoff::new(ms(50), ms(300));
/// let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
/// assert_eq!(delays, [ms(50), ms(100), ms(200), ms(300), ms(300)]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Smallest first delay used when `min` is zero (a zero delay would never grow).
    pub const FLOOR: Duration = Duration::from_millis(1);

    /// A backoff starting at `min` and capped at `max`. A zero `min` is raised to
    /// [`Backoff::FLOOR`]; a `max` below `min` is raised to `min`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Self::FLOOR);
        let max = max.max(min);
        Backoff {
            min,
            max,
            current: min,
        }
    }

    /// The first delay.
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The cap.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Returns the delay to wait now and doubles the next one (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        delay
    }

    /// Starts over from `min` (call after a successful attempt).
    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

impl Default for Backoff {
    /// 50 ms doubling up to 5 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap_and_stays_there() {
        let mut b = Backoff::new(ms(10), ms(100));
        let got: Vec<_> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(
            got,
            [ms(10), ms(20), ms(40), ms(80), ms(100), ms(100), ms(100)]
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(ms(10), ms(100));
        b.next_delay();
        b.next_delay();
        b.reset();
        assert_eq!(b.next_delay(), ms(10));
    }

    #[test]
    fn degenerate_bounds_are_normalised() {
        let b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!((b.min(), b.max()), (Backoff::FLOOR, Backoff::FLOOR));
        let mut b = Backoff::new(ms(200), ms(50));
        assert_eq!(b.max(), ms(200));
        assert_eq!(b.next_delay(), ms(200));
        assert_eq!(b.next_delay(), ms(200));
    }

    #[test]
    fn huge_values_saturate() {
        let mut b = Backoff::new(Duration::MAX / 2 + ms(1), Duration::MAX);
        b.next_delay();
        assert_eq!(b.next_delay(), Duration::MAX);
    }

    #[test]
    fn default_is_50ms_to_5s() {
        let b = Backoff::default();
        assert_eq!((b.min(), b.max()), (ms(50), Duration::from_secs(5)));
    }
}
