//! Test support for the PostgreSQL tests: the services' environment, the shared
//! standby's controls, and bounded polling.
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use otp_threads_lsn::{Lsn, ReplicaProbe, install_await_replay_function, wal_wait_position};
use otp_threads_testkit::Patience;
use postgres::{Client, NoTls};

/// Generous bound for anything that should happen "soon" on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// Interval of the bounded poll loops.
pub const POLL: Duration = Duration::from_millis(10);

/// Serialises the tests: they pause, stop and restart the one shared standby.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A required environment variable set by the PostgreSQL service script.
pub fn required_env(name: &str) -> String {
    otp_threads_testkit::required_env(name, "scripts/services/postgres.sh")
}

pub fn primary_conninfo() -> String {
    required_env("OTP_THREADS_PG_PRIMARY")
}

pub fn standby_conninfo() -> String {
    required_env("OTP_THREADS_PG_STANDBY")
}

pub fn primary_client() -> Client {
    Client::connect(&primary_conninfo(), NoTls).expect("connect to the primary")
}

pub fn standby_client() -> Client {
    Client::connect(&standby_conninfo(), NoTls).expect("connect to the standby")
}

pub fn standby_probe() -> ReplicaProbe {
    ReplicaProbe::connect_str(&standby_conninfo()).expect("probe the standby")
}

/// Runs `scripts/services/postgres.sh CMD $OTP_THREADS_PG_DIR`, failing the test on error.
pub fn service(cmd: &str) {
    let dir = required_env("OTP_THREADS_PG_DIR");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/services/postgres.sh"
    );
    let out = Command::new("bash")
        .args([script, cmd, &dir])
        .output()
        .expect("run postgres.sh");
    assert!(
        out.status.success(),
        "postgres.sh {cmd} {dir} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Samples a value until `pred` holds or [`PATIENCE`] runs out; returns the last value.
pub fn poll_until<T: std::fmt::Debug>(
    what: &str,
    sample: impl FnMut() -> T,
    pred: impl FnMut(&T) -> bool,
) -> T {
    otp_threads_testkit::poll_until(what, Patience::new(PATIENCE, POLL), sample, pred)
}

/// Creates the test table on the primary (if needed) and waits until the standby has it,
/// so that later reads on the standby cannot fail with "relation does not exist" (e.g.
/// while replay is paused).
pub fn ensure_table(primary: &mut Client, probe: &mut ReplicaProbe) {
    primary
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS otp_threads_lsn_probe \
             (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)",
        )
        .expect("create table");
    let target = wal_wait_position(primary).expect("WAL wait position");
    poll_until(
        &format!("the test table to reach the standby ({target})"),
        || probe.last_replay_lsn().unwrap(),
        |replay| target.is_replayed_by_opt(*replay),
    );
}

/// Makes a committed write on the primary and returns the position to wait for, read
/// after the commit.
pub fn write_on_primary(primary: &mut Client, note: &str) -> Lsn {
    primary
        .execute(
            "INSERT INTO otp_threads_lsn_probe (note) VALUES ($1)",
            &[&note],
        )
        .expect("insert");
    wal_wait_position(primary).expect("WAL wait position")
}

/// Unique text for one write.
pub fn unique_note(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

pub fn row_visible(client: &mut Client, note: &str) -> bool {
    let row = client
        .query_one(
            "SELECT count(*) FROM otp_threads_lsn_probe WHERE note = $1",
            &[&note],
        )
        .expect("count on the standby");
    row.get::<_, i64>(0) == 1
}

/// Installs the long-poll function on the primary and waits until the standby has it.
pub fn ensure_long_poll_function(primary: &mut Client, probe: &mut ReplicaProbe) {
    let installed = install_await_replay_function(primary).expect("install the function");
    poll_until(
        &format!("the long-poll function to reach the standby ({installed})"),
        || probe.last_replay_lsn().unwrap(),
        |replay| installed.is_replayed_by_opt(*replay),
    );
}

/// Resumes replay on drop, so that a failing test cannot leave the standby paused.
pub struct ResumeOnDrop;

/// Pauses replay on the standby; replay resumes when the guard drops.
pub fn pause_replay(standby: &mut Client) -> ResumeOnDrop {
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    ResumeOnDrop
}

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        if let Ok(mut standby) = Client::connect(&standby_conninfo(), NoTls) {
            let _ = standby.batch_execute("SELECT pg_wal_replay_resume()");
        }
    }
}

/// Backends of the standby whose `application_name` is `application`, with their state.
pub fn sessions_of(application: &str) -> Vec<(i32, Option<String>, String)> {
    standby_client()
        .query(
            "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}
