//! [`RestartDelay`]: how long a failed partition worker waits before its restart
//! (Elsa's `delay` crash throttle, made exponential).
//!
//! The n-th consecutive failure of a partition's worker waits `base × 2^(n-1)`, capped
//! at `cap`; the count starts again once the partition gets past the batch that
//! failed. The arithmetic saturates: no attempt count overflows the delay.

use std::time::Duration;

/// Elsa's `delay`: 5 s; here the first restart waits a tenth of it...
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_millis(500);
/// ...and the delay doubles up to Elsa's 5 s.
pub const DEFAULT_RESTART_DELAY_CAP: Duration = Duration::from_secs(5);

/// The restart delay of a failing partition worker: exponential from `base`, at most
/// `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartDelay {
    /// The delay before the first restart.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for RestartDelay {
    fn default() -> RestartDelay {
        RestartDelay {
            base: DEFAULT_RESTART_DELAY,
            cap: DEFAULT_RESTART_DELAY_CAP,
        }
    }
}

impl RestartDelay {
    /// The delay after the `attempt`-th consecutive failure (1 for the first).
    pub fn after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_per_failure_up_to_the_cap() {
        let delay = RestartDelay {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(700),
        };
        let delays: Vec<u128> = (1..=6).map(|n| delay.after(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700, 700]);
        assert_eq!(delay.after(0), Duration::from_millis(100));
        assert_eq!(delay.after(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn huge_delays_saturate_instead_of_overflowing() {
        let delay = RestartDelay {
            base: Duration::MAX,
            cap: Duration::MAX,
        };
        assert_eq!(delay.after(40), Duration::MAX);
    }
}
