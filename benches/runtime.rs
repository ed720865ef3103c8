//! Core runtime benchmarks, each workload beside the same workload on raw
//! `std::thread` + `crossbeam-channel`, measured in the same run.
//!
//! Criterion measures each side; then a report measures both sides again, back to
//! back, and prints their ratio, since on a noisy VM only a ratio from one run means
//! anything. Workloads (issue targets in brackets):
//! - W1 call round trip, 100,000 back-to-back calls: median, mean, p99 [mean <= 1.5x raw]
//! - W1i the same with 1 ms idle before each call [<= 1.2x raw]
//! - W2 cast throughput, 1,000,000 messages [>= 0.7x raw]
//! - W3 spawn + exit of 10,000 workers [<= 0.2x raw spawn + join]
//! - W4 kill -> DOWN at a separate watcher: median [<= 0.35x raw signal-and-exit]; the raw
//!   side is measured both ways a watcher can learn of a raw thread's death: its join
//!   returning (proof of exit, like a DOWN: the ratio the target is checked against) and a
//!   message it sends just before exiting
//! - W5 10,000 idle workers: resident memory per worker [<= 64 KiB]
//!
//! `cargo bench --bench runtime` runs everything; `cargo bench --bench runtime -- report`
//! runs only the ratio report; `-- --quick` shortens it.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use otp_threads::{Context, ExitReason, ReplyTo, Runtime, RuntimeHandle, Step, Worker, WorkerRef};

// ---------------------------------------------------------------- workers

/// Answers calls with the request plus one; sums casts.
struct Echo {
    sum: u64,
}

impl Worker for Echo {
    type Call = u64;
    type Reply = u64;
    type Cast = u64;
    type Info = ();
    type Continue = ();

    fn handle_call(
        &mut self,
        request: u64,
        reply: ReplyTo<u64>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        // A request of u64::MAX asks for the sum of the casts so far.
        reply.reply(if request == u64::MAX {
            self.sum
        } else {
            request + 1
        });
        Step::Next
    }

    fn handle_cast(&mut self, value: u64, _: &mut Context<Self>) -> Step<Self> {
        self.sum += value;
        Step::Next
    }
}

/// Does nothing; used for spawn, exit and kill.
struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

// ---------------------------------------------------------------- raw baselines

enum RawRequest {
    Call(u64, Sender<u64>),
    Cast(u64),
    Sum(Sender<u64>),
}

/// A plain thread serving requests from a channel: the raw request/reply server.
fn raw_server() -> (Sender<RawRequest>, thread::JoinHandle<()>) {
    let (sender, receiver) = unbounded::<RawRequest>();
    let handle = thread::spawn(move || {
        let mut sum = 0u64;
        for request in receiver {
            match request {
                RawRequest::Call(value, reply) => {
                    let _ = reply.send(value + 1);
                }
                RawRequest::Cast(value) => sum += value,
                RawRequest::Sum(reply) => {
                    let _ = reply.send(sum);
                }
            }
        }
    });
    (sender, handle)
}

fn raw_call(server: &Sender<RawRequest>, value: u64) -> u64 {
    let (reply, answer) = bounded(1);
    server.send(RawRequest::Call(value, reply)).unwrap();
    answer.recv().unwrap()
}

// ---------------------------------------------------------------- workloads

fn otp_calls(worker: &WorkerRef<Echo>, count: u64, idle: Duration, samples: &mut Vec<Duration>) {
    for i in 0..count {
        if !idle.is_zero() {
            thread::sleep(idle);
        }
        let start = Instant::now();
        black_box(worker.call(i).unwrap());
        samples.push(start.elapsed());
    }
}

fn raw_calls(server: &Sender<RawRequest>, count: u64, idle: Duration, samples: &mut Vec<Duration>) {
    for i in 0..count {
        if !idle.is_zero() {
            thread::sleep(idle);
        }
        let start = Instant::now();
        black_box(raw_call(server, i));
        samples.push(start.elapsed());
    }
}

