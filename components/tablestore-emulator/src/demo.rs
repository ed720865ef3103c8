//! A tunnel consumer run end to end against the [emulator](crate)
//! for tours and examples: [`run`].

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::{Emulator, EmulatorConfig, EmulatorError};
use otp_threads::{ExitReason, RuntimeHandle};
use otp_threads_tablestore::backoff::BackoffConfig;
use otp_threads_tablestore::client::TunnelClientConfig;
use otp_threads_tablestore::plainbuffer::{ColumnChange, PkValue, Row, RowChange, Value};
use otp_threads_tablestore::proto::TunnelType;

use otp_threads_tablestore::worker::{TunnelWorker, TunnelWorkerConfig};

/// How long the demo waits for the next batch before giving up.
const BATCH_WAIT: Duration = Duration::from_secs(30);

/// What [`run`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoReport {
    /// Changes written to the emulated table.
    pub written: usize,
    /// Distinct changes the subscriber received (equal to `written`: none lost).
    pub received: usize,
    /// Deliveries beyond the first of a change: the unacknowledged batches the
    /// restarted worker delivered again.
    pub redelivered: usize,
    /// Sessions the tunnel worker connected (2: the first one was killed).
    pub sessions: u64,
    /// Wall-clock time from the worker's start to the last change.
    pub elapsed: Duration,
}

/// Writes `changes` row changes to an emulated table, consumes them with a
/// [`TunnelWorker`] on `runtime`, kills the worker halfway (its supervisor restarts
/// it and it resumes from its checkpoints), and stops the tunnel at the end.
///
/// Heartbeats run every 50 ms here; the 5 s floor is lowered for the emulator.
pub fn run(runtime: &RuntimeHandle, changes: usize) -> Result<DemoReport, EmulatorError> {
    // A killed session's client is dropped after a second of silence.
    let emulator_config = EmulatorConfig::new("demo", "demo-akid", "demo-secret")
        .heartbeat_timeout(Duration::from_secs(1))
        .max_records_per_read(200);
    let emulator = Emulator::start(emulator_config)?;
    let tunnel_id = emulator.create_tunnel("orders", "demo", TunnelType::Stream)?;
    let rows: Vec<Row> = (0..changes)
        .map(|i| Row {
            primary_key: vec![("order".into(), PkValue::Integer(i as i64))],
            kind: RowChange::Put,
            columns: vec![ColumnChange::Put {
                name: "total".into(),
                value: Value::Integer((i * 7 % 1000) as i64),
                timestamp: None,
            }],
            sequence: None,
        })
        .collect();
    for chunk in rows.chunks(1000) {
        emulator.write("orders", chunk.to_vec())?;
    }

    let client = TunnelClientConfig::new(emulator.endpoint(), "demo", "demo-akid", "demo-secret")
        .meta_retry(BackoffConfig::meta().max_elapsed(Some(Duration::from_secs(5))));
    let config = TunnelWorkerConfig::new(&tunnel_id, client)
        .min_heartbeat_interval(Duration::from_millis(10))
        .heartbeat_interval(Duration::from_millis(50))
        .heartbeat_timeout(Duration::from_secs(10))
        .poll_backoff(BackoffConfig::stream_poll().max_interval(Duration::from_millis(50)));

    let started = Instant::now();
    let (tunnel, batches) = TunnelWorker::start(runtime, config)?;
    let mut seen = HashSet::new();
    let mut deliveries = 0;
    let mut killed = false;
    while seen.len() < changes {
        let batch = batches
            .recv_timeout(BATCH_WAIT)
            .map_err(|_| EmulatorError::NoBatch(BATCH_WAIT))?;
        for row in batch.records.iter().map(|r| &r.row) {
            deliveries += 1;
            seen.insert(row.sequence);
        }
        if !killed && seen.len() >= changes / 2 {
            // Crash the worker with this batch unacknowledged.
            killed = true;
            if let Some(pid) = tunnel.pid() {
                log::info!("demo: killing tunnel worker {pid}");
                runtime.exit(&pid, ExitReason::Kill);
            }
            continue;
        }
        batch.ack.ack();
    }
    let elapsed = started.elapsed();
    let sessions = tunnel.sessions();
    tunnel.stop()?;
    Ok(DemoReport {
        written: changes,
        received: seen.len(),
        redelivered: deliveries - seen.len(),
        sessions,
        elapsed,
    })
}
