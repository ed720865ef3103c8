//! The LSN probe against a real PostgreSQL 15 primary and hot standby.
//!
//! Needs the services of `scripts/services/postgres.sh` and their environment:
//!
//! ```sh
//! bash scripts/services/postgres.sh start /tmp/pgsvc
//! set -a && . /tmp/pgsvc/env && set +a
//! cargo test -p otp-threads-lsn --test probe
//! bash scripts/services/postgres.sh stop /tmp/pgsvc
//! ```
//!
//! Without `OTP_THREADS_PG_PRIMARY`/`OTP_THREADS_PG_STANDBY` every test fails (on purpose:
//! a silently skipped database test proves nothing). The tests share one standby and some
//! pause or restart it, so they run one at a time (see [`serial`]).

#[path = "support/postgres.rs"]
mod postgres_support;

use std::time::{Duration, Instant};

use otp_threads_lsn::{
    Lsn, LsnError, ProbeConfig, Release, ReplicaProbe, Waiters, current_wal_insert_lsn,
};
use postgres::{Client, NoTls};
use postgres_support::*;

#[test]
fn primary_is_not_in_recovery() {
    let _serial = serial();
    init_logging();
    let mut probe = ReplicaProbe::connect_str(&primary_conninfo()).expect("probe the primary");
    assert!(
        !probe.is_in_recovery().unwrap(),
        "the primary is not a standby"
    );
    // A primary replays no WAL: NULL, i.e. nothing to wait for.
    assert_eq!(probe.last_replay_lsn().unwrap(), None);
    let a = probe.current_wal_insert_lsn().unwrap();
    assert!(a > Lsn::ZERO, "{a}");
    // Also inside a transaction of the caller's own, the way a writer would use it.
    let mut client = primary_client();
    let mut tx = client.transaction().unwrap();
    let b = current_wal_insert_lsn(&mut tx).unwrap();
    tx.commit().unwrap();
    assert!(b >= a, "{b} >= {a}");
}

#[test]
fn standby_is_in_recovery() {
    let _serial = serial();
    init_logging();
    let mut probe = standby_probe();
    assert!(
        probe.is_in_recovery().unwrap(),
        "the standby is in recovery"
    );
    let replay = probe.last_replay_lsn().unwrap();
    assert!(replay.is_some_and(|r| r > Lsn::ZERO), "{replay:?}");
    // The insert position does not exist during recovery: a database error, and the
    // connection stays usable.
    let e = probe.current_wal_insert_lsn().unwrap_err();
    assert!(matches!(e, LsnError::Db(_)) && !e.is_connection(), "{e:?}");
    assert!(probe.is_connected());
    assert!(probe.is_in_recovery().unwrap());
    assert_eq!(probe.reconnects(), 0);
}

#[test]
fn write_is_eventually_replayed_on_the_standby() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    let mut probe = standby_probe();
    let mut standby = standby_client();
    ensure_table(&mut primary, &mut probe);

    let note = unique_note("replayed");
    let target = write_on_primary(&mut primary, &note);

    // Drive the waiter index the way the tracker's reader does.
    let mut waiters = Waiters::new();
    let (id, ready) = waiters.insert(target);
    let (replay, _) = poll_until(
        &format!("replay to reach {target}"),
        || {
            let replay = probe.last_replay_lsn().unwrap();
            if let Some(r) = replay {
                waiters.release_up_to(r);
            }
            (replay, waiters.contains(id))
        },
        |(_, still_waiting)| !still_waiting,
    );
    let Ok(Release::Replayed(released_at)) = ready.try_recv() else {
        panic!("the waiter was notified with the replay position");
    };
    assert_eq!(Some(released_at), replay);
    assert!(
        target.is_replayed_by(released_at),
        "{target} <= {released_at}"
    );
    // Read-your-writes: the row is visible on the standby now.
    assert!(
        row_visible(&mut standby, &note),
        "row {note:?} on the standby"
    );
}

/// Resumes WAL replay on the standby when dropped, whatever happens in the test.
struct ResumeOnDrop;

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        match Client::connect(&standby_conninfo(), NoTls) {
            Ok(mut c) => {
                if let Err(e) = c.batch_execute("SELECT pg_wal_replay_resume()") {
                    eprintln!("could not resume replay on the standby: {e}");
                }
            }
            Err(e) => eprintln!("could not connect to resume replay on the standby: {e}"),
        }
    }
}

