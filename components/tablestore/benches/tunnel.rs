//! Tunnel benchmarks, against the emulator.
//!
//! - `worker`: records per second from the emulator to a subscriber on loopback,
//!   through a `TunnelWorker` (supervised session, one linked reader per channel,
//!   one acknowledged batch out per channel with one more fetched ahead, a
//!   checkpoint per batch), beside
//!   `bare client`: the same records read, decoded and checkpointed with a bare
//!   `TunnelClient`, one thread per channel, no worker, no acknowledgements. The
//!   ratio is printed.
//! - `plainbuffer/decode_record`: the PlainBuffer decoder's cost per record
//!   (criterion), for a stream record with a two-column key and four attributes.
//!
//! Run briefly with
//! `cargo bench -p otp-threads-tablestore --bench tunnel -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use otp_threads::Runtime;
use otp_threads_tablestore::backoff::BackoffConfig;
use otp_threads_tablestore::client::{TunnelClient, TunnelClientConfig};
use otp_threads_tablestore::plainbuffer::{
    self, ColumnChange, PkValue, Row, RowChange, SequenceInfo, Value,
};
use otp_threads_tablestore::proto::{ActionType, TunnelType};
use otp_threads_tablestore::token;
use otp_threads_tablestore::worker::{TunnelWorker, TunnelWorkerConfig};
use otp_threads_tablestore_emulator::{Emulator, EmulatorConfig};

const RECORDS: usize = 100_000;
const PER_READ: usize = 500;
const RUNS: usize = 3;

fn row(i: usize) -> Row {
    Row {
        primary_key: vec![
            ("shard".into(), PkValue::Integer((i % 16) as i64)),
            ("id".into(), PkValue::String(format!("order-{i:08}"))),
        ],
        kind: RowChange::Put,
        columns: vec![
            ColumnChange::Put {
                name: "customer".into(),
                value: Value::String(format!("customer-{}", i % 997)),
                timestamp: Some(1_700_000_000_000),
            },
            ColumnChange::Put {
                name: "total".into(),
                value: Value::Double(i as f64 * 0.25),
                timestamp: Some(1_700_000_000_000),
            },
            ColumnChange::Put {
                name: "items".into(),
                value: Value::Integer((i % 12) as i64),
                timestamp: Some(1_700_000_000_000),
            },
            ColumnChange::Put {
                name: "paid".into(),
                value: Value::Boolean(i.is_multiple_of(3)),
                timestamp: Some(1_700_000_000_000),
            },
        ],
        sequence: None,
    }
}

/// An emulator with a stream tunnel holding `RECORDS` changes.
fn loaded_emulator(name: &str) -> (Emulator, String) {
    let config = EmulatorConfig::new("bench", "akid", "secret").max_records_per_read(PER_READ);
    let em = Emulator::start(config).unwrap();
    let tunnel_id = em
        .create_tunnel("orders", name, TunnelType::Stream)
        .unwrap();
    for start in (0..RECORDS).step_by(5_000) {
        em.write("orders", (start..start + 5_000).map(row).collect())
            .unwrap();
    }
    (em, tunnel_id)
}

fn client_config(em: &Emulator) -> TunnelClientConfig {
    TunnelClientConfig::new(em.endpoint(), "bench", "akid", "secret")
}

/// Records per second through a `TunnelWorker` to a subscriber that acknowledges
/// every batch.
fn worker_run(run: usize) -> f64 {
    let (em, tunnel_id) = loaded_emulator(&format!("worker-{run}"));
    let runtime = Runtime::new();
    let config = TunnelWorkerConfig::new(&tunnel_id, client_config(&em))
        .min_heartbeat_interval(Duration::from_millis(10))
        .heartbeat_interval(Duration::from_millis(100))
        .poll_backoff(BackoffConfig::stream_poll().max_interval(Duration::from_millis(20)));
    let started = Instant::now();
    let (tunnel, batches) = TunnelWorker::start(&runtime.handle(), config).unwrap();
    let mut received = 0;
    while received < RECORDS {
        let batch = batches.recv_timeout(Duration::from_secs(60)).unwrap();
        received += black_box(&batch.records).len();
        batch.ack.ack();
    }
    let rate = received as f64 / started.elapsed().as_secs_f64();
    tunnel.stop().unwrap();
    runtime.shutdown(Duration::from_secs(10)).unwrap();
    rate
}

