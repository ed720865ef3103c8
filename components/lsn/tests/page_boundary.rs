//! A commit that ends exactly on an 8 KiB WAL page boundary, on a real primary and
//! standby (issue 14): the primary's insert position is then 24 bytes past the boundary
//! (past the next page's header) while the standby reports the boundary until more WAL
//! arrives. The wait must be for the boundary, and return Ready.
//!
//! The commit is placed on the boundary by measuring the WAL size of the write's
//! transaction and padding the page before it with a non-transactional logical message
//! (`pg_logical_emit_message`) of a computed size. Background WAL (checkpoints,
//! standby snapshots, autovacuum) can land in between; then the attempt is repeated.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::time::Duration;

use otp_threads::Runtime;
use otp_threads_lsn::{
    Lsn, LsnTracker, Replicated, TrackerConfig, WalLayout, current_wal_insert_lsn, write_and_wait,
};
use postgres::Client;
use postgres_support::*;

const PAGE: u64 = 8192;
/// Attempts before the test gives up on placing a commit on a boundary.
const ATTEMPTS: usize = 400;
/// A pad smaller than this is not placed exactly (see `pad_record_size`): go to the next
/// page first.
const MIN_PAD: u64 = 512;
const NOTE: &str = "a note of a fixed length, so every write has the same WAL size";

fn insert_position(primary: &mut Client) -> u64 {
    current_wal_insert_lsn(primary).unwrap().as_u64()
}

/// The write under test: one row in a table without a sequence (a sequence logs WAL
/// every 32 values, which would change the size), committed.
fn write(transaction: &mut postgres::Transaction<'_>) -> Result<u64, postgres::Error> {
    transaction.execute(
        "INSERT INTO otp_threads_lsn_boundary (note) VALUES ($1)",
        &[&NOTE],
    )
}

/// Emits a non-transactional logical message of `chars` bytes: one WAL record, written
/// at once, outside any transaction.
fn pad(primary: &mut Client, chars: u64) {
    let chars = i32::try_from(chars).unwrap();
    primary
        .execute(
            "SELECT pg_logical_emit_message(false, 'otp-threads-pad', repeat('x', $1))",
            &[&chars],
        )
        .unwrap();
}

/// WAL bytes taken by `measured` when nothing else wrote in between and no page
/// boundary was crossed; `None` otherwise.
fn wal_size_of(primary: &mut Client, measured: impl FnOnce(&mut Client)) -> Option<u64> {
    let before = insert_position(primary);
    measured(primary);
    let after = insert_position(primary);
    let same_page = before / PAGE == (after - 1) / PAGE && after % PAGE > 40;
    same_page.then_some(after - before)
}

/// The same size measured twice in a row: nothing interfered.
fn stable_size(primary: &mut Client, mut measured: impl FnMut(&mut Client)) -> u64 {
    for _ in 0..ATTEMPTS {
        let first = wal_size_of(primary, &mut measured);
        let second = wal_size_of(primary, &mut measured);
        if let (Some(a), Some(b)) = (first, second)
            && a == b
        {
            return a;
        }
    }
    panic!("could not measure a stable WAL size in {ATTEMPTS} attempts");
}

#[test]
fn a_commit_ending_on_a_page_boundary_is_awaited_at_the_boundary_and_is_ready() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    primary
        .batch_execute("CREATE TABLE IF NOT EXISTS otp_threads_lsn_boundary (note TEXT NOT NULL)")
        .unwrap();
    let mut probe = standby_probe();
    ensure_table(&mut primary, &mut probe);
    let created = otp_threads_lsn::wal_wait_position(&mut primary).unwrap();
    poll_until(
        "the boundary table to reach the standby",
        || probe.last_replay_lsn().unwrap(),
        |replay| created.is_replayed_by_opt(*replay),
    );
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(
        &runtime,
        TrackerConfig::new(standby_conninfo()).frequency(Duration::from_millis(20)),
    )
    .unwrap();

    // A 300-byte message takes `pad_300` WAL bytes (aligned); n bytes take
    // pad_300 + (n - 300) for every n >= 256 whose difference is a multiple of 8.
    let pad_300 = stable_size(&mut primary, |c| pad(c, 300));
    let mut placed = None;
    for _ in 0..ATTEMPTS {
        let write_size = stable_size(&mut primary, |c| {
            let mut transaction = c.transaction().unwrap();
            write(&mut transaction).unwrap();
            transaction.commit().unwrap();
        });
        let position = insert_position(&mut primary);
        let boundary = (position / PAGE + 1) * PAGE;
        let room = boundary - position;
        if room < write_size + MIN_PAD {
            // Too close: move into the next page and measure again.
            pad(&mut primary, room + 300);
            continue;
        }
        let pad_size = room - write_size;
        pad(&mut primary, pad_size - pad_300 + 300);
        if insert_position(&mut primary) != boundary - write_size {
            continue; // something else wrote WAL in between
        }
        // Generous, but shorter than the 15 s after which the primary logs a standby
        // snapshot, which would release a wait for the raw insert position too.
        let written =
            write_and_wait(&mut primary, &tracker, Some(Duration::from_secs(10)), write).unwrap();
        // The commit ended on the boundary iff the position read after it is the
        // boundary (mapped back) or just past the next page's header (raw).
        if written.lsn != Some(Lsn(boundary)) && written.lsn != Some(Lsn(boundary + 24)) {
            continue;
        }
        placed = Some((boundary, written));
        break;
    }
    let (boundary, written) = placed
        .unwrap_or_else(|| panic!("no commit ended on a page boundary in {ATTEMPTS} attempts"));
    assert_eq!(
        written.lsn,
        Some(Lsn(boundary)),
        "the wait is for the boundary, not past the next page header"
    );
    assert!(
        matches!(written.replicated, Replicated::Ready),
        "the wait for a commit ending at {} returned {:?}",
        Lsn(boundary),
        written.replicated
    );
    let raw = Lsn(boundary + 24);
    assert_eq!(WalLayout::DEFAULT.record_end(raw), Lsn(boundary));
    // The standby reports the boundary (or more, if WAL came after ours): the row is there.
    let replay = probe.last_replay_lsn().unwrap().unwrap();
    assert!(replay >= Lsn(boundary), "{replay} >= {}", Lsn(boundary));
    let visible: i64 = standby_client()
        .query_one(
            "SELECT count(*) FROM otp_threads_lsn_boundary WHERE note = $1",
            &[&NOTE],
        )
        .unwrap()
        .get(0);
    assert!(visible > 0);
    if replay == Lsn(boundary) {
        // No WAL after ours yet: the raw insert position is not reached, which is why a
        // wait for it would time out.
        assert!(!raw.is_replayed_by(replay));
    }
    log::info!("commit ended on the page boundary {}", Lsn(boundary));
    runtime.shutdown(PATIENCE).unwrap();
}
