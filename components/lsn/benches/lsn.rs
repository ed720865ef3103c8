//! LSN tracker benchmarks.
//!
//! 1. A tick: the replay position advances and the ready waiters are woken. The
//!    tracker's waiter index (ordered by LSN: O(k log n) for k ready of n) beside the
//!    original's algorithm, a linear scan over every request, on the same data: 10,000
//!    waiters on distinct LSNs, with 1, 100 and 10,000 of them ready. Reports the CPU time
//!    per tick and the ratio.
//! 2. Wake-up latency: 16 threads hold the 10,000 waits; time from the tick until every
//!    thread has seen all of its releases.
//! 3. With a real standby (`OTP_THREADS_PG_STANDBY` set, e.g. by
//!    `bash scripts/services/postgres.sh start DIR && set -a && . DIR/env && set +a`):
//!    queries per second the tracker sends with 0, 1 and 10,000 pending waits (at the
//!    default 100 ms frequency: at most 10, whatever the number of waits, and 0 idle).
//!
//! `cargo bench -p otp-threads-lsn --bench lsn` (add `-- report` for the report only).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use crossbeam_channel::{Receiver, Sender, bounded};
use otp_threads::Runtime;
use otp_threads_lsn::{Lsn, LsnTracker, Release, TrackerConfig, Waiters};

const WAITERS: u64 = 10_000;

/// The original algorithm: every request in a list, every tick checks them all.
struct LinearScan {
    requests: Vec<(Lsn, Sender<Release>)>,
}

impl LinearScan {
    fn insert(&mut self, lsn: Lsn) -> Receiver<Release> {
        let (sender, receiver) = bounded(1);
        self.requests.push((lsn, sender));
        receiver
    }

    fn release_up_to(&mut self, replay: Lsn) -> usize {
        let mut released = 0;
        self.requests.retain(|(lsn, sender)| {
            if lsn.is_replayed_by(replay) {
                let _ = sender.try_send(Release::Replayed(replay));
                released += 1;
                false
            } else {
                true
            }
        });
        released
    }
}

/// Shuffles deterministically (xorshift), so that runs compare like with like.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// Distinct LSNs, shuffled so that insertion order is not LSN order.
fn lsns() -> Vec<Lsn> {
    let mut lsns: Vec<Lsn> = (1..=WAITERS).map(|i| Lsn(0x1_0000_0000 + i * 64)).collect();
    shuffle(&mut lsns, 0x9E37_79B9_7F4A_7C15);
    lsns
}

fn indexed(lsns: &[Lsn]) -> (Waiters, Vec<Receiver<Release>>) {
    let mut waiters = Waiters::new();
    let receivers = lsns.iter().map(|&lsn| waiters.insert(lsn).1).collect();
    (waiters, receivers)
}

fn scanned(lsns: &[Lsn]) -> (LinearScan, Vec<Receiver<Release>>) {
    let mut scan = LinearScan {
        requests: Vec::new(),
    };
    let receivers = lsns.iter().map(|&lsn| scan.insert(lsn)).collect();
    (scan, receivers)
}

/// The replay position that makes exactly `ready` of the waiters ready.
fn replay_for(ready: u64) -> Lsn {
    Lsn(0x1_0000_0000 + ready * 64)
}

fn tick_cost(ready: u64, rounds: u32) -> (Duration, Duration) {
    let lsns = lsns();
    let (mut index_total, mut scan_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let (mut waiters, _index_receivers) = indexed(&lsns);
        let start = Instant::now();
        assert_eq!(
            waiters.release_up_to(replay_for(ready)).total() as u64,
            ready
        );
        index_total += start.elapsed();
        let (mut scan, _scan_receivers) = scanned(&lsns);
        let start = Instant::now();
        assert_eq!(scan.release_up_to(replay_for(ready)) as u64, ready);
        scan_total += start.elapsed();
    }
    (index_total / rounds, scan_total / rounds)
}

