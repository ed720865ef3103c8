//! Exponential backoff with jitter and a total time budget.
//!
//! The n-th delay is `min(initial * multiplier^n, max_interval)` scaled by a
//! random factor in `[1 - jitter, 1 + jitter]`, then clamped to
//! `max_interval`. When the delays handed out (or the elapsed time the
//! caller reports) plus the next delay would exceed `max_elapsed`, the
//! backoff is exhausted and returns `None`; so the total sleep never exceeds
//! the budget.
//!
//! Presets (from the Go SDK's request retry policy):
//! * [`BackoffConfig::meta`]: 100 ms → 2 s, ×2, jitter 0.33, 35 s total —
//!   every tunnel call except readrecords;
//! * [`BackoffConfig::read_records`]: 16 ms → 3 s, ×2, jitter 0.33, 75 s total;
//! * [`BackoffConfig::stream_poll`]: 20 ms → 5 s, ×5, jitter 0.25, unbounded —
//!   the pause between reads of an idle stream channel.
//!
//! Randomness comes from a small SplitMix64 generator; [`Backoff::with_seed`]
//! makes a sequence reproducible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::TunnelError;
use crate::options::MAX_DURATION;

/// Parameters of an exponential backoff: a preset ([`meta`](Self::meta),
/// [`read_records`](Self::read_records), [`stream_poll`](Self::stream_poll)) or
/// [`new`](Self::new), adjusted with the builder methods, e.g.
/// `BackoffConfig::meta().max_elapsed(Some(Duration::from_secs(5)))`. The
/// configuration that holds it checks it with [`validate`](Self::validate) when it
/// starts, naming itself (`meta_retry`, `poll_backoff`, ...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    pub(crate) initial: Duration,
    pub(crate) max_interval: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
    pub(crate) max_elapsed: Option<Duration>,
}

impl BackoffConfig {
    /// Delays from `initial` up to `max_interval`, doubling, without jitter or
    /// budget.
    pub const fn new(initial: Duration, max_interval: Duration) -> Self {
        BackoffConfig {
            initial,
            max_interval,
            multiplier: 2.0,
            jitter: 0.0,
            max_elapsed: None,
        }
    }

    /// The first (un-jittered) delay.
    pub const fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// The largest delay ever returned.
    pub const fn max_interval(mut self, max_interval: Duration) -> Self {
        self.max_interval = max_interval;
        self
    }

    /// Growth factor per attempt (finite, at least 1).
    pub const fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Relative jitter in `[0, 1]`: a delay `d` becomes uniform in
    /// `[d(1-jitter), d(1+jitter)]` (then clamped to `max_interval`).
    pub const fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Total budget of sleep; `None` means retry forever.
    pub const fn max_elapsed(mut self, max_elapsed: Option<Duration>) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// Check the parameters; the error names `option` (the setting holding this
    /// policy, e.g. `meta_retry`) and says which parameter is wrong.
    ///
    /// Rules: `0 < initial <= max_interval <= MAX_DURATION`, `max_elapsed` (when set)
    /// within `MAX_DURATION`, `multiplier` finite and at least 1, `jitter` within
    /// `0..=1`.
    ///
    /// [`MAX_DURATION`]: crate::options::MAX_DURATION
    pub fn validate(&self, option: &'static str) -> Result<(), TunnelError> {
        let bad = |reason: String| Err(TunnelError::invalid_option(option, reason));
        if self.initial.is_zero() || self.max_interval < self.initial {
            return bad(format!(
                "initial ({:?}) must be positive and at most max_interval ({:?})",
                self.initial, self.max_interval
            ));
        }
        if self.max_interval > MAX_DURATION {
            return bad(format!(
                "max_interval {:?} is above the maximum of {MAX_DURATION:?}",
                self.max_interval
            ));
        }
        if self.max_elapsed.is_some_and(|d| d > MAX_DURATION) {
            return bad(format!(
                "max_elapsed {:?} is above the maximum of {MAX_DURATION:?}",
                self.max_elapsed
            ));
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return bad(format!(
                "multiplier {} must be a finite number >= 1",
                self.multiplier
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad(format!("jitter {} must be within 0..=1", self.jitter));
        }
        Ok(())
    }

    /// Retry policy of the meta calls (connect, heartbeat, checkpoint, ...):
    /// 100 ms .. 2 s, up to 35 s in total.
    pub const fn meta() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max_interval: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.33,
            max_elapsed: Some(Duration::from_secs(35)),
        }
    }

