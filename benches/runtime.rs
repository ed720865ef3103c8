//! Core runtime benchmarks, each workload beside the same workload on raw
//! `std::thread` + `crossbeam-channel`, measured in the same run.
//!
//! Criterion measures each side; then a report measures both sides again, back to
//! back, and prints their ratio, since on a noisy VM only a ratio from one run means
//! anything. The workloads and their like-for-like raw baselines are in
//! `benches/support/workloads.rs` (shared with the peer comparison, `benches/peers`):
//! - W1 call round trip, 100,000 back-to-back calls: median, mean, p99; raw: a server
//!   with two fixed channels (second line: a reply channel per call)
//! - W1i the same with 1 ms idle before each call, one call of each side in turn
//! - W2 cast throughput, 1,000,000 messages
//! - W3 spawn + exit of 10,000 workers; raw: a parked pool thread receiving a boxed job
//!   (second line: a fresh thread spawned and joined)
//! - W4 kill -> DOWN at a separate watcher: median; raw: the victim sends a message just
//!   before it exits (second line: the watcher joins it; third: the floor, one message to
//!   a blocked thread; fourth: kill -> DOWN and that floor in turn, round by round, with
//!   a worker spawned before each, so that both meet the same placement of the watcher)
//! - W5 10,000 idle workers: resident memory per worker, each side in a fresh process
//! - W7 shutdown of a runtime holding 10,000 idle workers, every thread joined; raw: as
//!   many parked threads told to finish and joined (the OS's floor)
//! - W1i beside 10,000 idle workers (raw: parked threads), each side in a fresh
//!   process: what a crowd of parked threads costs every wake-up in the process, which
//!   the runtime's enlarged futex table takes away (`src/runtime/futex_hash.rs`)
//!
//! - W1 and W2 again on a runtime built with `introspection(false)` (the observer's
//!   bookkeeping off), beside the default runtime (on): the ratio on / off is what
//!   leaving introspection on costs
//!
//! `cargo bench --bench runtime` runs everything; `cargo bench --bench runtime -- report`
//! runs only the ratio report; `-- introspection` only the introspection on / off
//! comparison (criterion and report); `-- --quick` shortens it.

#[path = "support/workloads.rs"]
mod workloads;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use otp_threads::Runtime;
use workloads::*;