/// 16 threads hold all the waits; time from the tick to the last thread done. Which
/// thread holds which wait, and the order it takes them in, are random and unrelated to
/// the order either algorithm releases in (the index by LSN, the scan by insertion).
fn wake_latency(use_index: bool) -> Duration {
    let lsns = lsns();
    let (mut waiters, mut scan) = (
        Waiters::new(),
        LinearScan {
            requests: Vec::new(),
        },
    );
    let mut receivers: Vec<Receiver<Release>> = lsns
        .iter()
        .map(|&lsn| {
            if use_index {
                waiters.insert(lsn).1
            } else {
                scan.insert(lsn)
            }
        })
        .collect();
    // Threads get a random share, unrelated to insertion order (the scan's release
    // order) and LSN order (the index's).
    shuffle(&mut receivers, 0x2545_F491_4F6C_DD1D);
    let barrier = Arc::new(Barrier::new(17));
    let (done, finished) = bounded::<Instant>(16);
    let per_thread = receivers.len() / 16;
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let mut mine: Vec<_> = receivers.drain(..per_thread).collect();
            shuffle(&mut mine, 0xD1B5_4A32_D192_ED03);
            let (barrier, done) = (barrier.clone(), done.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for receiver in &mine {
                    receiver.recv().unwrap();
                }
                done.send(Instant::now()).unwrap();
            })
        })
        .collect();
    barrier.wait();
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    if use_index {
        waiters.release_up_to(Lsn(u64::MAX));
    } else {
        scan.release_up_to(Lsn(u64::MAX));
    }
    let last = (0..16).map(|_| finished.recv().unwrap()).max().unwrap();
    for thread in threads {
        thread.join().unwrap();
    }
    last - start
}

fn queries_per_second(conninfo: &str) {
    let runtime = Runtime::new();
    let tracker = LsnTracker::start(&runtime, TrackerConfig::new(conninfo)).expect("tracker");
    let window = Duration::from_secs(2);
    let measure = |label: &str| {
        let before = tracker.queries();
        std::thread::sleep(window);
        let rate = (tracker.queries() - before) as f64 / window.as_secs_f64();
        println!(
            "{:<44} {rate:>6.1} queries/s",
            format!("queries with {label} pending")
        );
    };
    measure("0 waits");
    // Positions the standby will not reach: the waits stay pending.
    let one = tracker.request_notification(Lsn(u64::MAX - 1));
    measure("1 wait");
    let many: Vec<_> = (0..WAITERS)
        .map(|i| tracker.request_notification(Lsn(u64::MAX - 2 - i)))
        .collect();
    measure("10,000 waits");
    drop((one, many));
    runtime.shutdown(Duration::from_secs(10)).unwrap();
}

fn report() {
    println!("\n== LSN tracker: waiter index vs the original linear scan (same run) ==");
    for ready in [1, 100, WAITERS] {
        let (index, scan) = tick_cost(ready, 20);
        println!(
            "{:<44} index {:>10.2?} | linear scan {:>10.2?} | ratio {:.3}",
            format!("tick, {ready} of {WAITERS} waiters ready"),
            index,
            scan,
            index.as_secs_f64() / scan.as_secs_f64()
        );
    }
    let (index, scan) = (wake_latency(true), wake_latency(false));
    println!(
        "{:<44} index {:>10.2?} | linear scan {:>10.2?} | ratio {:.3}",
        "tick to all 10,000 woken (16 threads)",
        index,
        scan,
        index.as_secs_f64() / scan.as_secs_f64()
    );
    match std::env::var("OTP_THREADS_PG_STANDBY") {
        Ok(conninfo) => queries_per_second(&conninfo),
        Err(_) => println!(
            "(queries per second: set OTP_THREADS_PG_STANDBY to measure against a real standby)"
        ),
    }
}

fn criterion_benches(c: &mut Criterion) {
    let lsns = lsns();
    let mut group = c.benchmark_group("LSN tick, 100 of 10,000 ready");
    group.bench_function("waiter index", |b| {
        b.iter_batched(
            || indexed(&lsns),
            |(mut waiters, receivers)| {
                black_box(waiters.release_up_to(replay_for(100)));
                receivers
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("linear scan (original)", |b| {
        b.iter_batched(
            || scanned(&lsns),
            |(mut scan, receivers)| {
                black_box(scan.release_up_to(replay_for(100)));
                receivers
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn main() {
    let report_only = std::env::args().any(|argument| argument == "report");
    if !report_only {
        let mut criterion = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .configure_from_args();
        criterion_benches(&mut criterion);
        criterion.final_summary();
    }
    report();
}