fn otp_casts(worker: &WorkerRef<Echo>, count: u64) -> Duration {
    let before = worker.call(u64::MAX).unwrap();
    let start = Instant::now();
    for _ in 0..count {
        worker.cast(1);
    }
    // The call comes after every cast in the mailbox: it returns when all are handled.
    let after = worker.call(u64::MAX).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(after - before, count);
    elapsed
}

fn raw_casts(server: &Sender<RawRequest>, count: u64) -> Duration {
    let sum = |server: &Sender<RawRequest>| {
        let (reply, answer) = bounded(1);
        server.send(RawRequest::Sum(reply)).unwrap();
        answer.recv().unwrap()
    };
    let before = sum(server);
    let start = Instant::now();
    for _ in 0..count {
        server.send(RawRequest::Cast(1)).unwrap();
    }
    let after = sum(server);
    let elapsed = start.elapsed();
    assert_eq!(after - before, count);
    elapsed
}

/// Spawn a worker (returns after its init), then stop it and wait for its exit.
fn otp_spawn_exit(runtime: &RuntimeHandle, count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let worker = runtime.spawn_worker(Idle).unwrap();
        worker
            .stop(ExitReason::Normal, Duration::from_secs(10))
            .unwrap();
    }
    start.elapsed()
}

/// Spawn a thread that acknowledges its start, then exits; join it.
fn raw_spawn_join(count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let (ack, acked) = bounded::<()>(1);
        let handle = thread::spawn(move || {
            let _ = ack.send(());
        });
        acked.recv().unwrap();
        handle.join().unwrap();
    }
    start.elapsed()
}

/// Kill a worker; time until a watcher thread blocked on its monitor has the DOWN.
fn otp_kill_to_down(runtime: &RuntimeHandle, rounds: usize) -> Vec<Duration> {
    let (jobs, job_queue) = unbounded::<otp_threads::Monitor>();
    let (seen, seen_at) = unbounded::<Instant>();
    let watcher = thread::spawn(move || {
        for monitor in job_queue {
            monitor.receiver().recv().unwrap();
            seen.send(Instant::now()).unwrap();
        }
    });
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let worker = runtime.spawn_worker(Idle).unwrap();
        jobs.send(runtime.monitor(&worker.pid())).unwrap();
        // Let the watcher block on the monitor, as an idle watcher would be.
        thread::sleep(Duration::from_micros(200));
        let start = Instant::now();
        runtime.kill(&worker.pid());
        samples.push(seen_at.recv().unwrap() - start);
    }
    drop(jobs);
    watcher.join().unwrap();
    samples
}

/// How a watcher learns that a raw thread is gone.
#[derive(Clone, Copy)]
enum RawDeath {
    /// The thread sends a message just before it exits.
    Message,
    /// The watcher joins the thread: proof that it has exited, as a DOWN is.
    Join,
}

/// A thread told to die exits; time until a watcher thread knows.
fn raw_signal_and_exit(rounds: usize, death: RawDeath) -> Vec<Duration> {
    enum Watch {
        Message(Receiver<()>),
        Join(thread::JoinHandle<()>),
    }
    let (jobs, job_queue) = unbounded::<Watch>();
    let (seen, seen_at) = unbounded::<Instant>();
    let watcher = thread::spawn(move || {
        for watch in job_queue {
            match watch {
                Watch::Message(exited) => {
                    let _ = exited.recv();
                }
                Watch::Join(handle) => handle.join().unwrap(),
            }
            seen.send(Instant::now()).unwrap();
        }
    });
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (kill, killed) = bounded::<()>(1);
        let (exit_signal, exited) = bounded::<()>(1);
        let victim = thread::spawn(move || {
            let _ = killed.recv();
            let _ = exit_signal.send(());
        });
        match death {
            RawDeath::Message => jobs.send(Watch::Message(exited)).unwrap(),
            RawDeath::Join => jobs.send(Watch::Join(victim)).unwrap(),
        }
        thread::sleep(Duration::from_micros(200));
        let start = Instant::now();
        kill.send(()).unwrap();
        samples.push(seen_at.recv().unwrap() - start);
    }
    drop(jobs);
    watcher.join().unwrap();
    samples
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

