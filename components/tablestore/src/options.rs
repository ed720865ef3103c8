//! Checks shared by the configuration builders: every option is validated by a small
//! function here or next to its builder, and a bad value is a
//! [`TunnelError::InvalidOption`] naming the option.
//!
//! Durations are bounded by [`MAX_DURATION`] so that adding them to an `Instant`, to
//! one another, or converting them to seconds for the wire can never overflow.

use std::time::Duration;

use crate::error::TunnelError;

/// The longest duration any option accepts: one week. Anything longer is surely a
/// mistake, and keeping far below `Duration::MAX` keeps all deadline arithmetic exact.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// `value` must lie within `min..=MAX_DURATION`.
pub(crate) fn duration_within(
    option: &'static str,
    value: Duration,
    min: Duration,
) -> Result<(), TunnelError> {
    if value < min {
        return Err(TunnelError::invalid_option(
            option,
            format!("{value:?} is below the minimum of {min:?}"),
        ));
    }
    if value > MAX_DURATION {
        return Err(TunnelError::invalid_option(
            option,
            format!("{value:?} is above the maximum of {MAX_DURATION:?}"),
        ));
    }
    Ok(())
}

/// A positive duration of at most [`MAX_DURATION`].
pub(crate) fn positive_duration(option: &'static str, value: Duration) -> Result<(), TunnelError> {
    if value.is_zero() {
        return Err(TunnelError::invalid_option(option, "must be positive"));
    }
    duration_within(option, value, Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_a_week_and_duration_max_are_rejected_by_name() {
        for d in [MAX_DURATION + Duration::from_nanos(1), Duration::MAX] {
            match positive_duration("request_timeout", d) {
                Err(TunnelError::InvalidOption { option, .. }) => {
                    assert_eq!(option, "request_timeout")
                }
                other => panic!("expected InvalidOption, got {other:?}"),
            }
        }
        assert!(positive_duration("x", Duration::ZERO).is_err());
        assert!(positive_duration("x", MAX_DURATION).is_ok());
        assert!(duration_within("x", Duration::from_secs(4), Duration::from_secs(5)).is_err());
    }
}
