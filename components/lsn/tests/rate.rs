//! The tracker's query rate, counted on the server (issue 14): the standby logs every
//! statement of the tracker's session (`log_min_duration_statement = 0`, set for that
//! session only through the connection's `options`), and the test reads its log.
//!
//! With the extended query protocol the server logs each phase of a statement: one
//! `parse` line when a statement is prepared, then `bind` and `execute` for every run
//! (Bind, Execute and Sync travel in one message batch: one round trip).

#[path = "support/postgres.rs"]
mod postgres_support;

use std::time::{Duration, Instant};

use otp_threads::Runtime;
use otp_threads_lsn::{LsnTracker, TrackerConfig, Wait};
use postgres_support::*;

const FREQUENCY: Duration = Duration::from_millis(100);

/// A logged phase of one of the tracker's statements.
#[derive(Debug)]
struct Logged {
    /// Milliseconds since midnight (from the `%m` prefix).
    at_ms: u64,
    phase: &'static str,
}

/// Parses the `HH:MM:SS.mmm` of a `%m [%p] ` log prefix.
fn millis_of_day(line: &str) -> Option<u64> {
    let time = line.split(' ').nth(1)?;
    let (hms, ms) = time.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(((h * 60 + m) * 60 + s) * 1000 + ms.parse::<u64>().ok()?)
}

/// The phases the standby logged for backend `pid`.
fn logged_by(pid: i32) -> Vec<Logged> {
    let path = format!("{}/standby.log", required_env("OTP_THREADS_PG_DIR"));
    let log = std::fs::read_to_string(&path).expect("read the standby's log");
    let tag = format!(" [{pid}] ");
    log.lines()
        .filter(|line| line.contains(&tag) && line.contains("duration:"))
        .filter_map(|line| {
            let phase = ["parse", "bind", "execute"]
                .into_iter()
                .find(|phase| line.contains(&format!("  {phase} ")))?;
            Some(Logged {
                at_ms: millis_of_day(line)?,
                phase,
            })
        })
        .collect()
}

fn count(logged: &[Logged], phase: &str) -> usize {
    logged.iter().filter(|l| l.phase == phase).count()
}

#[test]
fn a_sequential_writer_drives_at_most_one_prepared_poll_per_interval_and_none_while_idle() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    let mut probe = standby_probe();
    ensure_table(&mut primary, &mut probe);
    let application = format!("otp-lsn-rate-{}", std::process::id());
    let conninfo = format!(
        "{} application_name={application} options='-c log_min_duration_statement=0'",
        standby_conninfo()
    );
    let runtime = Runtime::new();
    let tracker =
        LsnTracker::start(&runtime, TrackerConfig::new(conninfo).frequency(FREQUENCY)).unwrap();

    // One writer, one write after the other, each awaited: the seed's pattern that drove
    // 75 queries/s (372 in one second) at a 10/s setting.
    let started = Instant::now();
    for i in 0..30 {
        let lsn = write_on_primary(&mut primary, &unique_note(&format!("rate-{i}")));
        assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
    }
    let elapsed = started.elapsed();
    let pid: i32 = standby_client()
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .unwrap()
        .get(0);
    let queries = tracker.queries();
    let logged = poll_until(
        "the standby to log every poll",
        || logged_by(pid),
        |logged| count(logged, "execute") as u64 >= queries,
    );
    let executes: Vec<u64> = logged
        .iter()
        .filter(|l| l.phase == "execute")
        .map(|l| l.at_ms)
        .collect();
    assert_eq!(executes.len() as u64, queries, "{logged:?}");
    assert_eq!(count(&logged, "parse"), 1, "one statement, prepared once");
    assert_eq!(count(&logged, "bind"), executes.len());
    // The rate bound, on the server's clock (millisecond stamps): polls are at least the
    // interval apart, so at most elapsed / interval + 1 of them.
    for pair in executes.windows(2) {
        let gap = pair[1].saturating_sub(pair[0]);
        assert!(
            gap + 1 >= FREQUENCY.as_millis() as u64,
            "two polls {gap} ms apart: {executes:?}"
        );
    }
    let bound = elapsed.as_millis() as u64 / FREQUENCY.as_millis() as u64 + 1;
    assert!(
        queries <= bound,
        "{queries} polls in {elapsed:?}: more than {bound}"
    );

    // Nothing waits now: more WAL is replayed, the tracker sends nothing.
    poll_until(
        "the poller to go idle",
        || tracker.poller_status().unwrap(),
        |status| status.idle && status.pending_timers == 0,
    );
    let idle_from = count(&logged_by(pid), "execute");
    for i in 0..20 {
        write_on_primary(&mut primary, &unique_note(&format!("unawaited-{i}")));
    }
    let last = write_on_primary(&mut primary, &unique_note("unawaited-last"));
    poll_until(
        "the standby to replay the unawaited writes",
        || probe.last_replay_lsn().unwrap(),
        |replay| last.is_replayed_by_opt(*replay),
    );
    assert_eq!(count(&logged_by(pid), "execute"), idle_from);
    assert_eq!(tracker.queries(), queries);
    log::info!("{queries} polls in {elapsed:?} for 30 awaited writes");
    runtime.shutdown(PATIENCE).unwrap();
}
