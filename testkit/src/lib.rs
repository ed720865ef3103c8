//! Test support shared by the otp-threads crates.
//!
//! Tests wait on events with generous bounded timeouts, never on fixed sleeps. Where a
//! state offers no event to wait on (a replica's replay position, a broker's committed
//! offsets, a server's counters), [`poll_until`] samples it until a predicate holds or
//! the patience runs out, and then fails the test with what it last saw. It is the one
//! polling loop of the workspace; [`wait_for`] and [`eventually`] are its two common
//! shapes.
//!
//! Tests that need a real service read its settings with [`required_env`]: a missing
//! service fails the test with the name of the script that starts it, never skips it.
//!
//! Tests that check what a component logs install the one capturing logger,
//! [`log_capture::install`], and wait for its lines.
//!
//! ```
//! use std::time::Duration;
//! use otp_threads_testkit::{Patience, poll_until};
//!
//! let mut n = 0;
//! let seen = poll_until("n to reach 3", Patience::default(), || { n += 1; n }, |n| *n >= 3);
//! assert_eq!(seen, 3);
//! ```
#![forbid(unsafe_code)]

pub mod fuzz;
pub mod log_capture;
pub mod raw_http;

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Bound on every wait for an event: generous, since CI machines are slow and noisy.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long a poll may take in all, and how long it sleeps between samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patience {
    /// The whole bound; the test fails when it runs out.
    pub limit: Duration,
    /// The pause between two samples.
    pub interval: Duration,
}

impl Patience {
    /// A bound of `limit`, sampling every `interval`.
    pub const fn new(limit: Duration, interval: Duration) -> Patience {
        Patience { limit, interval }
    }
}

impl Default for Patience {
    /// [`WAIT`], sampling every 5 ms.
    fn default() -> Patience {
        Patience::new(WAIT, Duration::from_millis(5))
    }
}

/// Samples a value until `pred` holds (returning that value), or fails the test once
/// `patience.limit` has run out, naming `what` and the last value seen.
pub fn poll_until<T: Debug>(
    what: &str,
    patience: Patience,
    mut sample: impl FnMut() -> T,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    let started = Instant::now();
    loop {
        let value = sample();
        if pred(&value) {
            return value;
        }
        assert!(
            started.elapsed() < patience.limit,
            "timed out after {:?} waiting for {what}; last value {value:?}",
            patience.limit
        );
        std::thread::sleep(patience.interval);
    }
}

/// Calls `probe` until it returns `Some`, and returns what it held; fails the test
/// naming `what` once `patience.limit` has run out.
pub fn wait_for<T>(what: &str, patience: Patience, mut probe: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    poll_until(
        what,
        patience,
        || {
            found = probe();
            found.is_some()
        },
        |ready| *ready,
    );
    found.expect("the poll ended on a sample that held a value")
}

/// Waits until `condition` holds; fails the test naming `what` after [`WAIT`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    poll_until(what, Patience::default(), &mut condition, |held| *held);
}

/// The number of threads of this OS process, from `/proc/self/task`: tests compare it
/// before and after a runtime's life to prove that every thread was joined.
pub fn os_thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task is readable")
        .count()
}

/// Waits until this OS process has `expected` threads, and fails the test naming
/// `what` (with the count last seen) after [`WAIT`].
///
/// For the count after a join: `pthread_join` returns when the thread has cleared its
/// thread id on its way out, a moment before the kernel drops it from
/// `/proc/self/task`, so a count read at once may still include it on a loaded machine.
pub fn settles_at_thread_count(expected: usize, what: &str) {
    poll_until(what, Patience::default(), os_thread_count, |count| {
        *count == expected
    });
}

/// The value of the environment variable `name`, which `script` sets when it starts
/// the service a test needs. A missing variable fails the test with the command to
/// run: a test is never skipped because its service is absent.
pub fn required_env(name: &str, script: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: this test needs a service that `{script}` starts \
             (run the whole suite with `bash scripts/test.sh`, or start the service with \
             `bash {script} start DIR && set -a && . DIR/env && set +a`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_returns_the_first_value_found() {
        let mut calls = 0;
        let got = wait_for("the third call", Patience::default(), || {
            calls += 1;
            (calls == 3).then_some(calls * 10)
        });
        assert_eq!(got, 30);
    }

    #[test]
    #[should_panic(expected = "timed out after")]
    fn poll_until_fails_the_test_when_patience_runs_out() {
        let patience = Patience::new(Duration::from_millis(20), Duration::from_millis(1));
        poll_until("never", patience, || 0, |_| false);
    }

    #[test]
    #[should_panic(expected = "scripts/services/none.sh")]
    fn required_env_names_the_script_that_starts_the_service() {
        required_env(
            "OTP_THREADS_TESTKIT_SURELY_UNSET",
            "scripts/services/none.sh",
        );
    }
}
