//! End-to-end tests of the tunnel worker against the emulator: supervised sessions, linked channel readers, acknowledged
//! batches, checkpoints, restarts and hand-offs.

#[path = "support/rows.rs"]
mod rows;

use rows::put;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use otp_threads::{ExitReason, Runtime};
use otp_threads_tablestore::TunnelError;
use otp_threads_tablestore::backoff::BackoffConfig;
use otp_threads_tablestore::client::{
    TunnelClientConfig, URI_CHECKPOINT, URI_CONNECT, URI_GET_CHECKPOINT, URI_HEARTBEAT,
    URI_READ_RECORDS, URI_SHUTDOWN,
};
use otp_threads_tablestore::error::{
    OTS_PERMISSION_DENIED, OTS_QUOTA_EXHAUSTED, OTS_SEQUENCE_NUMBER_NOT_MATCH,
    OTS_TUNNEL_SERVER_UNAVAILABLE, QUOTA_THROTTLED_MESSAGE,
};
use otp_threads_tablestore::plainbuffer::{
    ColumnChange, PkValue, Row, RowChange, SequenceInfo, Value,
};
use otp_threads_tablestore::proto::{ChannelStatus, TunnelType};
use otp_threads_tablestore::token::FINISH_TOKEN;
use otp_threads_tablestore::worker::{
    Batch, MAX_READ_AHEAD, OnUndecodable, Receiver, RecordError, SEQUENCE_RETRIES, TunnelHandle,
    TunnelWorker, TunnelWorkerConfig, Tunnels,
};
use otp_threads_tablestore_emulator::{Emulator, EmulatorConfig};
use otp_threads_testkit::Patience;

const INSTANCE: &str = "emu-inst";
const AKID: &str = "test-akid";
const SECRET: &str = "test-secret";
const TABLE: &str = "events";
const WAIT: Duration = Duration::from_secs(30);

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

fn emulator_with(f: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Emulator {
    init_log();
    Emulator::start(f(EmulatorConfig::new(INSTANCE, AKID, SECRET))).expect("emulator starts")
}

fn fast_retry(budget: Duration) -> BackoffConfig {
    BackoffConfig::new(Duration::from_millis(2), Duration::from_millis(20))
        .jitter(0.33)
        .max_elapsed(Some(budget))
}

/// Client settings for tests: fast retries within 5 s.
fn client_config(em: &Emulator, secret: &str) -> TunnelClientConfig {
    TunnelClientConfig::new(em.endpoint(), INSTANCE, AKID, secret)
        .request_timeout(Duration::from_secs(10))
        .meta_retry(fast_retry(Duration::from_secs(5)))
        .read_records_retry(fast_retry(Duration::from_secs(5)))
}

/// A worker config for tests: heartbeats every 50 ms (the 5 s floor is lowered
/// explicitly), fast retries and a short idle poll.
fn config_with_secret(em: &Emulator, tunnel_id: &str, secret: &str) -> TunnelWorkerConfig {
    TunnelWorkerConfig::new(tunnel_id, client_config(em, secret))
        .min_heartbeat_interval(Duration::from_millis(10))
        .heartbeat_interval(Duration::from_millis(50))
        .heartbeat_timeout(Duration::from_secs(20))
        .client_tag("tunnel_worker test")
        .poll_backoff(
            BackoffConfig::new(Duration::from_millis(2), Duration::from_millis(20)).jitter(0.25),
        )
}

fn config(em: &Emulator, tunnel_id: &str) -> TunnelWorkerConfig {
    config_with_secret(em, tunnel_id, SECRET)
}

/// Writes puts `range` in chunks; returns their stream positions.
fn write(em: &Emulator, range: std::ops::Range<u64>) -> Vec<SequenceInfo> {
    let mut seqs = Vec::new();
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(1000) {
        seqs.extend(
            em.write(TABLE, chunk.iter().copied().map(put).collect())
                .expect("write"),
        );
    }
    seqs
}

fn recv(rx: &Receiver<Batch>) -> Batch {
    rx.recv_timeout(WAIT).expect("a batch within 30 s")
}

/// Polls `f` every 10 ms until it returns `Some`, for at most [`WAIT`].
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    otp_threads_testkit::wait_for(what, Patience::new(WAIT, Duration::from_millis(10)), f)
}

/// What a subscriber saw: each record's first delivery, per channel, in order.
#[derive(Default)]
struct Seen {
    first: HashSet<SequenceInfo>,
    order: BTreeMap<String, Vec<SequenceInfo>>,
    deliveries: usize,
}

impl Seen {
    fn add(&mut self, batch: &Batch) {
        for row in batch.records.iter().map(|r| &r.row) {
            let seq = row.sequence.expect("stream records carry their position");
            self.deliveries += 1;
            if self.first.insert(seq) {
                self.order
                    .entry(batch.channel_id.clone())
                    .or_default()
                    .push(seq);
            }
        }
    }

    fn unique(&self) -> usize {
        self.first.len()
    }

    fn assert_channel_order(&self) {
        for (channel, seqs) in &self.order {
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "channel {channel} out of order"
            );
        }
    }
}

