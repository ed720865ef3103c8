//! The tracked server's role against a real primary and hot standby (issue 14): a
//! promoted standby is not trusted as "nothing to wait for", a primary is re-checked,
//! and the role can come from configuration, as fly_postgres decides by region.
//!
//! Every test installs the log capture (not `env_logger`): one logger per binary, and
//! the promotion test checks its line.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::time::Duration;

use otp_threads::Runtime;
use otp_threads_lsn::{
    LsnTracker, ProbeConfig, ReplicaRole, Replicated, RoleChange, TrackerConfig, Wait,
    write_and_wait,
};
use otp_threads_testkit::log_capture;
use postgres_support::*;

fn config(conninfo: String) -> TrackerConfig {
    TrackerConfig::new(conninfo)
        .frequency(Duration::from_millis(20))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
}

/// Rebuilds the standby from the primary on drop, so that a failing test cannot leave
/// the other tests without a standby.
struct RebuildStandby {
    done: bool,
}

impl RebuildStandby {
    fn now(&mut self) {
        service("rebuild-standby");
        self.done = true;
    }
}

impl Drop for RebuildStandby {
    fn drop(&mut self) {
        if !self.done {
            service("rebuild-standby");
        }
    }
}

const PROMOTED: RoleChange = RoleChange {
    expected: ReplicaRole::Standby,
    observed: ReplicaRole::Primary,
};

#[test]
fn promoting_the_tracked_standby_makes_waits_report_the_role_change_instead_of_ready() {
    let _serial = serial();
    let logs = log_capture::install();
    // The tracker names its server `host:port`; no other test of this binary sees the
    // standby change role.
    let standby = ProbeConfig::new(&standby_conninfo()).unwrap().target();
    let role_change_line = format!("LSN tracker: {standby} changed role");
    let mut primary = primary_client();
    ensure_table(&mut primary, &mut standby_probe());
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(
        &runtime,
        config(standby_conninfo()).role_check_interval(Duration::from_millis(50)),
    )
    .unwrap();
    let warm = write_on_primary(&mut primary, &unique_note("before-promotion"));
    assert_eq!(tracker.request_and_await(warm, Some(PATIENCE)), Wait::Ready);
    assert_eq!(tracker.expected_role(), ReplicaRole::Standby);

    let mut rebuild = RebuildStandby { done: false };
    let promoted: bool = standby_client()
        .query_one("SELECT pg_promote(true, 60)", &[])
        .unwrap()
        .get(0);
    assert!(promoted);
    // The application still writes to the old primary: none of these rows exists on the
    // promoted server, and no wait may say "ready".
    for i in 0..40 {
        let note = unique_note(&format!("after-promotion-{i}"));
        let lsn = write_on_primary(&mut primary, &note);
        assert_eq!(
            tracker.request_and_await(lsn, Some(PATIENCE)),
            Wait::RoleChanged(PROMOTED),
            "write {i}"
        );
        assert!(!row_visible(&mut standby_client(), &note));
    }
    assert_eq!(tracker.role(), ReplicaRole::Primary);
    assert_eq!(tracker.role_changes(), 1, "counted once");
    // A wait may see the new role before the poller has logged it: wait for the line.
    let line = logs.wait_for_line(log::Level::Warn, &[&role_change_line]);
    assert!(
        line.contains("is a primary but a standby was expected")
            && line.contains("waits report the change instead of ready"),
        "{line}"
    );
    let logged = logs.lines_at(log::Level::Warn, &[&role_change_line]);
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");

    // Restore the pair: the tracker reconnects, re-checks the role and waits again.
    rebuild.now();
    let note = unique_note("after-rebuild");
    let lsn = write_on_primary(&mut primary, &note);
    poll_until(
        "a wait to be ready again on the rebuilt standby",
        || tracker.request_and_await(lsn, Some(PATIENCE)),
        |wait| *wait == Wait::Ready,
    );
    assert!(row_visible(&mut standby_client(), &note));
    assert_eq!(tracker.role(), ReplicaRole::Standby);
    assert_eq!(tracker.role_changes(), 1);
    assert_eq!(
        logs.lines_at(log::Level::Warn, &[&role_change_line]),
        [line],
        "still logged once"
    );
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_primary_is_asked_again_once_the_role_check_interval_has_passed() {
    let _serial = serial();
    log_capture::install();
    // The test table may not exist yet: this test can run first on a fresh cluster.
    let mut primary = primary_client();
    ensure_table(&mut primary, &mut standby_probe());
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(
        &runtime,
        config(primary_conninfo()).role_check_interval(Duration::from_millis(50)),
    )
    .unwrap();
    let lsn = write_on_primary(&mut primary, &unique_note("primary"));
    assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
    assert_eq!(tracker.queries(), 1);
    assert_eq!(tracker.expected_role(), ReplicaRole::Primary);
    // Waits keep arriving: the primary's answer is not trusted for ever.
    poll_until(
        "a wait to make the tracker ask the primary again",
        || {
            assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
            tracker.queries()
        },
        |queries| *queries >= 2,
    );
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_tracker_configured_as_primary_by_region_is_ready_without_any_query() {
    let _serial = serial();
    log_capture::install();
    let runtime = Runtime::new();
    // fly_postgres: MY_REGION == PRIMARY_REGION means this node's database is the
    // primary; even pointed at a standby the tracker does not ask.
    let tracker = LsnTracker::start(
        &runtime,
        config(standby_conninfo()).primary_by_region("lax", "lax"),
    )
    .unwrap();
    assert_eq!(tracker.expected_role(), ReplicaRole::Primary);
    for lsn in [otp_threads_lsn::Lsn(1), otp_threads_lsn::Lsn::MAX] {
        assert_eq!(tracker.request_and_await(lsn, Some(PATIENCE)), Wait::Ready);
    }
    assert_eq!(tracker.queries(), 0);
    assert_eq!(tracker.role(), ReplicaRole::Unknown);
    runtime.shutdown(PATIENCE).unwrap();
}

#[test]
fn a_tracker_configured_as_standby_reports_a_primary_as_a_role_change() {
    let _serial = serial();
    log_capture::install();
    ensure_table(&mut primary_client(), &mut standby_probe());
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(
        &runtime,
        config(primary_conninfo()).primary_by_region("ams", "lax"),
    )
    .unwrap();
    assert_eq!(tracker.expected_role(), ReplicaRole::Standby);
    let lsn = write_on_primary(&mut primary_client(), &unique_note("configured"));
    assert_eq!(
        tracker.request_and_await(lsn, Some(PATIENCE)),
        Wait::RoleChanged(PROMOTED)
    );
    assert_eq!(tracker.role_changes(), 1);
    // Through read-your-writes too: the write committed, the caller learns why it was
    // not awaited to completion.
    let mut primary = primary_client();
    let written = write_and_wait(&mut primary, &tracker, Some(PATIENCE), |transaction| {
        transaction.execute(
            "INSERT INTO otp_threads_lsn_probe (note) VALUES ($1)",
            &[&unique_note("configured-ryw")],
        )
    })
    .unwrap();
    assert_eq!(written.value, 1);
    assert!(
        matches!(written.replicated, Replicated::RoleChanged(change) if change == PROMOTED),
        "{written:?}"
    );
    runtime.shutdown(PATIENCE).unwrap();
}
