//! Read-your-writes on PostgreSQL hot standbys by tracking WAL positions (LSNs), on the
//! otp-threads runtime.
//!
//! The Rust rebuild of fly_postgres's `Fly.Postgres.LSN.Tracker`: an application
//! reads from a nearby standby but writes on the primary. After a write it asks the
//! primary for its WAL insert position ([`current_wal_insert_lsn`]) and then waits until
//! the standby has replayed WAL up to that position ([`LsnTracker`]), so that its next
//! read on the standby sees its own write ([`write_and_wait`] does all three steps).
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
//! | [`tracker`]  | [`LsnTracker`]: the supervised tracker (table owner + poller under rest-for-one) and its waits |
//! | [`read_your_writes`] | [`write_and_wait`]: write on the primary, then wait on the tracker |
//! | [`backoff`]  | [`Backoff`]: capped exponential reconnect delays |
//! | [`error`]    | [`LsnError`]: the component's error type |
//!
//! # Example
//!
//! ```no_run
//! use otp_threads::Runtime;
//! use otp_threads_lsn::{LsnTracker, Replicated, TrackerConfig, write_and_wait};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new();
//! let tracker = LsnTracker::start(&runtime, TrackerConfig::new("host=standby user=app"))?;
//! let mut primary = postgres::Client::connect("host=primary user=app", postgres::NoTls)?;
//!
//! let written = write_and_wait(&mut primary, &tracker, None, |transaction| {
//!     transaction.execute("INSERT INTO notes(body) VALUES ('hi')", &[])
//! })?;
//! if let Replicated::Ready = written.replicated {
//!     // A read on the standby now sees the note.
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod backoff;
pub mod error;
pub mod long_poll;
pub mod position;
pub mod probe;
pub mod read_your_writes;
pub mod role;
pub mod tracker;
pub mod waiters;
pub mod wal_layout;

pub use backoff::Backoff;
pub use error::{LsnError, LsnParseIssue};
pub use long_poll::{AWAIT_REPLAY_FUNCTION, install_await_replay_function};
pub use position::Lsn;
pub use probe::{
    ProbeConfig, ReplicaProbe, current_wal_insert_lsn, is_in_recovery, last_wal_replay_lsn,
    wal_wait_position,
};
pub use read_your_writes::{Replicated, Written, write_and_wait};
pub use role::{ReplicaRole, RoleChange, RoleSource};
pub use tracker::{LsnTracker, Notification, PollMode, PollerStatus, TrackerConfig, Wait};
pub use waiters::{Release, Released, WaiterId, Waiters};
pub use wal_layout::WalLayout;
