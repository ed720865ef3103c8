//! Read-your-writes on PostgreSQL hot standbys by tracking WAL positions (LSNs); feature
//! `postgres`.
//!
//! This is the building material of an LSN tracker after fly_postgres's
//! `Fly.Postgres.LSN.Tracker` (Elixir): an application reads from a nearby standby but
//! writes on the primary. After a write it asks the primary for its WAL insert position
//! ([`current_wal_insert_lsn`]) and then blocks until the standby has replayed WAL up to that
//! position, so that its next read on the standby sees its own write. A single reader
//! polls the standby's replay position ([`ReplicaProbe::last_replay_lsn`]) and wakes every
//! caller whose position has been reached ([`Waiters::release_up_to`]).
//!
//! Differences from fly_postgres, by design:
//! - callers wait on their own one-shot channel instead of a mailbox message, and an
//!   abandoned (timed-out) wait can be removed from the index ([`Waiters::remove`]), so no
//!   stray wake-ups are delivered later;
//! - waiters are ordered by LSN, so a replay advance costs O(k log n) for the k released
//!   waiters instead of a scan of all of them;
//! - parse failures and database failures are one typed error, [`LsnError`];
//! - the probe reconnects by itself with capped exponential backoff.
//!
//! # Module map
//!
//! | module | contents |
//! |--------|----------|
//! | [`position`] | [`Lsn`]: parse/print PostgreSQL's `X/Y` text, ordering, [`Lsn::is_replayed_by`] |
//! | [`waiters`]  | [`Waiters`]: callers indexed by the LSN they wait for; [`WaiterId`], [`Released`] |
//! | [`probe`]    | [`ReplicaProbe`]/[`ProbeConfig`]: blocking `postgres` connection reading `pg_is_in_recovery()`, `pg_last_wal_replay_lsn()`, `pg_current_wal_insert_lsn()` |
//! | [`backoff`]  | [`Backoff`]: capped exponential reconnect delays |
//! | [`error`]    | [`LsnError`]: the component's error type |
//!
//! # Example
//!
//! ```no_run
//! use otp_threads::lsn::{ReplicaProbe, Waiters, current_wal_insert_lsn};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut primary = postgres::Client::connect("host=primary user=app", postgres::NoTls)?;
//! let mut standby = ReplicaProbe::connect_str("host=standby user=app")?;
//!
//! primary.execute("INSERT INTO notes(body) VALUES ('hi')", &[])?;
//! let wrote_at = current_wal_insert_lsn(&mut primary)?;
//!
//! let mut waiters = Waiters::new();
//! let (_id, ready) = waiters.insert(wrote_at);
//! // The tracker's reader thread does this in a loop:
//! if let Some(replay) = standby.last_replay_lsn()? {
//!     waiters.release_up_to(replay);
//! }
//! # let _ = ready;
//! # Ok(())
//! # }
//! ```

pub mod backoff;
pub mod error;
pub mod position;
pub mod probe;
pub mod waiters;

pub use backoff::Backoff;
pub use error::{LsnError, LsnParseIssue};
pub use position::Lsn;
pub use probe::{
    ProbeConfig, ReplicaProbe, current_wal_insert_lsn, is_in_recovery, last_wal_replay_lsn,
};
pub use waiters::{Released, WaiterId, Waiters};
