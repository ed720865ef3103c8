//! LSN tracker benchmarks.
//!
//! 1. A tick: the replay position advances and the ready waiters are woken. The
//!    tracker's waiter index (ordered by LSN: O(k log n) for k ready of n) beside the
//!    original's algorithm, a linear scan over every request, on the same data: 10,000
//!    waiters on distinct LSNs, with 1, 100 and 10,000 of them ready. Reports the CPU time
//!    per tick and the ratio.
//! 2. Wake-up latency: 16 threads hold the 10,000 waits; time from the tick until every
//!    thread has seen all of its releases.
//! 3. With a real primary and standby (`OTP_THREADS_PG_PRIMARY`/`_STANDBY` set, e.g. by
//!    `bash scripts/services/postgres.sh start DIR && set -a && . DIR/env && set +a`),
//!    three trackers side by side in the same run: the seed's (fly_postgres's Tracker:
//!    a fixed 100 ms poll whether anyone waits or not, a linear scan, a query text
//!    prepared on every poll), modelled here as a plain thread; this crate's interval
//!    polling at the same 100 ms; and its long poll (2 s timeout, 2 ms nap).
//!    - release latency after replay (median, p99): a writer commits, waits, and notes
//!      when it is released; a watcher thread on its own standby connection notes when
//!      replay first passes the write (looking every 0.5 ms). Writes are paced by a
//!      random 0-150 ms gap, so that they arrive at random phases of a fixed poll.
//!    - queries per second during that writer's run, and with 0, 1 and 10,000 pending
//!      waits that replay never reaches (6 s windows).
//!    - release latency after replay with 10,000 concurrent waits (median, p99, max):
//!      replay is paused on the standby, one write is committed, 10,000 waits for it
//!      are registered and held by 16 threads; after a random 0-150 ms (a random phase
//!      of a fixed poll) replay is resumed, and each wait's latency is the time its
//!      thread saw it released minus the instant the watcher saw replay pass the
//!      write. 20 rounds, so 200,000 samples from 20 phases. Run right after the paced
//!      writer, before the pending-wait windows: a long poll left in flight for one of
//!      their unreachable positions would hold a lower wait until its timeout.
//!
//!    Ratios are this crate's figure over the seed model's.
//!
//! `cargo bench -p otp-threads-lsn --bench lsn` (add `-- report` for the report only).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use crossbeam_channel::{Receiver, Sender, bounded};
use otp_threads::Runtime;
use otp_threads_lsn::{
    Lsn, LsnTracker, Release, TrackerConfig, Wait, Waiters, install_await_replay_function,
    last_wal_replay_lsn, wal_wait_position,
};
use postgres::{Client, NoTls};

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

