//! Read-your-writes on PostgreSQL hot standbys by tracking WAL positions (LSNs), on the
//! otp-threads runtime.
//!
//! The Rust rebuild of fly_postgres's `Fly.Postgres.LSN.Tracker`: an application
//! reads from a nearby standby but writes on the primary. After a write it asks the
//! primary for the position the commit must be replayed to ([`wal_wait_position`]) and
//! then waits until the standby has replayed WAL up to that position ([`LsnTracker`]), so
//! that its next read on the standby sees its own write ([`write_and_wait`] does all
//! three steps).
//!
//! Differences from fly_postgres, by design:
//! - the awaited position is the commit's record end, not the raw insert position: a
//!   commit that ends on a WAL page boundary is not awaited past the next page header,
//!   where the standby's replay position does not go until more WAL arrives
//!   ([`WalLayout::record_end`]);
//! - the tracked server's role is re-checked (every poll, every reconnect, and after
//!   `role_check_interval` on a primary); a server whose role is not the expected one
//!   (a promoted standby) makes waits report [`Wait::RoleChanged`], never "ready". The
//!   expected role comes from the server or from configuration ([`RoleSource`], by
//!   region as fly_postgres decides);
//! - the query rate is bounded: in interval mode at most one poll per `frequency`, none
//!   while nothing waits, one prepared statement and one round trip per poll; in
//!   long-poll mode ([`PollMode::LongPoll`], fly_postgres's `watch_for_lsn_change`) one
//!   query in flight per tracker, released within milliseconds of replay;
//! - callers wait on their own one-shot channel instead of a mailbox message, and an
//!   abandoned (timed-out) wait removes itself from the index, so no stray wake-ups are
//!   delivered later; a stopped tracker ends its waits with [`Wait::Stopped`];
//! - waiters are ordered by LSN, so a replay advance costs O(k log n) for the k released
//!   waiters instead of a scan of all of them;
//! - parse failures, database failures and invalid options are one typed error,
//!   [`LsnError`] (an invalid option is [`LsnError::InvalidOption`] naming it);
//! - the probe reconnects by itself with capped exponential backoff.
//!
//! Cross-region writes ([`rpc_and_wait()`], fly_postgres's `rpc_and_wait`): an application
//! node near a replica calls a [`PrimaryWriter`] on a node near the primary over Erlang
//! distribution; the writer runs one of its registered operations in a transaction that
//! also records the caller's idempotency key, and answers with the commit's wait
//! position, which the caller then awaits on its local tracker. It is never retried
//! blindly: when the reply is lost, resending the same key (or [`recorded_write`]) tells
//! whether the write committed.
//!
//! # Module map
//!
//! | module | contents |
//! |--------|----------|
//! | [`position`] | [`Lsn`]: parse/print PostgreSQL's `X/Y` text, ordering, [`Lsn::is_replayed_by`] |
//! | [`wal_layout`] | [`WalLayout`]: page and segment sizes, [`WalLayout::record_end`] (the position a commit must wait for) |
//! | [`waiters`]  | [`Waiters`]: callers indexed by the LSN they wait for; [`WaiterId`], [`Release`], [`Released`] |
//! | [`probe`]    | [`ReplicaProbe`]/[`ProbeConfig`]: blocking `postgres` connection with prepared statements; [`wal_wait_position`], [`current_wal_insert_lsn`], [`last_wal_replay_lsn`], [`is_in_recovery`] |
//! | [`role`]     | [`ReplicaRole`], [`RoleSource`] (server or configuration), [`RoleChange`] |
//! | [`tracker`]  | [`LsnTracker`]: one supervised poller (interval or long poll) and its waits; [`TrackerConfig`], [`Wait`] |
//! | [`long_poll`] | [`AWAIT_REPLAY_FUNCTION`], [`install_await_replay_function`]: the function the long poll calls on the replica |
//! | [`read_your_writes`] | [`write_and_wait`]: write on the primary, then wait on the tracker |
//! | [`remote_write`] | [`WriteRequest`], [`WriteReply`], [`Param`]: the messages of a cross-region write and their terms |
//! | [`primary_writer`] | [`PrimaryWriter`]: the named worker near the primary; [`recorded_write`], [`LEDGER_TABLE`] |
//! | [`rpc_and_wait`](mod@rpc_and_wait) | [`rpc_and_wait()`]: call the writer, wait on the local tracker |
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
pub mod primary_writer;
pub mod probe;
pub mod read_your_writes;
pub mod remote_write;
pub mod role;
pub mod rpc_and_wait;
pub mod tracker;
pub mod waiters;
pub mod wal_layout;

pub use backoff::Backoff;
pub use error::{LsnError, LsnParseIssue};
pub use long_poll::{AWAIT_REPLAY_FUNCTION, install_await_replay_function};
pub use position::Lsn;
pub use primary_writer::{
    LEDGER_TABLE, PrimaryWriter, PrimaryWriterConfig, RecordedWrite, WriteOperation, recorded_write,
};
pub use probe::{
    ProbeConfig, ReplicaProbe, current_wal_insert_lsn, is_in_recovery, last_wal_replay_lsn,
    wal_wait_position,
};
pub use read_your_writes::{Replicated, Written, write_and_wait};
pub use remote_write::{Param, RejectReason, WriteReply, WriteRequest, WriterCall};
pub use role::{ReplicaRole, RoleChange, RoleSource};
pub use rpc_and_wait::{RemoteWritten, rpc_and_wait};
pub use tracker::{LsnTracker, Notification, PollMode, PollerStatus, TrackerConfig, Wait};
pub use waiters::{Release, Released, WaiterId, Waiters};
pub use wal_layout::WalLayout;
