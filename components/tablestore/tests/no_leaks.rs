//! No leaks (project rule): every thread a tunnel consumer started — the `Tunnels`
//! supervisor, the session worker, a reader per channel, also those of a session that
//! was killed and restarted — is joined when its runtime stops, and the emulator's
//! when it stops. Alone in its test binary, so that no other test's threads change
//! the count.

#[path = "support/rows.rs"]
mod rows;

use rows::put;

use std::collections::HashSet;
use std::time::Duration;

use otp_threads::{ExitReason, Runtime};
use otp_threads_tablestore::backoff::BackoffConfig;
use otp_threads_tablestore::client::TunnelClientConfig;
use otp_threads_tablestore::proto::TunnelType;
use otp_threads_tablestore::worker::{TunnelWorker, TunnelWorkerConfig};
use otp_threads_tablestore_emulator::{Emulator, EmulatorConfig};
use otp_threads_testkit::{Patience, os_thread_count, settles_at_thread_count, wait_for};

const INSTANCE: &str = "emu-inst";
const AKID: &str = "test-akid";
const SECRET: &str = "test-secret";
const TABLE: &str = "events";
const WAIT: Duration = Duration::from_secs(30);
const RECORDS: u64 = 200;

fn config(em: &Emulator, tunnel_id: &str) -> TunnelWorkerConfig {
    let retry = BackoffConfig::new(Duration::from_millis(2), Duration::from_millis(20))
        .jitter(0.33)
        .max_elapsed(Some(Duration::from_secs(5)));
    let client = TunnelClientConfig::new(em.endpoint(), INSTANCE, AKID, SECRET)
        .request_timeout(Duration::from_secs(10))
        .meta_retry(retry)
        .read_records_retry(retry);
    TunnelWorkerConfig::new(tunnel_id, client)
        .min_heartbeat_interval(Duration::from_millis(10))
        .heartbeat_interval(Duration::from_millis(50))
        .heartbeat_timeout(Duration::from_secs(20))
        .poll_backoff(
            BackoffConfig::new(Duration::from_millis(2), Duration::from_millis(20)).jitter(0.25),
        )
}

#[test]
fn stopping_the_runtime_and_the_emulator_joins_every_thread_they_started() {
    let _ = env_logger::builder().is_test(true).try_init();
    let before = os_thread_count();
    // The killed session's client is dropped by the service after 1 s of silence.
    let em = Emulator::start(
        EmulatorConfig::new(INSTANCE, AKID, SECRET)
            .max_records_per_read(10)
            .heartbeat_timeout(Duration::from_secs(1)),
    )
    .expect("emulator starts");
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "leaks", TunnelType::Stream)
        .unwrap();
    em.write(TABLE, (0..RECORDS).map(put).collect())
        .expect("write");
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();

    let mut seen = HashSet::new();
    let mut receive_until = |count: usize| {
        while seen.len() < count {
            let batch = rx.recv_timeout(WAIT).expect("a batch within 30 s");
            for record in &batch.records {
                seen.insert(record.row.sequence.expect("a stream position"));
            }
            // False for a batch a killed reader had sent: it comes again from the new one.
            let _ = batch.ack.ack();
        }
    };
    receive_until(RECORDS as usize / 2);
    // A killed session leaves its readers' threads to be joined too.
    let first = tunnel.pid().expect("a running session");
    let down = runtime.monitor(&first);
    runtime.kill(&first);
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    wait_for(
        "a new session",
        Patience::new(WAIT, Duration::from_millis(10)),
        || (tunnel.sessions() == 2).then_some(()),
    );
    receive_until(RECORDS as usize);
    assert!(
        os_thread_count() > before,
        "the runtime and the emulator run threads"
    );

    runtime.shutdown(WAIT).unwrap();
    drop(rx);
    em.stop();
    settles_at_thread_count(
        before,
        "every thread of the runtime and of the emulator joined",
    );
}