/// Waits until every channel's stored checkpoint covers all its records.
fn wait_all_checkpointed(em: &Emulator, tunnel_id: &str) {
    wait_for("every record checkpointed", || {
        em.channels(tunnel_id)
            .unwrap()
            .iter()
            .all(|c| c.checkpoint.records_consumed == c.records)
            .then_some(())
    });
}

/// Waits until the receiver disconnects (the worker and its readers are gone),
/// dropping what is left in it.
fn wait_disconnected(rx: &Receiver<Batch>) {
    let deadline = Instant::now() + WAIT;
    loop {
        match rx.recv_deadline(deadline) {
            Ok(_) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => panic!("receiver still connected after {WAIT:?}"),
        }
    }
}

fn active_children(tunnels: &Tunnels) -> usize {
    tunnels.supervisor().count_children().unwrap().active
}

#[test]
fn invalid_options_are_errors_naming_the_option() {
    let em = emulator_with(|c| c);
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "opts", TunnelType::Stream).unwrap();
    let option_of = |f: &dyn Fn(TunnelWorkerConfig) -> TunnelWorkerConfig| match TunnelWorker::start(
        &runtime.handle(),
        f(config(&em, &tunnel_id)),
    ) {
        Err(TunnelError::InvalidOption { option, .. }) => option,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    assert_eq!(
        option_of(&|c| c
            .client(client_config(&em, SECRET))
            .heartbeat_interval(Duration::ZERO)),
        "heartbeat_interval"
    );
    let empty_tunnel = TunnelWorkerConfig::new("", client_config(&em, SECRET));
    match TunnelWorker::start(&runtime.handle(), empty_tunnel) {
        Err(TunnelError::InvalidOption { option, .. }) => assert_eq!(option, "tunnel_id"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
    // the users' floor is 5 s
    assert_eq!(
        option_of(&|c| {
            c.min_heartbeat_interval(Duration::from_secs(5))
                .heartbeat_interval(Duration::from_secs(4))
        }),
        "heartbeat_interval"
    );
    assert_eq!(
        option_of(&|c| c.heartbeat_timeout(Duration::from_millis(50))),
        "heartbeat_timeout"
    );
    assert_eq!(
        option_of(&|c| c.connect_timeout(Duration::ZERO)),
        "connect_timeout"
    );
    assert_eq!(
        option_of(&|c| c.read_ahead(MAX_READ_AHEAD + 1)),
        "read_ahead"
    );
    assert_eq!(
        option_of(&|c| c.poll_backoff(BackoffConfig::stream_poll().max_interval(Duration::MAX))),
        "poll_backoff"
    );
    assert_eq!(
        option_of(&|c| c.client(client_config(&em, ""))),
        "access_key_secret"
    );
    assert_eq!(
        option_of(&|c| c.client(
            client_config(&em, SECRET)
                .meta_retry(BackoffConfig::meta().max_interval(Duration::MAX))
        )),
        "meta_retry"
    );
    assert_eq!(em.stats().requests_to(URI_CONNECT), 0, "nothing was sent");

    // one worker per tunnel per runtime
    let (tunnel, _rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    match TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)) {
        Err(e @ TunnelError::AlreadyRunning { .. }) => assert!(e.is_fatal()),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert!(tunnel.is_running());
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_wrong_secret_is_a_clear_fatal_error() {
    let em = emulator_with(|c| c);
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "auth", TunnelType::Stream).unwrap();
    let err = TunnelWorker::start(
        &runtime.handle(),
        config_with_secret(&em, &tunnel_id, "not-the-secret"),
    )
    .unwrap_err();
    assert!(err.is_fatal(), "{err}");
    assert_eq!(err.service_code(), Some(OTS_PERMISSION_DENIED), "{err}");
    assert!(err.to_string().contains("secret"), "{err}");
    assert_eq!(em.stats().requests_to(URI_CONNECT), 1, "not retried");
    let tunnels = Tunnels::global(&runtime.handle()).unwrap();
    assert_eq!(active_children(&tunnels), 0, "no worker is left behind");
    // the right secret works
    let (tunnel, _rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    assert!(tunnel.client_id().is_some());
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn hundred_thousand_changes_arrive_in_channel_order_and_are_checkpointed() {
    const TOTAL: u64 = 100_000;
    let em = emulator_with(|c| c.max_records_per_read(500));
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "bulk", TunnelType::Stream).unwrap();
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let mut seen = Seen::default();
    let written = std::thread::scope(|s| {
        // written while the worker reads: half up front, half in small bursts
        let writer = s.spawn(|| {
            let mut seqs = write(&em, 0..TOTAL / 2);
            for start in (TOTAL / 2..TOTAL).step_by(5_000) {
                seqs.extend(write(&em, start..start + 5_000));
            }
            seqs
        });
        while seen.unique() < TOTAL as usize {
            let batch = recv(&rx);
            assert_eq!(batch.tunnel_id, tunnel_id);
            seen.add(&batch);
            assert!(batch.ack.ack());
        }
        writer.join().unwrap()
    });
    let written: HashSet<SequenceInfo> = written.into_iter().collect();
    assert_eq!(written.len(), TOTAL as usize);
    assert_eq!(seen.first, written, "every change, nothing else");
    assert_eq!(
        seen.deliveries, TOTAL as usize,
        "no redelivery without a failure"
    );
    seen.assert_channel_order();
    assert_eq!(seen.order.len(), 4, "all four channels were read");
    wait_all_checkpointed(&em, &tunnel_id);
    assert_eq!(tunnel.sessions(), 1);
    let status = tunnel.status(WAIT).unwrap();
    assert_eq!(status.channels.len(), 4);
    assert!(status.heartbeats >= 1);
    assert!(em.stats().requests_to(URI_CHECKPOINT) >= 200);

    tunnel.stop().unwrap();
    wait_disconnected(&rx);
    assert_eq!(em.stats().requests_to(URI_SHUTDOWN), 1);
    assert!(em.clients(&tunnel_id).unwrap().is_empty());
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_killed_worker_is_restarted_and_only_the_unacknowledged_batch_comes_again() {
    // The killed session's client is dropped by the service after 1 s of silence.
    let em = emulator_with(|c| {
        c.max_records_per_read(10)
            .heartbeat_timeout(Duration::from_secs(1))
    });
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "kill", TunnelType::Stream).unwrap();
    let written = write(&em, 0..400);
    let per_channel: HashMap<String, usize> = em
        .channels(&tunnel_id)
        .unwrap()
        .into_iter()
        .map(|c| (c.channel_id, c.records))
        .collect();
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();

    // Phase 1: acknowledge batches until 150 records are done.
    let mut seen = Seen::default();
    let mut acked: HashMap<String, usize> = HashMap::new();
    while acked.values().sum::<usize>() < 150 {
        let batch = recv(&rx);
        seen.add(&batch);
        *acked.entry(batch.channel_id.clone()).or_default() += batch.records.len();
        assert!(batch.ack.ack());
    }
    // Phase 2: hold the next batch of every channel with records left, unacknowledged.
    let mut held: HashMap<String, Batch> = HashMap::new();
    let unfinished = per_channel
        .iter()
        .filter(|(c, n)| acked.get(*c).copied().unwrap_or(0) < **n)
        .count();
    while held.len() < unfinished {
        let batch = recv(&rx);
        seen.add(&batch);
        assert!(
            held.insert(batch.channel_id.clone(), batch).is_none(),
            "one batch out per channel"
        );
    }
    // Every acknowledged batch is checkpointed, nothing more.
    wait_for("acknowledged batches checkpointed", || {
        em.checkpoints(&tunnel_id)
            .unwrap()
            .iter()
            .all(|(c, cp)| cp.records_consumed == acked.get(c).copied().unwrap_or(0))
            .then_some(())
    });

    let first_pid = tunnel.pid().unwrap();
    let down = runtime.monitor(&first_pid);
    runtime.kill(&first_pid);
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Killed);
    wait_for("a new session", || (tunnel.sessions() == 2).then_some(()));
    assert_ne!(tunnel.pid(), Some(first_pid));

    // After the restart each channel starts again with exactly the held batch.
    let mut restarted: HashSet<String> = HashSet::new();
    while seen.unique() < written.len() {
        let batch = recv(&rx);
        if restarted.insert(batch.channel_id.clone()) {
            let old = held
                .remove(&batch.channel_id)
                .expect("a channel with records left had a batch out");
            assert_eq!(
                batch.records, old.records,
                "channel {}: the unacknowledged batch, and only it, comes again",
                batch.channel_id
            );
            assert!(!old.ack.ack(), "the killed reader is gone");
        }
        seen.add(&batch);
        assert!(batch.ack.ack());
    }
    assert!(held.is_empty());
    seen.assert_channel_order();
    let redelivered = seen.deliveries - seen.unique();
    assert_eq!(
        redelivered,
        unfinished * 10,
        "one batch per unfinished channel"
    );
    wait_all_checkpointed(&em, &tunnel_id);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_second_client_joins_and_channels_move_without_loss() {
    let em = emulator_with(|c| c.max_records_per_read(20));
    let tunnel_id = em
        .create_tunnel(TABLE, "share", TunnelType::Stream)
        .unwrap();
    let mut written: HashSet<SequenceInfo> = write(&em, 0..2_000).into_iter().collect();
    let (runtime_a, runtime_b) = (Runtime::new(), Runtime::new());
    let (a, rx_a) = TunnelWorker::start(&runtime_a.handle(), config(&em, &tunnel_id)).unwrap();

    let seen_a = Arc::new(parking_lot::Mutex::new(Seen::default()));
    let seen_b = Arc::new(parking_lot::Mutex::new(Seen::default()));
    let total_unique = |seen_a: &Seen, seen_b: &Seen| seen_a.first.union(&seen_b.first).count();

    // A alone for a while.
    while seen_a.lock().unique() < 300 {
        let batch = recv(&rx_a);
        seen_a.lock().add(&batch);
        batch.ack.ack();
    }
    let (b, rx_b) = TunnelWorker::start(&runtime_b.handle(), config(&em, &tunnel_id)).unwrap();
    written.extend(write(&em, 2_000..4_000));
    let target = written.len();
    std::thread::scope(|s| {
        for (rx, mine) in [(&rx_a, &seen_a), (&rx_b, &seen_b)] {
            let (seen_a, seen_b) = (&seen_a, &seen_b);
            s.spawn(move || {
                let deadline = Instant::now() + WAIT;
                while total_unique(&seen_a.lock(), &seen_b.lock()) < target {
                    match rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(batch) => {
                            mine.lock().add(&batch);
                            batch.ack.ack();
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            assert!(Instant::now() < deadline, "no progress in {WAIT:?}")
                        }
                        Err(RecvTimeoutError::Disconnected) => panic!("a worker stopped"),
                    }
                }
            });
        }
    });
    let (seen_a, seen_b) = (seen_a.lock(), seen_b.lock());
    let all: HashSet<SequenceInfo> = seen_a.first.union(&seen_b.first).copied().collect();
    assert_eq!(all, written, "nothing lost");
    assert!(seen_b.unique() > 0, "channels moved to the second client");
    seen_a.assert_channel_order();
    seen_b.assert_channel_order();
    // the emulator splits four channels two and two
    let owners = |id: &str| {
        em.channels(&tunnel_id)
            .unwrap()
            .iter()
            .filter(|c| c.owner.as_deref() == Some(id) && c.status == ChannelStatus::Open)
            .count()
    };
    wait_for("two channels each", || {
        (owners(&a.client_id().unwrap()) == 2 && owners(&b.client_id().unwrap()) == 2).then_some(())
    });
    wait_all_checkpointed(&em, &tunnel_id);
    assert_eq!((a.sessions(), b.sessions()), (1, 1));
    runtime_a.shutdown(WAIT).unwrap();
    runtime_b.shutdown(WAIT).unwrap();
}

#[test]
fn bursts_of_5xx_are_retried_without_losing_anything() {
    let em = emulator_with(|c| c.max_records_per_read(25));
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "flaky", TunnelType::Stream)
        .unwrap();
    let written: HashSet<SequenceInfo> = write(&em, 0..1_000).into_iter().collect();
    em.fail_next_on(URI_CONNECT, 2, 503, OTS_TUNNEL_SERVER_UNAVAILABLE);
    em.fail_next_on(URI_HEARTBEAT, 3, 500, "OTSInternalServerError");
    em.fail_next_on(URI_GET_CHECKPOINT, 3, 503, OTS_TUNNEL_SERVER_UNAVAILABLE);
    em.fail_next_on(URI_READ_RECORDS, 6, 503, OTS_TUNNEL_SERVER_UNAVAILABLE);
    em.fail_next_on(URI_CHECKPOINT, 4, 502, "OTSServerBusy");
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let mut seen = Seen::default();
    while seen.unique() < written.len() {
        let batch = recv(&rx);
        seen.add(&batch);
        batch.ack.ack();
        if seen.deliveries == 500 {
            em.drop_next_connections(3);
            em.fail_next(5, 503, OTS_TUNNEL_SERVER_UNAVAILABLE);
        }
    }
    assert_eq!(seen.first, written);
    assert_eq!(
        seen.deliveries,
        written.len(),
        "retries are invisible to the subscriber"
    );
    seen.assert_channel_order();
    wait_all_checkpointed(&em, &tunnel_id);
    let stats = em.stats();
    assert_eq!(stats.injected_failures, 2 + 3 + 3 + 6 + 4 + 5);
    assert_eq!(stats.dropped_connections, 3);
    assert_eq!(tunnel.sessions(), 1, "no restart was needed");
    assert!(tunnel.last_error().is_none());
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn dropping_the_receiver_shuts_the_tunnel_down() {
    let em = emulator_with(|c| c.max_records_per_read(10));
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "drop", TunnelType::Stream).unwrap();
    write(&em, 0..200);
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let pid = tunnel.pid().unwrap();
    let down = runtime.monitor(&pid);
    let batch = recv(&rx);
    drop(rx);
    drop(batch); // a nack: the reader reads again and finds nobody to deliver to
    assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Normal);
    assert_eq!(em.stats().requests_to(URI_SHUTDOWN), 1);
    assert!(em.clients(&tunnel_id).unwrap().is_empty(), "session ended");
    let tunnels = Tunnels::global(&runtime.handle()).unwrap();
    assert_eq!(active_children(&tunnels), 0, "not restarted");
    assert!(!tunnel.is_running());
    assert_eq!(tunnel.sessions(), 1);
    // nothing was acknowledged, so nothing was checkpointed
    assert!(
        em.checkpoints(&tunnel_id)
            .unwrap()
            .values()
            .all(|cp| cp.sequence_number == 0)
    );
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn stop_by_tunnel_id_ends_the_session_and_the_stream() {
    let em = emulator_with(|c| c);
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "stop", TunnelType::Stream).unwrap();
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    wait_for("four channels read", || {
        let status = tunnel.status(WAIT).ok()?;
        (status.channels.len() == 4).then_some(())
    });
    TunnelWorker::stop(&runtime.handle(), &tunnel_id).unwrap();
    wait_disconnected(&rx);
    assert!(!tunnel.is_running());
    assert_eq!(em.stats().requests_to(URI_SHUTDOWN), 1);
    assert!(em.clients(&tunnel_id).unwrap().is_empty());
    assert!(matches!(
        TunnelWorker::stop(&runtime.handle(), &tunnel_id),
        Err(TunnelError::NotRunning { .. })
    ));
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_heartbeat_that_does_not_succeed_within_the_timeout_stops_the_worker() {
    let em = emulator_with(|c| c);
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "hb", TunnelType::Stream).unwrap();
    let config = config(&em, &tunnel_id)
        .heartbeat_timeout(Duration::from_millis(500))
        .client(client_config(&em, SECRET).meta_retry(fast_retry(Duration::from_millis(50))));
    let (tunnel, _rx) = TunnelWorker::start(&runtime.handle(), config).unwrap();
    wait_for("a first heartbeat", || {
        (tunnel.status(WAIT).ok()?.heartbeats > 0).then_some(())
    });
    let pid = tunnel.pid().unwrap();
    let down = runtime.monitor(&pid);
    em.fail_next_on(URI_HEARTBEAT, 1_000_000, 503, OTS_TUNNEL_SERVER_UNAVAILABLE);
    let reason = down.wait(WAIT).unwrap().reason;
    em.clear_faults();
    assert!(reason.to_string().contains("heartbeat"), "{reason}");
    assert!(
        !reason.is_normal_stop(),
        "an error: the supervisor restarts it"
    );
    match tunnel.last_error().as_deref() {
        Some(TunnelError::HeartbeatTimeout {
            elapsed, timeout, ..
        }) => {
            assert!(elapsed > timeout);
            assert_eq!(*timeout, Duration::from_millis(500));
        }
        other => panic!("expected HeartbeatTimeout, got {other:?}"),
    }
    // a new session from the checkpoints
    wait_for("a new session", || (tunnel.sessions() >= 2).then_some(()));
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn base_data_channels_finish_and_are_reported_terminated() {
    let em = emulator_with(|c| c.max_records_per_read(7));
    let runtime = Runtime::new();
    write(&em, 0..100);
    let tunnel_id = em
        .create_tunnel(TABLE, "full", TunnelType::BaseData)
        .unwrap();
    let (_tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let mut ids = HashSet::new();
    while ids.len() < 100 {
        let batch = recv(&rx);
        for row in batch.records.iter().map(|r| &r.row) {
            assert_eq!(row.sequence, None, "base data has no stream position");
            ids.insert(row.primary_key.clone());
        }
        batch.ack.ack();
    }
    wait_for("every channel terminated", || {
        em.channels(&tunnel_id)
            .unwrap()
            .iter()
            .all(|c| c.status == ChannelStatus::Terminated && c.checkpoint.token == FINISH_TOKEN)
            .then_some(())
    });
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_dropped_ack_delivers_the_same_batch_again() {
    let em = emulator_with(|c| c.max_records_per_read(10).channels_per_tunnel(1));
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "nack", TunnelType::Stream).unwrap();
    write(&em, 0..30);
    let (_tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let first = recv(&rx);
    let records = first.records.clone();
    drop(first);
    let again = recv(&rx);
    assert_eq!(again.records, records);
    assert!(again.ack.ack());
    let next = recv(&rx);
    assert_ne!(next.records, records);
    assert!(next.ack.ack());
    let last = recv(&rx);
    assert!(last.ack.ack());
    wait_all_checkpointed(&em, &tunnel_id);
    assert_eq!(
        em.checkpoints(&tunnel_id)
            .unwrap()
            .values()
            .next()
            .unwrap()
            .sequence_number,
        3
    );
    runtime.shutdown(WAIT).unwrap();
}

/// The handle is usable from a plain function, as the tour does.
#[allow(dead_code)]
fn handle_is_send_and_sync(handle: TunnelHandle) -> impl Send + Sync {
    handle
}

#[test]
fn an_expired_tunnel_is_fatal_and_ends_the_stream_without_restarts() {
    let em = emulator_with(|c| c);
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "expire", TunnelType::Stream)
        .unwrap();
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let down = runtime.monitor(&tunnel.pid().unwrap());
    assert!(em.expire_tunnel(&tunnel_id));
    let reason = down.wait(WAIT).unwrap().reason;
    assert!(
        reason.is_normal_stop(),
        "{{shutdown, fatal}}: not restarted: {reason}"
    );
    let error = tunnel.last_error().expect("the fatal error is kept");
    assert!(error.is_fatal(), "{error}");
    wait_disconnected(&rx);
    assert_eq!(tunnel.sessions(), 1);
    let tunnels = Tunnels::global(&runtime.handle()).unwrap();
    assert_eq!(active_children(&tunnels), 0);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_server_channel_version_of_i64_max_stops_the_tunnel_with_a_typed_error() {
    let em = emulator_with(|c| c.channels_per_tunnel(1));
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "vmax", TunnelType::Stream).unwrap();
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let channel_id = em.channels(&tunnel_id).unwrap()[0].channel_id.clone();
    wait_for("the channel read", || {
        let status = tunnel.status(WAIT).ok()?;
        (status.channels.len() == 1).then_some(())
    });
    assert!(em.set_channel_version(&tunnel_id, &channel_id, i64::MAX));
    wait_for("version i64::MAX adopted", || {
        let status = tunnel.status(WAIT).ok()?;
        (status.channels[0].version == i64::MAX).then_some(())
    });
    // The reader fails (not retried): giving the channel back needs version + 1.
    let down = runtime.monitor(&tunnel.pid().unwrap());
    em.fail_next_on(URI_READ_RECORDS, 1, 410, "OTSResourceGone");
    let reason = down.wait(WAIT).unwrap().reason;
    assert!(reason.is_normal_stop(), "fatal: not restarted: {reason}");
    match tunnel.last_error().as_deref() {
        Some(TunnelError::OutOfRange {
            what,
            subject,
            value,
        }) => {
            assert_eq!(*what, "channel version");
            assert_eq!(subject, &channel_id);
            assert_eq!(*value, i64::MAX);
        }
        other => panic!("expected OutOfRange, got {other:?}"),
    }
    wait_disconnected(&rx);
    assert_eq!(tunnel.sessions(), 1);
    assert_eq!(em.stats().internal_errors, 0);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn a_stored_sequence_number_of_i64_max_stops_the_tunnel_with_a_typed_error() {
    let em = emulator_with(|c| c.channels_per_tunnel(1));
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "smax", TunnelType::Stream).unwrap();
    let channel_id = em.channels(&tunnel_id).unwrap()[0].channel_id.clone();
    assert!(em.set_checkpoint_sequence(&tunnel_id, &channel_id, i64::MAX));
    write(&em, 0..10);
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let batch = recv(&rx);
    let pid = tunnel.pid().unwrap();
    let down = runtime.monitor(&pid);
    batch.ack.ack();
    let reason = down.wait(WAIT).unwrap().reason;
    assert!(reason.is_normal_stop(), "fatal: not restarted: {reason}");
    match tunnel.last_error().as_deref() {
        Some(TunnelError::OutOfRange { what, value, .. }) => {
            assert_eq!(*what, "checkpoint sequence number");
            assert_eq!(*value, i64::MAX);
        }
        other => panic!("expected OutOfRange, got {other:?}"),
    }
    wait_disconnected(&rx);
    // nothing was checkpointed past the stored state
    let cp = &em.checkpoints(&tunnel_id).unwrap()[&channel_id];
    assert_eq!(cp.sequence_number, i64::MAX);
    assert_eq!(cp.records_consumed, 0);
    runtime.shutdown(WAIT).unwrap();
}

/// A PlainBuffer row whose checksum is wrong.
fn corrupt_row() -> Vec<u8> {
    let mut bytes = otp_threads_tablestore::plainbuffer::encode_row(&put(999));
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    bytes
}

fn raw_record(action_type: i32, record: Vec<u8>) -> otp_threads_tablestore::proto::Record {
    otp_threads_tablestore::proto::Record {
        action_type,
        record,
        origin_record: None,
    }
}

/// One channel, reads of 10: ids 0..15, a corrupt row, ids 15..22, a record of an
/// unknown action type, ids 22..30. Returns the tunnel id and the channel id.
fn stream_with_bad_records(em: &Emulator, name: &str) -> (String, String) {
    let tunnel_id = em.create_tunnel(TABLE, name, TunnelType::Stream).unwrap();
    let channel_id = em.channels(&tunnel_id).unwrap()[0].channel_id.clone();
    write(em, 0..15);
    assert!(em.append_raw_record(&tunnel_id, &channel_id, raw_record(1, corrupt_row())));
    write(em, 15..22);
    let good = otp_threads_tablestore::plainbuffer::encode_row(&put(1000));
    assert!(em.append_raw_record(&tunnel_id, &channel_id, raw_record(9, good)));
    write(em, 22..30);
    (tunnel_id, channel_id)
}

fn one_channel_of_ten() -> Emulator {
    emulator_with(|c| c.channels_per_tunnel(1).max_records_per_read(10))
}

fn ids_of(batch: &Batch) -> Vec<i64> {
    batch
        .records
        .iter()
        .map(|r| match r.row.primary_key[0].1 {
            PkValue::Integer(i) => i,
            ref other => panic!("unexpected key {other:?}"),
        })
        .collect()
}

#[test]
fn an_undecodable_record_mid_stream_is_delivered_as_an_error_item_by_default() {
    let em = one_channel_of_ten();
    let runtime = Runtime::new();
    let (tunnel_id, channel_id) = stream_with_bad_records(&em, "bad-deliver");
    // the default policy
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let (mut ids, mut bad) = (Vec::new(), Vec::new());
    while ids.len() < 30 {
        let batch = recv(&rx);
        ids.extend(ids_of(&batch));
        bad.extend(batch.undecodable.iter().cloned());
        assert!(batch.ack.ack(), "the user logs it and acks past it");
    }
    assert_eq!(ids, (0..30).collect::<Vec<_>>(), "nothing lost, in order");
    assert_eq!(bad.len(), 2);
    // the corrupt row: the 6th record of the second read
    assert_eq!((bad[0].index, bad[0].action_type), (5, 1));
    assert_eq!(bad[0].record, corrupt_row());
    assert_eq!(bad[0].channel_id, channel_id);
    assert!(matches!(bad[0].error, RecordError::Row(_)), "{:?}", bad[0]);
    assert_eq!(bad[1].error, RecordError::UnknownActionType(9));
    wait_all_checkpointed(&em, &tunnel_id);
    assert_eq!(tunnel.sessions(), 1);
    assert!(tunnel.last_error().is_none());
    assert_eq!(tunnel.skipped_count(), 0);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn an_undecodable_record_mid_stream_is_skipped_logged_and_reported() {
    let em = one_channel_of_ten();
    let runtime = Runtime::new();
    let (tunnel_id, _) = stream_with_bad_records(&em, "bad-skip");
    let config = config(&em, &tunnel_id).on_undecodable(OnUndecodable::Skip);
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config).unwrap();
    let mut ids = Vec::new();
    while ids.len() < 30 {
        let batch = recv(&rx);
        assert!(batch.undecodable.is_empty(), "skipped, not delivered");
        ids.extend(ids_of(&batch));
        assert!(batch.ack.ack());
    }
    assert_eq!(ids, (0..30).collect::<Vec<_>>());
    wait_all_checkpointed(&em, &tunnel_id);
    assert_eq!(tunnel.skipped_count(), 2, "reported");
    let skipped = tunnel.skipped_records();
    assert_eq!(skipped[0].record, corrupt_row());
    assert_eq!(skipped[1].error, RecordError::UnknownActionType(9));
    assert_eq!(tunnel.sessions(), 1);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn an_undecodable_record_mid_stream_stops_the_tunnel_with_a_typed_error() {
    let em = one_channel_of_ten();
    let runtime = Runtime::new();
    let (tunnel_id, channel_id) = stream_with_bad_records(&em, "bad-stop");
    let config = config(&em, &tunnel_id).on_undecodable(OnUndecodable::Stop);
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config).unwrap();
    let down = runtime.monitor(&tunnel.pid().unwrap());
    let first = recv(&rx);
    assert_eq!(ids_of(&first), (0..10).collect::<Vec<_>>());
    assert!(first.ack.ack());
    let reason = down.wait(WAIT).unwrap().reason;
    assert!(reason.is_normal_stop(), "fatal: not restarted: {reason}");
    match tunnel.last_error().as_deref() {
        Some(TunnelError::UndecodableRecord {
            channel_id: channel,
            index,
            error,
            ..
        }) => {
            assert_eq!(channel, &channel_id);
            assert_eq!(*index, 5);
            assert!(matches!(error, RecordError::Row(_)), "{error:?}");
        }
        other => panic!("expected UndecodableRecord, got {other:?}"),
    }
    wait_disconnected(&rx);
    // the checkpoint stays before the batch holding the bad record: nothing is lost
    let cp = &em.checkpoints(&tunnel_id).unwrap()[&channel_id];
    assert_eq!(cp.records_consumed, 10);
    assert_eq!(tunnel.sessions(), 1);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn before_images_are_delivered_with_each_record() {
    let em = one_channel_of_ten();
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "origin", TunnelType::Stream)
        .unwrap();
    let key = vec![("id".into(), PkValue::Integer(7))];
    em.put_row(TABLE, key.clone(), vec![("n".into(), Value::Integer(1))])
        .unwrap();
    em.update_row(
        TABLE,
        key.clone(),
        vec![ColumnChange::Put {
            name: "n".into(),
            value: Value::Integer(2),
            timestamp: None,
        }],
    )
    .unwrap();
    em.delete_row(TABLE, key.clone()).unwrap();
    let (_tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let mut records = Vec::new();
    while records.len() < 3 {
        let batch = recv(&rx);
        records.extend(batch.records.iter().cloned());
        batch.ack.ack();
    }
    let before = |n| Row {
        primary_key: key.clone(),
        kind: RowChange::Put,
        columns: vec![ColumnChange::Put {
            name: "n".into(),
            value: Value::Integer(n),
            timestamp: None,
        }],
        sequence: None,
    };
    assert_eq!(records[0].row.kind, RowChange::Put);
    assert_eq!(records[0].origin, None, "a new row has no before-image");
    assert_eq!(records[1].row.kind, RowChange::Update);
    assert_eq!(records[1].origin, Some(before(1)));
    assert_eq!(records[2].row.kind, RowChange::Delete);
    assert_eq!(records[2].origin, Some(before(2)));
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn throttling_codes_are_retried_with_backoff_without_losing_anything() {
    let em = emulator_with(|c| c.max_records_per_read(25));
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "throttled", TunnelType::Stream)
        .unwrap();
    let written: HashSet<SequenceInfo> = write(&em, 0..500).into_iter().collect();
    em.fail_next_on(URI_CONNECT, 1, 400, "OTSServerBusy");
    em.fail_next_on(URI_HEARTBEAT, 2, 503, "OTSServerBusy");
    em.fail_next_on(URI_GET_CHECKPOINT, 2, 400, "OTSOperationThrottled");
    em.fail_next_on(URI_READ_RECORDS, 3, 409, "OTSRowOperationConflict");
    em.fail_next_with(
        Some(URI_CHECKPOINT),
        2,
        403,
        OTS_QUOTA_EXHAUSTED,
        QUOTA_THROTTLED_MESSAGE,
    );
    em.fail_next_on(URI_READ_RECORDS, 2, 400, "OTSNotEnoughCapacityUnit");
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let mut seen = Seen::default();
    while seen.unique() < written.len() {
        let batch = recv(&rx);
        seen.add(&batch);
        batch.ack.ack();
    }
    assert_eq!(seen.first, written);
    assert_eq!(seen.deliveries, written.len(), "retries are invisible");
    wait_all_checkpointed(&em, &tunnel_id);
    assert_eq!(em.stats().injected_failures, 1 + 2 + 2 + 3 + 2 + 2);
    assert_eq!(tunnel.sessions(), 1, "no restart was needed");
    assert!(tunnel.last_error().is_none());
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn an_exhausted_quota_that_is_not_throttling_is_not_retried() {
    let em = emulator_with(|c| c);
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "quota", TunnelType::Stream)
        .unwrap();
    em.fail_next_with(
        Some(URI_CONNECT),
        1,
        403,
        OTS_QUOTA_EXHAUSTED,
        "Too many clients.",
    );
    let err = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap_err();
    assert_eq!(err.service_code(), Some(OTS_QUOTA_EXHAUSTED), "{err}");
    assert_eq!(em.stats().requests_to(URI_CONNECT), 1);
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn sequence_mismatches_beyond_the_bound_are_reconciled_until_the_checkpoint_succeeds() {
    let em = one_channel_of_ten();
    let runtime = Runtime::new();
    let tunnel_id = em.create_tunnel(TABLE, "seq", TunnelType::Stream).unwrap();
    let channel_id = em.channels(&tunnel_id).unwrap()[0].channel_id.clone();
    write(&em, 0..30);
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config(&em, &tunnel_id)).unwrap();
    let first = recv(&rx);
    // More mismatches in a row than the immediate bound: a backoff round follows.
    let injected = 2 * SEQUENCE_RETRIES as usize + 1;
    em.fail_next_on(URI_CHECKPOINT, injected, 400, OTS_SEQUENCE_NUMBER_NOT_MATCH);
    let get_checkpoints = em.stats().requests_to(URI_GET_CHECKPOINT);
    let mut ids = ids_of(&first);
    assert!(first.ack.ack());
    // Meanwhile another writer moves the stored sequence number on.
    let second = recv(&rx);
    assert!(em.set_checkpoint_sequence(&tunnel_id, &channel_id, 41));
    ids.extend(ids_of(&second));
    assert!(second.ack.ack());
    let third = recv(&rx);
    ids.extend(ids_of(&third));
    assert!(third.ack.ack());
    assert_eq!(ids, (0..30).collect::<Vec<_>>(), "each batch once");
    wait_all_checkpointed(&em, &tunnel_id);
    // reconciled from the server's 41 (whichever checkpoint met it), then on from there
    let stored = em.checkpoints(&tunnel_id).unwrap()[&channel_id].sequence_number;
    assert!((42..=44).contains(&stored), "stored #{stored}");
    // one getcheckpoint per mismatch (the moved sequence number may meet one of the
    // injected rounds)
    assert!(em.stats().requests_to(URI_GET_CHECKPOINT) >= get_checkpoints + injected as u64);
    assert_eq!(tunnel.sessions(), 1);
    let status = tunnel.status(WAIT).unwrap();
    assert_eq!(
        status.channels[0].status,
        ChannelStatus::Open,
        "the channel was not given up"
    );
    runtime.shutdown(WAIT).unwrap();
}

#[test]
fn read_ahead_keeps_at_least_once_delivery_through_repeated_kills() {
    let em = emulator_with(|c| {
        c.max_records_per_read(10)
            .heartbeat_timeout(Duration::from_secs(1))
    });
    let runtime = Runtime::new();
    let tunnel_id = em
        .create_tunnel(TABLE, "ahead", TunnelType::Stream)
        .unwrap();
    let written: HashSet<SequenceInfo> = write(&em, 0..800).into_iter().collect();
    let config = config(&em, &tunnel_id).read_ahead(3);
    let (tunnel, rx) = TunnelWorker::start(&runtime.handle(), config).unwrap();
    let mut seen = Seen::default();
    // Per channel, the records whose batch was acknowledged to a live reader: a
    // prefix of the channel, the most its checkpoint may cover.
    let mut acked: HashMap<String, HashSet<SequenceInfo>> = HashMap::new();
    for kill in 1..=3 {
        while seen.unique() < kill * 200 {
            let batch = recv(&rx);
            seen.add(&batch);
            let rows: Vec<SequenceInfo> = batch
                .records
                .iter()
                .map(|r| r.row.sequence.unwrap())
                .collect();
            let channel = batch.channel_id.clone();
            if batch.ack.ack() {
                acked.entry(channel).or_default().extend(rows);
            }
        }
        let pid = tunnel.pid().unwrap();
        let down = runtime.monitor(&pid);
        runtime.kill(&pid);
        assert_eq!(down.wait(WAIT).unwrap().reason, ExitReason::Killed);
        // Fetched-ahead batches die with their reader; no checkpoint covers them.
        for (channel, cp) in em.checkpoints(&tunnel_id).unwrap() {
            let acked = acked.get(&channel).map_or(0, HashSet::len);
            assert!(
                cp.records_consumed <= acked,
                "channel {channel}: checkpoint at {} beyond the {acked} acknowledged",
                cp.records_consumed
            );
        }
        wait_for("a new session", || {
            (tunnel.sessions() == kill as u64 + 1).then_some(())
        });
    }
    while seen.unique() < written.len() {
        let batch = recv(&rx);
        seen.add(&batch);
        batch.ack.ack();
    }
    assert_eq!(seen.first, written, "every change at least once");
    seen.assert_channel_order();
    wait_all_checkpointed(&em, &tunnel_id);
    runtime.shutdown(WAIT).unwrap();
}
