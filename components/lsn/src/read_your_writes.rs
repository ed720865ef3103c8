//! Read-your-writes: write on the primary, then wait until the replica has it.

use std::time::Duration;

use super::error::LsnError;
use super::position::Lsn;
use super::probe::wal_wait_position;
use super::role::RoleChange;
use super::tracker::{LsnTracker, Wait};

/// Whether a committed write was seen replayed on the replica.
#[derive(Debug)]
pub enum Replicated {
    /// The replica has replayed the write: reads there see it.
    Ready,
    /// The replica had not replayed the write within the timeout.
    Timeout,
    /// The tracked server's role is not the expected one (e.g. the standby was
    /// promoted): the write may never be replayed there.
    RoleChanged(RoleChange),
    /// The tracker stopped before the write was seen replayed.
    Stopped,
    /// Nothing was awaited, and why: the write's WAL position could not be read
    /// (fly_postgres issue #29).
    NotAwaited(LsnError),
}

/// A committed write and what became of its replication.
#[derive(Debug)]
pub struct Written<T> {
    /// What the write returned.
    pub value: T,
    /// The position awaited ([`wal_wait_position`] after the commit), if it could be read.
    pub lsn: Option<Lsn>,
    /// Whether the replica caught up.
    pub replicated: Replicated,
}

/// Runs `write` in a transaction on `primary`, commits it, reads the position the commit
/// must be replayed to ([`wal_wait_position`]: the insert position, mapped back past a
/// page header when the commit ended on a page boundary), and waits until `tracker`'s replica has
/// replayed it (up to `timeout`, or the tracker's default).
///
/// A write that fails (or leaves its transaction failed, so the commit fails) is
/// rolled back and returned as [`LsnError::WriteFailed`]; nothing is awaited. A committed
/// write is never reported as an error: if its WAL position cannot be read, the result
/// says so in [`Replicated::NotAwaited`] and keeps the write's value.
pub fn write_and_wait<T>(
    primary: &mut postgres::Client,
    tracker: &LsnTracker,
    timeout: Option<Duration>,
    write: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
) -> Result<Written<T>, LsnError> {
    let mut transaction = primary.transaction().map_err(LsnError::WriteFailed)?;
    // Dropping the transaction on an error rolls it back.
    let value = write(&mut transaction).map_err(LsnError::WriteFailed)?;
    transaction.commit().map_err(LsnError::WriteFailed)?;
    let lsn = match wal_wait_position(primary) {
        Ok(lsn) => lsn,
        Err(error) => {
            let error = match error {
                LsnError::Db(source) => LsnError::WalLookupFailed(source),
                other => other,
            };
            log::warn!("read-your-writes: not waiting: {error}");
            return Ok(Written {
                value,
                lsn: None,
                replicated: Replicated::NotAwaited(error),
            });
        }
    };
    let replicated = match tracker.request_and_await(lsn, timeout) {
        Wait::Ready => Replicated::Ready,
        Wait::Timeout => Replicated::Timeout,
        Wait::RoleChanged(change) => Replicated::RoleChanged(change),
        Wait::Stopped => Replicated::Stopped,
    };
    Ok(Written {
        value,
        lsn: Some(lsn),
        replicated,
    })
}
