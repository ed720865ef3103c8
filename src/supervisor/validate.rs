//! Checks of supervisor flags and child specs, one rule per function, as
//! `check_flags` and the `valid*` checks of `supervisor.erl`.

use std::collections::HashSet;
use std::time::Duration;

use super::error::SupervisorError;
use super::spec::{ChildKind, ChildSpec, Shutdown};

/// The restart period must be positive: a zero period makes the window meaningless.
pub(crate) fn check_period(period: Duration) -> Result<(), SupervisorError> {
    if period.is_zero() {
        return Err(SupervisorError::InvalidFlag {
            option: "period",
            reason: "must be greater than zero".into(),
        });
    }
    Ok(())
}

/// A child id must be non-empty.
pub(crate) fn check_id(id: &str) -> Result<(), SupervisorError> {
    if id.is_empty() {
        return Err(SupervisorError::InvalidChildSpec {
            id: String::new(),
            reason: "the id is empty".into(),
        });
    }
    Ok(())
}

/// A shutdown timeout must be positive (`BrutalKill` is the way to say "at once").
pub(crate) fn check_shutdown(id: &str, shutdown: Shutdown) -> Result<(), SupervisorError> {
    if shutdown == Shutdown::Timeout(Duration::ZERO) {
        return Err(SupervisorError::InvalidChildSpec {
            id: id.to_owned(),
            reason: "a shutdown timeout must be greater than zero (use BrutalKill)".into(),
        });
    }
    Ok(())
}

/// One child spec on its own. `Infinity` for a worker is allowed but, as OTP's
/// documentation warns, a worker that never stops then hangs its supervisor.
pub(crate) fn check_spec(spec: &ChildSpec) -> Result<(), SupervisorError> {
    check_id(&spec.id)?;
    check_shutdown(&spec.id, spec.shutdown)?;
    if spec.kind == ChildKind::Worker && spec.shutdown == Shutdown::Infinity {
        log::warn!(
            "child {}: a worker with infinity shutdown can hang its supervisor",
            spec.id
        );
    }
    Ok(())
}

/// The child specs of a supervisor: each valid, and no id twice.
pub(crate) fn check_specs<'a>(
    specs: impl IntoIterator<Item = &'a ChildSpec>,
) -> Result<(), SupervisorError> {
    let mut seen = HashSet::new();
    for spec in specs {
        check_spec(spec)?;
        if !seen.insert(spec.id.as_str()) {
            return Err(SupervisorError::DuplicateChildId {
                id: spec.id.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn spec(id: &str) -> ChildSpec {
        ChildSpec::new(id, |_| Err(Error::NoProc))
    }

    #[test]
    fn duplicate_ids_are_rejected_naming_the_child() {
        let specs = [spec("a"), spec("b"), spec("a")];
        assert_eq!(
            check_specs(&specs),
            Err(SupervisorError::DuplicateChildId { id: "a".into() })
        );
    }

    #[test]
    fn a_zero_shutdown_timeout_is_rejected_naming_the_child() {
        let specs = [
            spec("a"),
            spec("b").shutdown(Shutdown::Timeout(Duration::ZERO)),
        ];
        match check_specs(&specs) {
            Err(SupervisorError::InvalidChildSpec { id, .. }) => assert_eq!(id, "b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_id_is_rejected() {
        assert!(matches!(
            check_specs(&[spec("")]),
            Err(SupervisorError::InvalidChildSpec { .. })
        ));
    }

    #[test]
    fn a_zero_period_is_rejected() {
        assert!(matches!(
            check_period(Duration::ZERO),
            Err(SupervisorError::InvalidFlag {
                option: "period",
                ..
            })
        ));
        assert!(check_period(Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn valid_specs_pass() {
        let specs = [
            spec("a").shutdown(Shutdown::BrutalKill),
            spec("b").shutdown(Shutdown::Infinity),
            spec("c").shutdown(Shutdown::Timeout(Duration::from_millis(1))),
        ];
        assert_eq!(check_specs(&specs), Ok(()));
    }
}