/// Records per second with a bare client: one thread per channel reads, decodes and
/// checkpoints in a loop.
fn bare_client_run(run: usize) -> f64 {
    let (em, tunnel_id) = loaded_emulator(&format!("bare-{run}"));
    let client = TunnelClient::new(client_config(&em)).unwrap();
    let started = Instant::now();
    let client_id = client.connect(&tunnel_id, None).unwrap().client_id;
    let channels = client
        .heartbeat(&tunnel_id, &client_id, vec![])
        .unwrap()
        .channels;
    let received: usize = std::thread::scope(|s| {
        let threads: Vec<_> = channels
            .iter()
            .map(|channel| {
                let (client, tunnel_id, client_id) = (&client, &tunnel_id, &client_id);
                s.spawn(move || {
                    let id = &channel.channel_id;
                    let cp = client.get_checkpoint(tunnel_id, client_id, id).unwrap();
                    let (mut token, mut sequence) = (cp.checkpoint, cp.sequence_number);
                    let mut rows = 0;
                    loop {
                        let reply = client
                            .read_records(tunnel_id, client_id, id, &token)
                            .unwrap()
                            .message;
                        if reply.records.is_empty() || token::is_finished(Some(&reply.next_token)) {
                            return rows;
                        }
                        for record in &reply.records {
                            let action = ActionType::try_from(record.action_type).unwrap();
                            black_box(plainbuffer::decode_record(action, &record.record).unwrap());
                            rows += 1;
                        }
                        sequence += 1;
                        client
                            .checkpoint(tunnel_id, client_id, id, &reply.next_token, sequence)
                            .unwrap();
                        token = reply.next_token;
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(received, RECORDS);
    received as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn decoder(c: &mut Criterion) -> f64 {
    let mut sample = row(123_456);
    sample.sequence = Some(SequenceInfo {
        epoch: 0,
        timestamp: 1_700_000_000_000_000,
        row_index: 7,
    });
    let bytes = plainbuffer::encode_row(&sample);
    let mut group = c.benchmark_group("plainbuffer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_record", |b| {
        b.iter(|| plainbuffer::decode_record(ActionType::PutRow, black_box(&bytes)).unwrap())
    });
    group.finish();
    // A plain timing for the summary line.
    let n = 200_000;
    let started = Instant::now();
    for _ in 0..n {
        black_box(plainbuffer::decode_record(ActionType::PutRow, black_box(&bytes)).unwrap());
    }
    let ns = started.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "plainbuffer decode: {ns:.0} ns/record ({} bytes, 2 key + 4 attribute columns)",
        bytes.len()
    );
    ns
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let ns = decoder(&mut criterion);

    // Alternate the two so that a noisy neighbour hurts both alike.
    let (mut worker, mut bare) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        worker.push(worker_run(run));
        bare.push(bare_client_run(run));
        println!(
            "run {}: worker {:.0} records/s, bare client {:.0} records/s, ratio {:.2}",
            run + 1,
            worker[run],
            bare[run],
            worker[run] / bare[run]
        );
    }
    let ratios: Vec<f64> = worker.iter().zip(&bare).map(|(w, b)| w / b).collect();
    let ratio = median(ratios);
    let (worker, bare) = (median(worker), median(bare));
    println!(
        "tunnel worker -> subscriber: {worker:.0} records/s (median of {RUNS} runs of {RECORDS} records, \
         {PER_READ} per read, 4 channels, loopback)"
    );
    println!("bare TunnelClient, 4 threads: {bare:.0} records/s");
    println!(
        "worker / bare client: {ratio:.2} (median of the paired runs; {:.2} from the medians); \
         at the worker's rate decoding keeps {:.2} cores busy",
        worker / bare,
        ns * worker / 1e9
    );
    criterion.final_summary();
}