    /// Retry policy of readrecords: 16 ms .. 3 s, up to 75 s in total.
    pub const fn read_records() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(16),
            max_interval: Duration::from_secs(3),
            multiplier: 2.0,
            jitter: 0.33,
            max_elapsed: Some(Duration::from_secs(75)),
        }
    }

    /// Pause between reads of a stream channel that returned little data:
    /// 20 ms .. 5 s, ×5, jitter 0.25, no budget.
    pub const fn stream_poll() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(20),
            max_interval: Duration::from_secs(5),
            multiplier: 5.0,
            jitter: 0.25,
            max_elapsed: None,
        }
    }
}

/// A running backoff sequence; see the module docs.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    current: Duration,
    slept: Duration,
    attempts: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// A backoff with a seed derived from the clock and a process counter.
    pub fn new(config: BackoffConfig) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::with_seed(config, nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A reproducible backoff: the same seed gives the same delays.
    pub fn with_seed(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            current: config.initial,
            slept: Duration::ZERO,
            attempts: 0,
            rng: SplitMix64(seed),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Sum of the delays handed out since the last reset.
    pub fn total_delay(&self) -> Duration {
        self.slept
    }

    /// Start over from the initial delay with an empty budget.
    pub fn reset(&mut self) {
        self.current = self.config.initial;
        self.slept = Duration::ZERO;
        self.attempts = 0;
    }

    /// The next delay, counting only the delays handed out against the
    /// budget; `None` once the budget would be exceeded.
    pub fn next_delay(&mut self) -> Option<Duration> {
        self.next_delay_after(self.slept)
    }

    /// The next delay given the caller's measure of time already spent
    /// (e.g. wall-clock time since the first attempt, including request
    /// time); `None` once `elapsed + delay` would exceed the budget.
    pub fn next_delay_after(&mut self, elapsed: Duration) -> Option<Duration> {
        let delay = self.jittered(self.current);
        if let Some(budget) = self.config.max_elapsed
            && elapsed.saturating_add(delay) > budget
        {
            return None;
        }
        let grown = self.current.as_secs_f64() * self.config.multiplier.max(1.0);
        self.current = self.capped(grown);
        self.slept = self.slept.saturating_add(delay);
        self.attempts = self.attempts.saturating_add(1);
        Some(delay)
    }

    fn jittered(&mut self, base: Duration) -> Duration {
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let unit = self.rng.next_f64() * 2.0 - 1.0; // [-1, 1)
        self.capped(base.as_secs_f64() * (1.0 + jitter * unit))
    }

    /// `secs` as a duration within `0..=max_interval`. Float seconds near
    /// `Duration::MAX` round beyond it, so the conversion is checked (an
    /// unvalidated configuration must not panic here either).
    fn capped(&self, secs: f64) -> Duration {
        let max = self.config.max_interval;
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
    }
}

/// SplitMix64: tiny, fast, good enough for jitter.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut b: Backoff) -> Vec<Duration> {
        std::iter::from_fn(|| b.next_delay()).take(10_000).collect()
    }

    #[test]
    fn same_seed_same_sequence() {
        let a = drain(Backoff::with_seed(BackoffConfig::meta(), 42));
        let b = drain(Backoff::with_seed(BackoffConfig::meta(), 42));
        let c = drain(Backoff::with_seed(BackoffConfig::meta(), 43));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn delays_stay_within_jittered_exponential_bounds() {
        for config in [BackoffConfig::meta(), BackoffConfig::read_records()] {
            for seed in 0..50 {
                let mut b = Backoff::with_seed(config, seed);
                let mut base = config.initial.as_secs_f64();
                while let Some(d) = b.next_delay() {
                    let d = d.as_secs_f64();
                    let lo = base * (1.0 - config.jitter) - 1e-9;
                    let hi = (base * (1.0 + config.jitter)).min(config.max_interval.as_secs_f64())
                        + 1e-9;
                    assert!(d >= lo && d <= hi, "{d} not in [{lo}, {hi}]");
                    base = (base * config.multiplier).min(config.max_interval.as_secs_f64());
                }
            }
        }
    }

    #[test]
    fn total_budget_is_respected_and_mostly_used() {
        for (config, budget) in [
            (BackoffConfig::meta(), Duration::from_secs(35)),
            (BackoffConfig::read_records(), Duration::from_secs(75)),
        ] {
            for seed in 0..50 {
                let delays = drain(Backoff::with_seed(config, seed));
                let total: Duration = delays.iter().sum();
                assert!(total <= budget, "{total:?} > {budget:?}");
                // it stops only when one more (≤ max_interval) delay would not fit
                assert!(
                    total + config.max_interval > budget,
                    "stopped early at {total:?}"
                );
                assert!(delays.iter().all(|d| *d <= config.max_interval));
            }
        }
    }

    #[test]
    fn first_delays_of_the_presets() {
        let mut meta = Backoff::with_seed(BackoffConfig::meta(), 7);
        let first = meta.next_delay().unwrap();
        assert!(
            first >= Duration::from_millis(67) && first <= Duration::from_millis(133),
            "{first:?}"
        );
        let mut rr = Backoff::with_seed(BackoffConfig::read_records(), 7);
        let first = rr.next_delay().unwrap();
        assert!(
            first >= Duration::from_millis(10) && first <= Duration::from_millis(22),
            "{first:?}"
        );
    }

    #[test]
    fn caller_supplied_elapsed_time_counts_against_the_budget() {
        let mut b = Backoff::with_seed(BackoffConfig::meta(), 1);
        assert!(b.next_delay_after(Duration::from_secs(34)).is_some());
        assert_eq!(b.next_delay_after(Duration::from_secs(35)), None);
    }

    #[test]
    fn reset_restarts_the_sequence() {
        let mut b = Backoff::with_seed(BackoffConfig::meta(), 9);
        while b.next_delay().is_some() {}
        assert!(b.attempts() > 10);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.total_delay(), Duration::ZERO);
        assert!(b.next_delay().unwrap() <= Duration::from_millis(133));
    }

    #[test]
    fn stream_poll_is_unbounded_and_capped() {
        let mut b = Backoff::with_seed(BackoffConfig::stream_poll(), 3);
        for _ in 0..100 {
            assert!(b.next_delay().unwrap() <= Duration::from_secs(5));
        }
        // after a few steps it sits at the cap (minus jitter)
        assert!(b.next_delay().unwrap() >= Duration::from_millis(3750));
    }

    #[test]
    fn unseeded_backoffs_differ() {
        let a = Backoff::new(BackoffConfig::meta()).next_delay();
        let b = Backoff::new(BackoffConfig::meta()).next_delay();
        // not a strict guarantee of randomness, but the counter makes seeds differ
        assert!(a.is_some() && b.is_some());
    }

    #[test]
    fn duration_max_intervals_never_panic_and_are_rejected_by_validation() {
        let huge = BackoffConfig {
            initial: Duration::from_secs(1),
            max_interval: Duration::MAX,
            multiplier: 1e300,
            jitter: 1.0,
            max_elapsed: None,
        };
        match huge.validate("meta_retry") {
            Err(TunnelError::InvalidOption { option, reason }) => {
                assert_eq!(option, "meta_retry");
                assert!(reason.contains("max_interval"), "{reason}");
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
        // used anyway (unvalidated), it saturates at max_interval instead of panicking
        let mut b = Backoff::with_seed(huge, 5);
        for _ in 0..200 {
            assert!(b.next_delay().is_some());
        }
        let initial_max = BackoffConfig {
            initial: Duration::MAX,
            ..huge
        };
        assert!(Backoff::with_seed(initial_max, 1).next_delay().is_some());
        let elapsed_max = BackoffConfig {
            max_elapsed: Some(Duration::MAX),
            ..BackoffConfig::meta()
        };
        assert!(elapsed_max.validate("read_records_retry").is_err());
        assert!(BackoffConfig::meta().validate("meta_retry").is_ok());
        assert!(
            BackoffConfig::stream_poll()
                .validate("poll_backoff")
                .is_ok()
        );
    }
}