/// The seed's tracker, modelled: every 100 ms, whether anyone waits or not, one query
/// (its text prepared each time, as a plain `query` does), then a scan of every request.
struct SeedModel {
    requests: Arc<parking_lot::Mutex<LinearScan>>,
    queries: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SeedModel {
    const FREQUENCY: Duration = Duration::from_millis(100);

    fn start(standby: &str) -> SeedModel {
        let requests = Arc::new(parking_lot::Mutex::new(LinearScan {
            requests: Vec::new(),
        }));
        let queries = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut client = Client::connect(standby, NoTls).expect("seed model connects");
        let (r, q, s) = (requests.clone(), queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                q.fetch_add(1, Ordering::AcqRel);
                let replay = last_wal_replay_lsn(&mut client).expect("seed model polls");
                if let Some(replay) = replay {
                    r.lock().release_up_to(replay);
                }
                std::thread::sleep(Self::FREQUENCY);
            }
        });
        SeedModel {
            requests,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    fn wait(&self, lsn: Lsn, timeout: Duration) -> bool {
        let receiver = self.requests.lock().insert(lsn);
        receiver.recv_timeout(timeout).is_ok()
    }

    fn queries(&self) -> u64 {
        self.queries.load(Ordering::Acquire)
    }
}

impl Drop for SeedModel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Notes when the standby's replay first passes a target: the reference instant for
/// "release latency after replay".
struct ReplayWatcher {
    target: Arc<AtomicU64>,
    seen: Receiver<Instant>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReplayWatcher {
    fn start(standby: &str) -> ReplayWatcher {
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_tx, seen) = bounded(1);
        let mut client = Client::connect(standby, NoTls).expect("watcher connects");
        let statement = client
            .prepare("SELECT CAST(pg_last_wal_replay_lsn() AS TEXT)")
            .expect("prepare");
        let (t, s) = (target.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                let wanted = t.load(Ordering::Acquire);
                if wanted == u64::MAX {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                let text: Option<String> = client.query_one(&statement, &[]).unwrap().get(0);
                let replay = text.map(|t| Lsn::parse(&t).unwrap()).unwrap_or(Lsn::ZERO);
                if Lsn(wanted).is_replayed_by(replay) {
                    let at = Instant::now();
                    t.store(u64::MAX, Ordering::Release);
                    let _ = seen_tx.send(at);
                } else {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        });
        ReplayWatcher {
            target,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn watch(&self, lsn: Lsn) {
        while self.seen.try_recv().is_ok() {}
        self.target.store(lsn.0, Ordering::Release);
    }

    fn replayed_at(&self) -> Instant {
        self.seen
            .recv_timeout(Duration::from_secs(30))
            .expect("replay seen")
    }
}

impl Drop for ReplayWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Latency figures of one mode.
struct Latency {
    median: Duration,
    p99: Duration,
    queries_per_second: f64,
}

const LATENCY_WRITES: usize = 100;

/// A paced writer: write, wait (through `wait`), note release minus replay.
fn release_latency(
    primary: &mut Client,
    watcher: &ReplayWatcher,
    wait: &dyn Fn(Lsn) -> bool,
    queries: &dyn Fn() -> u64,
) -> Latency {
    let mut state = 0x853C_49E6_748F_EA9Bu64;
    let mut samples = Vec::with_capacity(LATENCY_WRITES);
    let (started, before) = (Instant::now(), queries());
    for i in 0..LATENCY_WRITES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_millis(state % 150));
        let lsn = commit_note(primary, &format!("write {i}"));
        watcher.watch(lsn);
        assert!(wait(lsn), "write {i} was not released");
        let released = Instant::now();
        let replayed = watcher.replayed_at();
        samples.push(released.saturating_duration_since(replayed));
    }
    let rate = (queries() - before) as f64 / started.elapsed().as_secs_f64();
    samples.sort();
    let percentile = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    Latency {
        median: percentile(50),
        p99: percentile(99),
        queries_per_second: rate,
    }
}

/// A registered wait, to be held by another thread: blocks until the wait ends and says
/// whether it was released by replay.
type HeldWait = Box<dyn FnOnce(Duration) -> bool + Send>;

/// Release latency figures of one mode with many waits for the same write.
struct ManyWaitsLatency {
    median: Duration,
    p99: Duration,
    max: Duration,
}

const MANY_WAITS: usize = 10_000;
const MANY_WAITS_ROUNDS: usize = 20;
const HOLDING_THREADS: usize = 16;

/// Pauses replay on `standby` and returns once the server says it is paused.
fn pause_replay(standby: &mut Client) {
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let started = Instant::now();
    loop {
        let state: String = standby
            .query_one("SELECT pg_get_wal_replay_pause_state()", &[])
            .unwrap()
            .get(0);
        if state == "paused" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replay did not pause: {state}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Release latency after replay with [`MANY_WAITS`] concurrent waits for one write,
/// over [`MANY_WAITS_ROUNDS`] rounds (see the module docs).
fn release_latency_under_many_waits(
    primary: &mut Client,
    standby: &mut Client,
    watcher: &ReplayWatcher,
    register: &dyn Fn(Lsn) -> HeldWait,
) -> ManyWaitsLatency {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut samples = Vec::with_capacity(MANY_WAITS * MANY_WAITS_ROUNDS);
    for round in 0..MANY_WAITS_ROUNDS {
        pause_replay(standby);
        let lsn = commit_note(primary, &format!("many waits, round {round}"));
        let mut waits: Vec<HeldWait> = (0..MANY_WAITS).map(|_| register(lsn)).collect();
        let barrier = Arc::new(Barrier::new(HOLDING_THREADS + 1));
        let per_thread = MANY_WAITS / HOLDING_THREADS;
        let threads: Vec<_> = (0..HOLDING_THREADS)
            .map(|_| {
                let mine: Vec<HeldWait> = waits.drain(..per_thread).collect();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    mine.into_iter()
                        .map(|wait| {
                            assert!(wait(Duration::from_secs(30)), "a wait was not released");
                            Instant::now()
                        })
                        .collect::<Vec<Instant>>()
                })
            })
            .collect();
        barrier.wait();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_millis(state % 150));
        watcher.watch(lsn);
        standby
            .batch_execute("SELECT pg_wal_replay_resume()")
            .unwrap();
        let replayed = watcher.replayed_at();
        for thread in threads {
            for released in thread.join().unwrap() {
                samples.push(released.saturating_duration_since(replayed));
            }
        }
    }
    samples.sort();
    let percentile = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    ManyWaitsLatency {
        median: percentile(50),
        p99: percentile(99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

/// Queries per second with 0, 1 and 10,000 pending waits that replay never reaches.
fn idle_and_pending_rates(
    register: &dyn Fn(Lsn) -> Box<dyn std::any::Any>,
    queries: &dyn Fn() -> u64,
) -> [f64; 3] {
    // Three long-poll timeouts: a window sees every query the long poll re-issues.
    let window = Duration::from_secs(6);
    let rate = || {
        let before = queries();
        std::thread::sleep(window);
        (queries() - before) as f64 / window.as_secs_f64()
    };
    let none = rate();
    let one = register(Lsn(u64::MAX - 1));
    let single = rate();
    let many: Vec<_> = (0..WAITERS)
        .map(|i| register(Lsn(u64::MAX - 2 - i)))
        .collect();
    let all = rate();
    drop((one, many));
    [none, single, all]
}

/// Commits one row on the primary; the position its commit is awaited at.
fn commit_note(primary: &mut Client, note: &str) -> Lsn {
    primary
        .execute(
            "INSERT INTO otp_threads_lsn_bench (note) VALUES ($1)",
            &[&note],
        )
        .unwrap();
    wal_wait_position(primary).unwrap()
}

fn with_service(primary_conninfo: &str, standby: &str) {
    let mut primary = Client::connect(primary_conninfo, NoTls).expect("primary");
    primary
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS otp_threads_lsn_bench (id BIGSERIAL PRIMARY KEY, note TEXT)",
        )
        .unwrap();
    let installed = install_await_replay_function(&mut primary).unwrap();
    let watcher = ReplayWatcher::start(standby);
    watcher.watch(installed);
    watcher.replayed_at();

    let runtime = Runtime::new();
    let seed = SeedModel::start(standby);
    let seed_latency = release_latency(
        &mut primary,
        &watcher,
        &|lsn| seed.wait(lsn, Duration::from_secs(10)),
        &|| seed.queries(),
    );
    let mut control = Client::connect(standby, NoTls).expect("standby control connection");
    let seed_many =
        release_latency_under_many_waits(&mut primary, &mut control, &watcher, &|lsn| {
            let receiver = seed.requests.lock().insert(lsn);
            Box::new(move |timeout| receiver.recv_timeout(timeout).is_ok())
        });
    let seed_rates = idle_and_pending_rates(
        &|lsn| {
            let receiver = seed.requests.lock().insert(lsn);
            Box::new(receiver)
        },
        &|| seed.queries(),
    );
    drop(seed);

    let mut rows = Vec::new();
    for (label, config) in [
        (
            "interval polling, 100 ms",
            TrackerConfig::new(standby).frequency(Duration::from_millis(100)),
        ),
        (
            "long poll, 2 s / 2 ms nap",
            TrackerConfig::new(standby).long_poll(Duration::from_secs(2), Duration::from_millis(2)),
        ),
    ] {
        let tracker = LsnTracker::start(&runtime, config).expect("tracker");
        let latency = release_latency(
            &mut primary,
            &watcher,
            &|lsn| tracker.request_and_await(lsn, Some(Duration::from_secs(10))) == Wait::Ready,
            &|| tracker.queries(),
        );
        let many = release_latency_under_many_waits(&mut primary, &mut control, &watcher, &|lsn| {
            let notification = tracker.request_notification(lsn);
            Box::new(move |timeout| notification.wait(timeout) == Wait::Ready)
        });
        let rates =
            idle_and_pending_rates(&|lsn| Box::new(tracker.request_notification(lsn)), &|| {
                tracker.queries()
            });
        tracker.stop(Duration::from_secs(10)).unwrap();
        rows.push((label, latency, rates, many));
    }
    runtime.shutdown(Duration::from_secs(10)).unwrap();

    println!("\n== Release latency after replay, {LATENCY_WRITES} paced writes (same run) ==");
    println!(
        "{:<30} {:>10} {:>10} {:>12}",
        "tracker", "median", "p99", "queries/s"
    );
    let print = |label: &str, l: &Latency| {
        println!(
            "{label:<30} {:>10.2?} {:>10.2?} {:>12.1}",
            l.median, l.p99, l.queries_per_second
        )
    };
    print("seed model, fixed 100 ms", &seed_latency);
    for (label, latency, _, _) in &rows {
        print(label, latency);
        println!(
            "{:<30} {:>10.3} {:>10.3} {:>12.3}",
            "  ratio to the seed model",
            latency.median.as_secs_f64() / seed_latency.median.as_secs_f64(),
            latency.p99.as_secs_f64() / seed_latency.p99.as_secs_f64(),
            latency.queries_per_second / seed_latency.queries_per_second
        );
    }
    println!("\n== Queries/s by pending waits (6 s windows, same run) ==");
    println!(
        "{:<30} {:>10} {:>10} {:>12}",
        "tracker", "0 waits", "1 wait", "10,000 waits"
    );
    println!(
        "{:<30} {:>10.1} {:>10.1} {:>12.1}",
        "seed model, fixed 100 ms", seed_rates[0], seed_rates[1], seed_rates[2]
    );
    for (label, _, rates, _) in &rows {
        println!(
            "{label:<30} {:>10.1} {:>10.1} {:>12.1}",
            rates[0], rates[1], rates[2]
        );
        println!(
            "{:<30} {:>10.3} {:>10.3} {:>12.3}",
            "  ratio to the seed model",
            rates[0] / seed_rates[0],
            rates[1] / seed_rates[1],
            rates[2] / seed_rates[2]
        );
    }
    let many: Vec<(&str, ManyWaitsLatency)> = rows
        .into_iter()
        .map(|(label, _, _, many)| (label, many))
        .collect();
    print_many_waits(&seed_many, &many);
}

fn print_many_waits(seed: &ManyWaitsLatency, rows: &[(&str, ManyWaitsLatency)]) {
    println!(
        "\n== Release latency after replay, {MANY_WAITS} concurrent waits for one write, \
         {MANY_WAITS_ROUNDS} rounds (same run) =="
    );
    println!(
        "{:<30} {:>10} {:>10} {:>10}",
        "tracker", "median", "p99", "max"
    );
    let print = |label: &str, l: &ManyWaitsLatency| {
        println!(
            "{label:<30} {:>10.2?} {:>10.2?} {:>10.2?}",
            l.median, l.p99, l.max
        )
    };
    print("seed model, fixed 100 ms", seed);
    for (label, many) in rows {
        print(label, many);
        println!(
            "{:<30} {:>10.3} {:>10.3} {:>10.3}",
            "  ratio to the seed model",
            many.median.as_secs_f64() / seed.median.as_secs_f64(),
            many.p99.as_secs_f64() / seed.p99.as_secs_f64(),
            many.max.as_secs_f64() / seed.max.as_secs_f64()
        );
    }
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
    match (
        std::env::var("OTP_THREADS_PG_PRIMARY"),
        std::env::var("OTP_THREADS_PG_STANDBY"),
    ) {
        (Ok(primary), Ok(standby)) => with_service(&primary, &standby),
        _ => println!(
            "(latency and queries per second: set OTP_THREADS_PG_PRIMARY and \
             OTP_THREADS_PG_STANDBY (scripts/services/postgres.sh) to measure on a real pair)"
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
