//! Read-your-writes on a PostgreSQL hot standby.
//!
//! Needs a primary and a standby. The test script's service helper starts a pair on
//! loopback and writes their connection strings to an env file:
//!
//! ```sh
//! bash scripts/services/postgres.sh start /tmp/pg
//! set -a && . /tmp/pg/env && set +a
//! cargo run --release -p otp-threads-lsn --example read_your_writes
//! bash scripts/services/postgres.sh stop /tmp/pg
//! ```
//!
//! It reads `OTP_THREADS_PG_PRIMARY` and `OTP_THREADS_PG_STANDBY` (libpq key=value
//! strings or URLs).

use std::time::{Duration, Instant};

use otp_threads::Runtime;
use otp_threads_lsn::{LsnTracker, Replicated, TrackerConfig, write_and_wait};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let primary_url = std::env::var("OTP_THREADS_PG_PRIMARY")
        .map_err(|_| "set OTP_THREADS_PG_PRIMARY (see the example's doc)")?;
    let standby_url = std::env::var("OTP_THREADS_PG_STANDBY")
        .map_err(|_| "set OTP_THREADS_PG_STANDBY (see the example's doc)")?;

    let runtime = Runtime::new();
    let tracker = LsnTracker::start(&runtime, TrackerConfig::new(&standby_url))?;
    let mut primary = postgres::Client::connect(&primary_url, postgres::NoTls)?;
    let mut standby = postgres::Client::connect(&standby_url, postgres::NoTls)?;
    primary.batch_execute(
        "CREATE TABLE IF NOT EXISTS ryw_notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
    )?;

    for round in 1..=5 {
        let body = format!("note {round} at {:?}", std::time::SystemTime::now());
        let started = Instant::now();
        let written = write_and_wait(
            &mut primary,
            &tracker,
            Some(Duration::from_secs(5)),
            |transaction| {
                transaction
                    .query_one(
                        "INSERT INTO ryw_notes (body) VALUES ($1) RETURNING id",
                        &[&body],
                    )
                    .map(|row| row.get::<_, i64>(0))
            },
        )?;
        let waited = started.elapsed();
        let seen: i64 = standby
            .query_one(
                "SELECT count(*) FROM ryw_notes WHERE id = $1",
                &[&written.value],
            )?
            .get(0);
        match written.replicated {
            Replicated::Ready => println!(
                "wrote id {} at {} on the primary; replica ready after {waited:?}; standby sees it: {}",
                written.value,
                written.lsn.map(|lsn| lsn.to_string()).unwrap_or_default(),
                seen == 1
            ),
            other => println!("wrote id {}, but: {other:?}", written.value),
        }
    }
    println!(
        "tracker: role {:?}, last replay {:?}, {} queries",
        tracker.role(),
        tracker.last_replay(),
        tracker.queries()
    );
    runtime.shutdown(Duration::from_secs(5))?;
    Ok(())
}
