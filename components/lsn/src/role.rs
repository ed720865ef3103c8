//! The role of a tracked server ([`ReplicaRole`]), how the tracker learns the role it
//! expects ([`RoleSource`]), and what a wait reports when the two differ
//! ([`RoleChange`]).
//!
//! fly_postgres decides once whether "this" database is the primary (by region) and
//! never asks again; the first Rust tracker asked `pg_is_in_recovery()` once and trusted
//! the answer for ever. Both go wrong when the tracked standby is promoted while the
//! application still writes to the old primary: the promoted server reports "primary",
//! every wait is ready at once, and reads miss the writes. Here the expected role is
//! fixed (by configuration, or by the first answer of the server), the observed role is
//! re-checked on every poll, after every reconnect, and at least every
//! `role_check_interval` while waits arrive, and a difference is reported to each
//! waiter as a [`RoleChange`] instead of a silent "ready".

use std::fmt;

/// What a tracker knows about its server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicaRole {
    /// Not known yet (not polled, or not reachable since the last reconnect).
    Unknown,
    /// A primary (`pg_is_in_recovery()` false): nothing to replay, waits are ready.
    Primary,
    /// A standby replaying WAL.
    Standby,
    /// A standby whose replay position is NULL (it never replayed anything): as in
    /// fly_postgres, waits are ready at once.
    NotReplicating,
}

impl ReplicaRole {
    /// `true` for [`Standby`](Self::Standby) and [`NotReplicating`](Self::NotReplicating):
    /// the server is in recovery.
    pub fn is_standby(self) -> bool {
        matches!(self, ReplicaRole::Standby | ReplicaRole::NotReplicating)
    }

    /// `true` if `self` and `other` are both primaries or both standbys (a standby that
    /// starts or stops replicating has not changed role).
    pub fn same_role_as(self, other: ReplicaRole) -> bool {
        match (self, other) {
            (ReplicaRole::Primary, ReplicaRole::Primary) => true,
            (a, b) => a.is_standby() && b.is_standby(),
        }
    }

    pub(crate) fn from_u8(value: u8) -> ReplicaRole {
        match value {
            1 => ReplicaRole::Primary,
            2 => ReplicaRole::Standby,
            3 => ReplicaRole::NotReplicating,
            _ => ReplicaRole::Unknown,
        }
    }

    pub(crate) fn as_u8(self) -> u8 {
        match self {
            ReplicaRole::Unknown => 0,
            ReplicaRole::Primary => 1,
            ReplicaRole::Standby => 2,
            ReplicaRole::NotReplicating => 3,
        }
    }
}

impl fmt::Display for ReplicaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplicaRole::Unknown => "unknown",
            ReplicaRole::Primary => "primary",
            ReplicaRole::Standby => "standby",
            ReplicaRole::NotReplicating => "standby (not replicating)",
        })
    }
}

/// Where a tracker's expected role comes from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum RoleSource {
    /// The server's own answer (`pg_is_in_recovery()`): the first one becomes the
    /// expected role; later answers are checked against it. The default.
    #[default]
    Server,
    /// Configuration says the tracked database is the primary (fly_postgres: this
    /// node's region is the primary region). Every wait is ready at once and the server
    /// is never queried.
    ConfiguredPrimary,
    /// Configuration says the tracked database is a standby: a server that answers
    /// "primary" has changed role (promoted), and waits report it.
    ConfiguredStandby,
}

impl RoleSource {
    /// fly_postgres's rule: the tracked database is the primary iff this node's region
    /// is the primary region. Region names are compared exactly (validated non-empty by
    /// [`TrackerConfig`](crate::TrackerConfig)).
    pub fn by_region(my_region: &str, primary_region: &str) -> RoleSource {
        if my_region == primary_region {
            RoleSource::ConfiguredPrimary
        } else {
            RoleSource::ConfiguredStandby
        }
    }

    /// The role expected before the server has answered, if configured.
    pub(crate) fn configured(&self) -> ReplicaRole {
        match self {
            RoleSource::Server => ReplicaRole::Unknown,
            RoleSource::ConfiguredPrimary => ReplicaRole::Primary,
            RoleSource::ConfiguredStandby => ReplicaRole::Standby,
        }
    }
}

/// A server whose observed role differs from the expected one: what a wait reports
/// instead of "ready" (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoleChange {
    /// The role the tracker expects (configured, or first observed).
    pub expected: ReplicaRole,
    /// The role the server reports now.
    pub observed: ReplicaRole,
}

impl fmt::Display for RoleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the tracked server is a {} but a {} was expected",
            self.observed, self.expected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standbys_that_stop_replicating_keep_their_role() {
        assert!(ReplicaRole::Standby.same_role_as(ReplicaRole::NotReplicating));
        assert!(ReplicaRole::Primary.same_role_as(ReplicaRole::Primary));
        assert!(!ReplicaRole::Primary.same_role_as(ReplicaRole::Standby));
        assert!(!ReplicaRole::Unknown.same_role_as(ReplicaRole::Unknown));
        for role in [
            ReplicaRole::Unknown,
            ReplicaRole::Primary,
            ReplicaRole::Standby,
            ReplicaRole::NotReplicating,
        ] {
            assert_eq!(ReplicaRole::from_u8(role.as_u8()), role);
        }
    }

    #[test]
    fn region_decides_the_configured_role_as_in_fly_postgres() {
        assert_eq!(
            RoleSource::by_region("lax", "lax"),
            RoleSource::ConfiguredPrimary
        );
        assert_eq!(
            RoleSource::by_region("ams", "lax"),
            RoleSource::ConfiguredStandby
        );
        assert_eq!(
            RoleSource::ConfiguredPrimary.configured(),
            ReplicaRole::Primary
        );
        assert_eq!(RoleSource::Server.configured(), ReplicaRole::Unknown);
    }

    #[test]
    fn a_role_change_says_what_was_expected_and_what_was_seen() {
        let change = RoleChange {
            expected: ReplicaRole::Standby,
            observed: ReplicaRole::Primary,
        };
        assert_eq!(
            change.to_string(),
            "the tracked server is a primary but a standby was expected"
        );
    }
}