#[test]
fn paused_replay_holds_writes_back_until_resumed() {
    let _serial = serial();
    init_logging();
    let mut primary = primary_client();
    let mut probe = standby_probe();
    let mut control = standby_client();
    ensure_table(&mut primary, &mut probe);

    let _resume = ResumeOnDrop;
    control
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    poll_until(
        "replay to be paused",
        || {
            control
                .query_one("SELECT pg_get_wal_replay_pause_state()", &[])
                .unwrap()
                .get::<_, String>(0)
        },
        |state| state == "paused",
    );
    let before = probe.last_replay_lsn().unwrap().expect("replay position");

    let note = unique_note("paused");
    let target = write_on_primary(&mut primary, &note);
    assert!(target > before, "{target} > {before}");

    // The standby receives the WAL (streaming continues) ...
    poll_until(
        &format!("the standby to receive {target}"),
        || {
            let text: Option<String> = control
                .query_one("SELECT CAST(pg_last_wal_receive_lsn() AS TEXT)", &[])
                .unwrap()
                .get(0);
            text.map(|t| t.parse::<Lsn>().unwrap())
        },
        |received| received.is_some_and(|r| target.is_replayed_by(r)),
    );
    // ... but does not replay it while paused: watch for a while that it stays put.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(500) {
        let replay = probe.last_replay_lsn().unwrap().expect("replay position");
        assert_eq!(replay, before, "replay must not advance while paused");
        assert!(!target.is_replayed_by(replay));
        std::thread::sleep(POLL);
    }
    assert!(!row_visible(&mut control, &note), "row hidden while paused");

    control
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    let replay = poll_until(
        &format!("replay to reach {target} after resume"),
        || probe.last_replay_lsn().unwrap(),
        |r| r.is_some_and(|r| target.is_replayed_by(r)),
    );
    assert!(replay.is_some());
    assert!(row_visible(&mut control, &note), "row visible after resume");
}

#[test]
fn probe_reconnects_after_its_session_is_terminated() {
    let _serial = serial();
    init_logging();
    let mut probe = standby_probe();
    let pid: i32 = probe
        .with_client(|c| Ok(c.query_one("SELECT pg_backend_pid()", &[])?.get(0)))
        .unwrap();
    let mut admin = standby_client();
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed);
    // The next query notices the dead session, reconnects once and succeeds.
    assert!(probe.is_in_recovery().unwrap());
    assert_eq!(probe.reconnects(), 1);
    let new_pid: i32 = probe
        .with_client(|c| Ok(c.query_one("SELECT pg_backend_pid()", &[])?.get(0)))
        .unwrap();
    assert_ne!(new_pid, pid);
}

#[test]
fn probe_reconnects_after_the_standby_restarts() {
    let _serial = serial();
    init_logging();
    let mut probe = standby_probe();
    let before = probe.last_replay_lsn().unwrap().expect("replay position");

    service("restart-standby");
    assert!(probe.is_in_recovery().unwrap(), "in recovery after restart");
    assert_eq!(probe.reconnects(), 1);
    let after = probe.last_replay_lsn().unwrap().expect("replay position");
    assert!(after >= before, "{after} >= {before}");
}

#[test]
fn probe_backs_off_while_the_standby_is_down() {
    let _serial = serial();
    init_logging();
    let config = ProbeConfig::new(&standby_conninfo())
        .unwrap()
        .backoff(Duration::from_millis(20), Duration::from_millis(400))
        .reconnect_timeout(Some(PATIENCE));
    let mut probe = ReplicaProbe::connect(config).unwrap();
    assert!(probe.is_in_recovery().unwrap());

    service("stop-standby");
    // Bring the standby back from another thread while the probe is retrying.
    let restarter = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(700));
        service("start");
    });
    let started = Instant::now();
    let result = probe.last_replay_lsn();
    let waited = started.elapsed();
    restarter.join().expect("restart the standby");
    let replay = result.expect("the probe reconnects once the standby is back");
    assert!(replay.is_some());
    assert_eq!(probe.reconnects(), 1);
    assert!(
        waited >= Duration::from_millis(500),
        "the probe waited for the standby ({waited:?})"
    );
    assert!(probe.is_in_recovery().unwrap());
}