// ---------------------------------------------------------------- report

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
    let pair = RawPair::start();
    let server = RawServer::start();
    let (mut otp, mut raw, mut raw_per_call) = (Vec::new(), Vec::new(), Vec::new());
    otp_calls(&echo, calls / 10, Duration::ZERO, &mut Vec::new());
    pair.calls(calls / 10, Duration::ZERO, &mut Vec::new());
    server.calls(calls / 10, Duration::ZERO, &mut Vec::new());
    // Interleave halves so drift on the machine hits every side alike.
    for _ in 0..2 {
        otp_calls(&echo, calls / 2, Duration::ZERO, &mut otp);
        pair.calls(calls / 2, Duration::ZERO, &mut raw);
        server.calls(calls / 2, Duration::ZERO, &mut raw_per_call);
    }
    let otp = stats(&mut otp);
    print_latency(
        "W1 call round trip",
        &otp,
        &stats(&mut raw),
        "target median <= 1.5, mean <= 2",
    );
    print_latency(
        "  raw, a reply channel per call",
        &otp,
        &stats(&mut raw_per_call),
        "information",
    );

    // W1i: one call of each side in turn, so that both see the same state of the
    // machine (which core the server wakes on drifts over seconds on these VMs).
    let idle_calls = 2_000 / scale as u64;
    let (mut otp, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..idle_calls {
        otp_calls(&echo, 1, Duration::from_millis(1), &mut otp);
        pair.calls(1, Duration::from_millis(1), &mut raw);
    }
    print_latency(
        "W1i call after 1 ms idle",
        &stats(&mut otp),
        &stats(&mut raw),
        "target mean <= 1.1",
    );
    pair.stop();

    // W2
    let casts = 1_000_000 / scale as u64;
    otp_casts(&echo, casts / 10);
    server.casts(casts / 10);
    let otp = otp_casts(&echo, casts);
    let raw = server.casts(casts);
    let otp_rate = casts as f64 / otp.as_secs_f64();
    let raw_rate = casts as f64 / raw.as_secs_f64();
    println!(
        "{:<34} otp {:>6.2} M/s | raw {:>6.2} M/s | ratio {:.2} (no regression)",
        "W2 cast throughput",
        otp_rate / 1e6,
        raw_rate / 1e6,
        otp_rate / raw_rate
    );
    server.stop();

    // W3
    let spawns = 10_000 / scale;
    let pool = RawPool::start();
    otp_spawn_exit(&runtime, spawns / 10);
    pool.spawn_exit(spawns / 10);
    raw_spawn_join(spawns / 10);
    let otp = otp_spawn_exit(&runtime, spawns) / spawns as u32;
    let raw = pool.spawn_exit(spawns) / spawns as u32;
    let fresh = raw_spawn_join(spawns) / spawns as u32;
    pool.stop();
    println!(
        "{:<34} otp {:>9.2?} | raw pool hand-off {:>9.2?} per cycle | ratio {:.2} (no regression)",
        "W3 spawn + exit",
        otp,
        raw,
        ratio(otp, raw)
    );
    println!(
        "{:<34} raw fresh thread spawn + join {:>9.2?} | ratio {:.2}",
        "",
        fresh,
        ratio(otp, fresh)
    );

    // W4
    let rounds = 2_000 / scale;
    let mut otp = otp_kill_to_down(&runtime, rounds);
    let mut message = raw_signal_and_exit(rounds, RawDeath::Message);
    let mut join = raw_signal_and_exit(rounds, RawDeath::Join);
    let mut floor = raw_one_wake(rounds);
    let (otp, message, join, floor) = (
        stats(&mut otp),
        stats(&mut message),
        stats(&mut join),
        stats(&mut floor),
    );
    println!(
        "{:<34} otp median {:>9.2?} p99 {:>9.2?} | raw message-before-exit median {:>9.2?} p99 {:>9.2?} | median ratio {:.2}",
        "W4 kill -> DOWN at a watcher",
        otp.median,
        otp.p99,
        message.median,
        message.p99,
        ratio(otp.median, message.median)
    );
    println!(
        "{:<34} raw join median {:>9.2?} p99 {:>9.2?} | median ratio {:.2}",
        "",
        join.median,
        join.p99,
        ratio(otp.median, join.median)
    );
    println!(
        "{:<34} floor, one wake of a blocked thread: median {:>9.2?} p99 {:>9.2?} | median ratio {:.2}",
        "",
        floor.median,
        floor.p99,
        ratio(otp.median, floor.median)
    );
    let (mut kills, mut wakes) = otp_kill_and_one_wake(&runtime, rounds);
    let (kills, wakes) = (stats(&mut kills), stats(&mut wakes));
    println!(
        "{:<34} in turn with the floor under the same conditions: kill -> DOWN median {:>9.2?} | one wake median {:>9.2?} | median ratio {:.2}",
        "",
        kills.median,
        wakes.median,
        ratio(kills.median, wakes.median)
    );
    runtime.shutdown(Duration::from_secs(30)).unwrap();

    // W7
    let idle = 10_000 / scale;
    let shutdown = otp_shutdown_idle(idle);
    let raw = raw_shutdown_idle(idle);
    println!(
        "{:<34} otp {:>9.2?} | raw {:>9.2?} for {idle} idle workers, every thread joined | ratio {:.2} (target <= 200 ms)",
        "W7 shutdown",
        shutdown,
        raw,
        ratio(shutdown, raw)
    );

    // W5, each side in a fresh process of its own.
    match (measure_in_child("otp", idle), measure_in_child("raw", idle)) {
        (Some(otp), Some(raw)) => println!(
            "{:<34} otp {:>6.1} KiB | raw thread {:>6.1} KiB per worker, stack {} KiB, each in a fresh process | ratio {:.2} (target <= 8 KiB)",
            "W5 idle workers resident memory",
            otp / 1024.0,
            raw / 1024.0,
            W5_STACK / 1024,
            otp / raw.max(1.0)
        ),
        _ => println!("W5 not measured: a child process gave no figure"),
    }

    // W1i beside idle workers, each side in a fresh process of its own.
    match (
        measure_in_child("crowd-otp", idle),
        measure_in_child("crowd-raw", idle),
    ) {
        (Some(otp), Some(raw)) => println!(
            "{:<34} otp median {:>9.2?} | raw median {:>9.2?}, beside {idle} idle workers, each in a fresh process | ratio {:.2} (information: the futex table)",
            "W1i beside idle workers",
            Duration::from_nanos(otp as u64),
            Duration::from_nanos(raw as u64),
            otp / raw.max(1.0)
        ),
        _ => println!("W1i beside idle workers not measured: a child process gave no figure"),
    }
}

/// Calls of W1i beside idle workers, per side.
const CROWD_CALLS: u64 = 1_000;

