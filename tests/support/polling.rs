//! Bounded polling, for state that offers no event to wait on (a replica's replay
//! position, a broker's committed offsets). Each service's support module wraps it
//! with its own patience.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Samples a value until `pred` holds or `patience` runs out (then fails the test);
/// returns the last value.
pub fn poll_until_within<T: std::fmt::Debug>(
    patience: Duration,
    interval: Duration,
    what: &str,
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
            started.elapsed() < patience,
            "timed out after {patience:?} waiting for {what}; last value {value:?}"
        );
        std::thread::sleep(interval);
    }
}
