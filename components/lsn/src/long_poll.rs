//! The long-poll function, after fly_postgres's `watch_for_lsn_change`: a function on
//! the replica that returns as soon as its replay position reaches a target, or after a
//! timeout, so that a tracker in [`PollMode::LongPoll`](crate::PollMode::LongPoll)
//! learns of replay within a few milliseconds with one query in flight.
//!
//! Differences from fly_postgres's function: it waits for a *target* (the lowest awaited
//! position) rather than for any change, so a busy standby does not return once per
//! replayed record; it returns the role with the position, so every long poll re-checks
//! it; a primary or a standby that is not replicating returns at once; the timeout is a
//! deadline on the server's clock, not a sum of naps.
//!
//! A standby is read-only: create the function on the primary, from where it
//! replicates, with [`install_await_replay_function`] or by running
//! [`AWAIT_REPLAY_FUNCTION`] (`CREATE OR REPLACE`, so repeating it is harmless). Drop it
//! with `DROP FUNCTION IF EXISTS otp_threads_lsn_await_replay(text, integer, integer)`.
//!
//! The function holds a snapshot on the standby for up to its timeout. With
//! `hot_standby_feedback = on` that never conflicts with replay; without it, vacuum
//! records that conflict with the snapshot can delay replay by up to the timeout (or
//! `max_standby_streaming_delay`), so keep the timeout short there.

use postgres::GenericClient;

use super::error::LsnError;
use super::position::Lsn;
use super::probe::wal_wait_position;

/// `CREATE OR REPLACE FUNCTION otp_threads_lsn_await_replay(target, timeout_ms, nap_ms)`:
/// loops until the server is not in recovery, its replay position is NULL or at least
/// `target`, or `timeout_ms` has passed, sleeping `nap_ms` between looks; returns
/// `(in_recovery, replay)` as the interval poll does.
pub const AWAIT_REPLAY_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION otp_threads_lsn_await_replay(
    target text, timeout_ms integer, nap_ms integer,
    OUT in_recovery boolean, OUT replay text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    wanted pg_lsn := CAST(target AS pg_lsn);
    deadline timestamptz := clock_timestamp() + timeout_ms * interval '1 millisecond';
    replayed pg_lsn;
BEGIN
    LOOP
        in_recovery := pg_is_in_recovery();
        replayed := pg_last_wal_replay_lsn();
        replay := CAST(replayed AS text);
        IF NOT in_recovery OR replayed IS NULL OR replayed >= wanted
           OR clock_timestamp() >= deadline THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(nap_ms / 1000.0);
    END LOOP;
END
$$
"#;

/// The long poll, as the tracker sends it (prepared once per connection).
pub(crate) const SQL_AWAIT_REPLAY: &str =
    "SELECT in_recovery, replay FROM otp_threads_lsn_await_replay($1, $2, $3)";

/// Creates (or replaces) the long-poll function on `primary` and returns the position to
/// wait for until a standby has it (e.g. with a tracker in interval mode, or
/// [`ReplicaProbe::last_replay_lsn`](crate::ReplicaProbe::last_replay_lsn)).
pub fn install_await_replay_function<C: GenericClient>(primary: &mut C) -> Result<Lsn, LsnError> {
    primary.batch_execute(AWAIT_REPLAY_FUNCTION)?;
    wal_wait_position(primary)
}