const W5_STACK: usize = 256 * 1024;

fn otp_idle_workers_rss(count: usize) -> u64 {
    let runtime = Runtime::builder().stack_size(W5_STACK).build().unwrap();
    let before = resident_bytes();
    let workers: Vec<_> = (0..count)
        .map(|_| runtime.spawn_worker(Idle).unwrap())
        .collect();
    let after = resident_bytes();
    drop(workers);
    runtime.shutdown(Duration::from_secs(30)).unwrap();
    (after.saturating_sub(before)) / count as u64
}

fn raw_idle_threads_rss(count: usize) -> u64 {
    let before = resident_bytes();
    let (stop, stopped) = unbounded::<()>();
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let stopped = stopped.clone();
            thread::Builder::new()
                .stack_size(W5_STACK)
                .spawn(move || {
                    let _ = stopped.recv();
                })
                .unwrap()
        })
        .collect();
    let after = resident_bytes();
    drop(stop);
    for thread in threads {
        thread.join().unwrap();
    }
    (after.saturating_sub(before)) / count as u64
}

// ---------------------------------------------------------------- report

struct Stats {
    median: Duration,
    mean: Duration,
    p99: Duration,
}

fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Stats {
        median: samples[samples.len() / 2],
        mean: total / samples.len() as u32,
        p99: samples[samples.len() * 99 / 100],
    }
}

fn print_latency(name: &str, otp: &Stats, raw: &Stats, target: &str) {
    println!(
        "{name:<34} otp median {:>9.2?} mean {:>9.2?} p99 {:>9.2?} | raw median {:>9.2?} mean {:>9.2?} p99 {:>9.2?} | mean ratio {:.2} median ratio {:.2} ({target})",
        otp.median,
        otp.mean,
        otp.p99,
        raw.median,
        raw.mean,
        raw.p99,
        otp.mean.as_secs_f64() / raw.mean.as_secs_f64(),
        otp.median.as_secs_f64() / raw.median.as_secs_f64(),
    );
}