/// W1 and W2 with introspection on (the default) and off, interleaved in one run.
fn introspection_report(quick: bool) {
    let scale = if quick { 10 } else { 1 };
    println!("\n== introspection on vs off (same run; ratio on / off, 1.00 = no cost) ==");
    let on = Runtime::new();
    let off = Runtime::builder().introspection(false).build().unwrap();
    let echo_on = on.spawn_worker(Echo { sum: 0 }).unwrap();
    let echo_off = off.spawn_worker(Echo { sum: 0 }).unwrap();

    let calls = 100_000 / scale as u64;
    otp_calls(&echo_on, calls / 10, Duration::ZERO, &mut Vec::new());
    otp_calls(&echo_off, calls / 10, Duration::ZERO, &mut Vec::new());
    let (mut with, mut without) = (Vec::new(), Vec::new());
    // Interleaved quarters, so drift on the machine hits both sides alike.
    for _ in 0..4 {
        otp_calls(&echo_on, calls / 4, Duration::ZERO, &mut with);
        otp_calls(&echo_off, calls / 4, Duration::ZERO, &mut without);
    }
    let (with, without) = (stats(&mut with), stats(&mut without));
    println!(
        "{:<34} on median {:>9.2?} mean {:>9.2?} p99 {:>9.2?} | off median {:>9.2?} mean {:>9.2?} p99 {:>9.2?} | mean ratio {:.3} median ratio {:.3}",
        "W1 call round trip",
        with.median,
        with.mean,
        with.p99,
        without.median,
        without.mean,
        without.p99,
        ratio(with.mean, without.mean),
        ratio(with.median, without.median),
    );

    let casts = 1_000_000 / scale as u64;
    otp_casts(&echo_on, casts / 10);
    otp_casts(&echo_off, casts / 10);
    let (mut with, mut without) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..4 {
        with += otp_casts(&echo_on, casts / 4);
        without += otp_casts(&echo_off, casts / 4);
    }
    let with_rate = casts as f64 / with.as_secs_f64();
    let without_rate = casts as f64 / without.as_secs_f64();
    println!(
        "{:<34} on {:>6.2} M/s | off {:>6.2} M/s | ratio on / off {:.3}",
        "W2 cast throughput",
        with_rate / 1e6,
        without_rate / 1e6,
        with_rate / without_rate
    );
    on.shutdown(Duration::from_secs(30)).unwrap();
    off.shutdown(Duration::from_secs(30)).unwrap();
}

// ---------------------------------------------------------------- criterion

fn introspection_benches(c: &mut Criterion) {
    let on = Runtime::new();
    let off = Runtime::builder().introspection(false).build().unwrap();
    let echo_on = on.spawn_worker(Echo { sum: 0 }).unwrap();
    let echo_off = off.spawn_worker(Echo { sum: 0 }).unwrap();

    let mut group = c.benchmark_group("W1 call round trip, introspection");
    group.bench_function("on", |b| b.iter(|| echo_on.call(black_box(1)).unwrap()));
    group.bench_function("off", |b| b.iter(|| echo_off.call(black_box(1)).unwrap()));
    group.finish();

    let mut group = c.benchmark_group("W2 10k casts, introspection");
    group.throughput(criterion::Throughput::Elements(10_000));
    group.bench_function("on", |b| b.iter(|| otp_casts(&echo_on, 10_000)));
    group.bench_function("off", |b| b.iter(|| otp_casts(&echo_off, 10_000)));
    group.finish();

    on.shutdown(Duration::from_secs(30)).unwrap();
    off.shutdown(Duration::from_secs(30)).unwrap();
}

fn criterion_benches(c: &mut Criterion) {
    let runtime = Runtime::new();
    let echo = runtime.spawn_worker(Echo { sum: 0 }).unwrap();
    let pair = RawPair::start();
    let server = RawServer::start();

    let mut group = c.benchmark_group("W1 call round trip");
    group.bench_function("otp-threads", |b| {
        b.iter(|| echo.call(black_box(1)).unwrap())
    });
    group.bench_function("raw", |b| b.iter(|| pair.call(black_box(1))));
    group.finish();

    let mut group = c.benchmark_group("W2 10k casts");
    group.throughput(criterion::Throughput::Elements(10_000));
    group.bench_function("otp-threads", |b| b.iter(|| otp_casts(&echo, 10_000)));
    group.bench_function("raw", |b| b.iter(|| server.casts(10_000)));
    group.finish();

    let mut group = c.benchmark_group("W3 spawn + exit");
    let handle = runtime.handle();
    let pool = RawPool::start();
    group.bench_function("otp-threads", |b| {
        b.iter_custom(|n| otp_spawn_exit(&handle, n as usize))
    });
    group.bench_function("raw pool", |b| {
        b.iter_custom(|n| pool.spawn_exit(n as usize))
    });
    group.finish();

    pool.stop();
    pair.stop();
    server.stop();
    runtime.shutdown(Duration::from_secs(30)).unwrap();
}

fn main() {
    if let Some((what, count)) = child_measure_request() {
        let figure = match what.as_str() {
            "otp" => otp_idle_workers_rss(count),
            "raw" => raw_idle_threads_rss(count),
            "crowd-otp" => otp_idle_call_beside(count, CROWD_CALLS),
            "crowd-raw" => raw_idle_call_beside(count, CROWD_CALLS),
            _ => return,
        };
        println!("{figure}");
        return;
    }
    let arguments: Vec<String> = std::env::args().collect();
    let quick = arguments.iter().any(|argument| argument == "--quick");
    let report_only = arguments.iter().any(|argument| argument == "report");
    let introspection_only = arguments.iter().any(|argument| argument == "introspection");
    if introspection_only {
        let mut criterion = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        introspection_benches(&mut criterion);
        criterion.final_summary();
        introspection_report(quick);
        return;
    }
    if !report_only {
        let mut criterion = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .configure_from_args();
        criterion_benches(&mut criterion);
        introspection_benches(&mut criterion);
        criterion.final_summary();
    }
    report(quick);
    introspection_report(quick);
}