fn report(quick: bool) {
    let scale = if quick { 10 } else { 1 };
    println!("\n== otp-threads vs raw std::thread + crossbeam-channel (same run) ==");
    let runtime = Runtime::new();

    // W1
    let calls = 100_000 / scale as u64;
    let echo = runtime.spawn_worker(Echo { sum: 0 }).unwrap();
    let (server, server_thread) = raw_server();
    let (mut otp, mut raw) = (Vec::new(), Vec::new());
    otp_calls(&echo, calls / 10, Duration::ZERO, &mut Vec::new());
    raw_calls(&server, calls / 10, Duration::ZERO, &mut Vec::new());
    // Interleave halves so drift on the machine hits both sides alike.
    for _ in 0..2 {
        otp_calls(&echo, calls / 2, Duration::ZERO, &mut otp);
        raw_calls(&server, calls / 2, Duration::ZERO, &mut raw);
    }
    print_latency(
        "W1 call round trip",
        &stats(&mut otp),
        &stats(&mut raw),
        "target mean <= 1.5",
    );

    // W1i
    let idle_calls = 2_000 / scale as u64;
    let (mut otp, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        otp_calls(&echo, idle_calls / 2, Duration::from_millis(1), &mut otp);
        raw_calls(&server, idle_calls / 2, Duration::from_millis(1), &mut raw);
    }
    print_latency(
        "W1i call after 1 ms idle",
        &stats(&mut otp),
        &stats(&mut raw),
        "target mean <= 1.2",
    );

    // W2
    let casts = 1_000_000 / scale as u64;
    otp_casts(&echo, casts / 10);
    raw_casts(&server, casts / 10);
    let otp = otp_casts(&echo, casts);
    let raw = raw_casts(&server, casts);
    let otp_rate = casts as f64 / otp.as_secs_f64();
    let raw_rate = casts as f64 / raw.as_secs_f64();
    println!(
        "{:<34} otp {:>6.2} M/s | raw {:>6.2} M/s | ratio {:.2} (target >= 0.7)",
        "W2 cast throughput",
        otp_rate / 1e6,
        raw_rate / 1e6,
        otp_rate / raw_rate
    );
    drop(server);
    server_thread.join().unwrap();

    // W3
    let spawns = 10_000 / scale;
    otp_spawn_exit(&runtime, spawns / 10);
    raw_spawn_join(spawns / 10);
    let otp = otp_spawn_exit(&runtime, spawns) / spawns as u32;
    let raw = raw_spawn_join(spawns) / spawns as u32;
    println!(
        "{:<34} otp {:>9.2?} | raw {:>9.2?} per cycle | ratio {:.2} (target <= 0.2)",
        "W3 spawn + exit",
        otp,
        raw,
        otp.as_secs_f64() / raw.as_secs_f64()
    );

    // W4
    let rounds = 2_000 / scale;
    let mut otp = otp_kill_to_down(&runtime, rounds);
    let mut message = raw_signal_and_exit(rounds, RawDeath::Message);
    let mut join = raw_signal_and_exit(rounds, RawDeath::Join);
    let (otp, message, join) = (stats(&mut otp), stats(&mut message), stats(&mut join));
    println!(
        "{:<34} otp median {:>9.2?} p99 {:>9.2?} | raw join median {:>9.2?} p99 {:>9.2?} | median ratio {:.2} (target <= 0.35)",
        "W4 kill -> DOWN at a watcher",
        otp.median,
        otp.p99,
        join.median,
        join.p99,
        otp.median.as_secs_f64() / join.median.as_secs_f64()
    );
    println!(
        "{:<34} raw message-before-exit median {:>9.2?} p99 {:>9.2?} | median ratio {:.2}",
        "",
        message.median,
        message.p99,
        otp.median.as_secs_f64() / message.median.as_secs_f64()
    );
    runtime.shutdown(Duration::from_secs(30)).unwrap();

    // W5
    let idle = 10_000 / scale;
    let otp = otp_idle_workers_rss(idle);
    let raw = raw_idle_threads_rss(idle);
    println!(
        "{:<34} otp {:>6.1} KiB | raw thread {:>6.1} KiB per worker, stack {} KiB | ratio {:.2} (target <= 64 KiB)",
        "W5 idle workers resident memory",
        otp as f64 / 1024.0,
        raw as f64 / 1024.0,
        W5_STACK / 1024,
        otp as f64 / raw.max(1) as f64
    );
}

// ---------------------------------------------------------------- criterion

fn criterion_benches(c: &mut Criterion) {
    let runtime = Runtime::new();
    let echo = runtime.spawn_worker(Echo { sum: 0 }).unwrap();
    let (server, server_thread) = raw_server();

    let mut group = c.benchmark_group("W1 call round trip");
    group.bench_function("otp-threads", |b| {
        b.iter(|| echo.call(black_box(1)).unwrap())
    });
    group.bench_function("raw", |b| b.iter(|| raw_call(&server, black_box(1))));
    group.finish();

    let mut group = c.benchmark_group("W2 10k casts");
    group.throughput(criterion::Throughput::Elements(10_000));
    group.bench_function("otp-threads", |b| b.iter(|| otp_casts(&echo, 10_000)));
    group.bench_function("raw", |b| b.iter(|| raw_casts(&server, 10_000)));
    group.finish();

    let mut group = c.benchmark_group("W3 spawn + exit");
    let handle = runtime.handle();
    group.bench_function("otp-threads", |b| {
        b.iter_custom(|n| otp_spawn_exit(&handle, n as usize))
    });
    group.bench_function("raw", |b| b.iter_custom(|n| raw_spawn_join(n as usize)));
    group.finish();

    drop(server);
    server_thread.join().unwrap();
    runtime.shutdown(Duration::from_secs(30)).unwrap();
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let quick = arguments.iter().any(|argument| argument == "--quick");
    let report_only = arguments.iter().any(|argument| argument == "report");
    if !report_only {
        let mut criterion = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .configure_from_args();
        criterion_benches(&mut criterion);
        criterion.final_summary();
    }
    report(quick);
}
