//! The runtime workloads on five systems in one run, printed as one table with
//! otp-threads' ratio to each: raw `std::thread` + crossbeam (the like-for-like
//! baselines of `benches/support/workloads.rs`), ractor 0.16 and kameo 0.22 (on a
//! two-thread tokio runtime: this machine has two cores), and BEAM (an escript,
//! `beam/peers.escript`, when `escript` is installed; the table says so when it is not).
//!
//! | | workload |
//! |---|---|
//! | W1 | call round trip, back to back: median and mean |
//! | W1i | call to a server idle for 1 ms: median |
//! | W2 | casts into an unbounded mailbox, then one call behind them: messages/s |
//! | W3 | spawn (returning after init) + stop (waiting for the exit) |
//! | W4 | kill -> a separate watcher knows (DOWN, link, supervision event): median; printed again beside its floor, one wake-up of a blocked thread |
//! | W5 | resident memory per idle worker (each system in a fresh process; BEAM: what the VM accounts to each process) |
//! | W6 | a supervised child crashes -> its replacement answers a call: median |
//!
//! Absolute numbers are printed as measured; on these noisy VMs only ratios from one
//! run mean anything. `cargo bench -p otp-threads-peer-bench` (`-- --quick` for a tenth
//! of the work).

#[path = "../../support/workloads.rs"]
mod workloads;

#[path = "peers/beam.rs"]
mod beam;
#[path = "peers/kameo_side.rs"]
mod kameo_side;
#[path = "peers/ractor_side.rs"]
mod ractor_side;

use std::time::Duration;

use otp_threads::Runtime;
use workloads::*;

/// One system's figures; `None` where a workload does not apply or was not measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub(crate) w1_median: Option<Duration>,
    pub(crate) w1_mean: Option<Duration>,
    pub(crate) w1i_median: Option<Duration>,
    /// Messages per second.
    pub(crate) w2_rate: Option<f64>,
    pub(crate) w3: Option<Duration>,
    pub(crate) w4_median: Option<Duration>,
    /// Bytes per idle worker.
    pub(crate) w5_bytes: Option<f64>,
    pub(crate) w6_median: Option<Duration>,
}

impl Figures {
    /// The figures measured in one process (W5 is measured in a fresh one, W6 only
    /// where a supervisor exists).
    pub(crate) fn in_process(
        w1: Stats,
        w1i: Stats,
        casts: u64,
        w2: Duration,
        w3: Duration,
        w4: Stats,
    ) -> Figures {
        Figures {
            w1_median: Some(w1.median),
            w1_mean: Some(w1.mean),
            w1i_median: Some(w1i.median),
            w2_rate: Some(casts as f64 / w2.as_secs_f64()),
            w3: Some(w3),
            w4_median: Some(w4.median),
            w5_bytes: None,
            w6_median: None,
        }
    }
}

/// The runtime ractor and kameo run on: two worker threads, as this machine has two
/// cores.
pub(crate) fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// How much of each workload to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub(crate) calls: u64,
    pub(crate) idle_calls: u64,
    pub(crate) casts: u64,
    pub(crate) spawns: usize,
    pub(crate) kills: usize,
    pub(crate) idle_workers: usize,
    pub(crate) restarts: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        let scale = if quick { 10 } else { 1 };
        Sizes {
            calls: 100_000 / scale,
            idle_calls: 1_000 / scale,
            casts: 1_000_000 / scale,
            spawns: 10_000 / scale as usize,
            kills: 1_000 / scale as usize,
            idle_workers: 10_000 / scale as usize,
            restarts: 1_000 / scale as usize,
        }
    }
}

fn otp_figures(sizes: Sizes) -> Figures {
    let runtime = Runtime::new();
    let echo = runtime.spawn_worker(Echo { sum: 0 }).unwrap();
    otp_calls(&echo, sizes.calls / 10, Duration::ZERO, &mut Vec::new());
    let mut samples = Vec::new();
    otp_calls(&echo, sizes.calls, Duration::ZERO, &mut samples);
    let w1 = stats(&mut samples);
    let mut samples = Vec::new();
    otp_calls(
        &echo,
        sizes.idle_calls,
        Duration::from_millis(1),
        &mut samples,
    );
    let w1i = stats(&mut samples);
    otp_casts(&echo, sizes.casts / 10);
    let w2 = otp_casts(&echo, sizes.casts);
    otp_spawn_exit(&runtime, sizes.spawns / 10);
    let w3 = otp_spawn_exit(&runtime, sizes.spawns) / sizes.spawns as u32;
    let w4 = stats(&mut otp_kill_to_down(&runtime, sizes.kills));
    runtime.shutdown(Duration::from_secs(30)).unwrap();
    let w6 = stats(&mut otp_restart_to_answer(sizes.restarts));
    Figures {
        w6_median: Some(w6.median),
        ..Figures::in_process(w1, w1i, sizes.casts, w2, w3, w4)
    }
}

fn raw_figures(sizes: Sizes) -> Figures {
    let pair = RawPair::start();
    pair.calls(sizes.calls / 10, Duration::ZERO, &mut Vec::new());
    let mut samples = Vec::new();
    pair.calls(sizes.calls, Duration::ZERO, &mut samples);
    let w1 = stats(&mut samples);
    let mut samples = Vec::new();
    pair.calls(sizes.idle_calls, Duration::from_millis(1), &mut samples);
    let w1i = stats(&mut samples);
    pair.stop();
    let server = RawServer::start();
    server.casts(sizes.casts / 10);
    let w2 = server.casts(sizes.casts);
    server.stop();
    let pool = RawPool::start();
    pool.spawn_exit(sizes.spawns / 10);
    let w3 = pool.spawn_exit(sizes.spawns) / sizes.spawns as u32;
    pool.stop();
    let w4 = stats(&mut raw_signal_and_exit(sizes.kills, RawDeath::Message));
    Figures::in_process(w1, w1i, sizes.casts, w2, w3, w4)
}

fn cell_duration(value: Option<Duration>) -> String {
    value.map_or("-".into(), |d| format!("{d:.2?}"))
}

/// otp-threads' figure over the peer's, for "lower is better" workloads: below 1 means
/// otp-threads is ahead.
fn cell_ratio(ours: Option<Duration>, theirs: Option<Duration>) -> String {
    match (ours, theirs) {
        (Some(ours), Some(theirs)) if !theirs.is_zero() => format!("{:.2}", ratio(ours, theirs)),
        _ => "-".into(),
    }
}

fn print_table(systems: &[(&str, Figures)]) {
    let ours = &systems[0].1;
    println!(
        "\n{:<10} {:>22} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "system",
        "W1 median / mean",
        "W1i median",
        "W2 M/s",
        "W3",
        "W4 median",
        "W5 KiB",
        "W6 median"
    );
    for (name, figures) in systems {
        println!(
            "{:<10} {:>22} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            name,
            format!(
                "{} / {}",
                cell_duration(figures.w1_median),
                cell_duration(figures.w1_mean)
            ),
            cell_duration(figures.w1i_median),
            figures
                .w2_rate
                .map_or("-".into(), |rate| format!("{:.2}", rate / 1e6)),
            cell_duration(figures.w3),
            cell_duration(figures.w4_median),
            figures
                .w5_bytes
                .map_or("-".into(), |bytes| format!("{:.1}", bytes / 1024.0)),
            cell_duration(figures.w6_median),
        );
    }
    println!("\notp-threads / peer (time and memory: below 1 is ahead; W2 rate: above 1 is ahead)");
    for (name, figures) in &systems[1..] {
        println!(
            "{:<10} {:>22} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            format!("vs {name}"),
            format!(
                "{} / {}",
                cell_ratio(ours.w1_median, figures.w1_median),
                cell_ratio(ours.w1_mean, figures.w1_mean)
            ),
            cell_ratio(ours.w1i_median, figures.w1i_median),
            match (ours.w2_rate, figures.w2_rate) {
                (Some(ours), Some(theirs)) => format!("{:.2}", ours / theirs),
                _ => "-".into(),
            },
            cell_ratio(ours.w3, figures.w3),
            cell_ratio(ours.w4_median, figures.w4_median),
            match (ours.w5_bytes, figures.w5_bytes) {
                (Some(ours), Some(theirs)) if theirs > 0.0 => format!("{:.2}", ours / theirs),
                _ => "-".into(),
            },
            cell_ratio(ours.w6_median, figures.w6_median),
        );
    }
}

fn w5_child(system: &str, count: usize) {
    let bytes = match system {
        "otp" => otp_idle_workers_rss(count) as f64,
        "raw" => raw_idle_threads_rss(count) as f64,
        "ractor" => ractor_side::idle_rss(count),
        "kameo" => kameo_side::idle_rss(count),
        _ => return,
    };
    println!("{bytes}");
}

fn main() {
    if let Some((system, count)) = child_measure_request() {
        w5_child(&system, count);
        return;
    }
    let arguments: Vec<String> = std::env::args().collect();
    let quick = arguments.iter().any(|argument| argument == "--quick");
    let sizes = Sizes::new(quick);
    println!("== W1-W6 on otp-threads and its peers, one run ({sizes:?})");
    let mut systems = vec![
        ("otp", otp_figures(sizes)),
        ("raw", raw_figures(sizes)),
        ("ractor", ractor_side::figures(sizes)),
        ("kameo", kameo_side::figures(sizes)),
    ];
    for (name, figures) in &mut systems {
        figures.w5_bytes = measure_in_child(name, sizes.idle_workers);
    }
    match beam::figures(sizes) {
        Ok(figures) => systems.push(("BEAM", figures)),
        Err(why) => println!("BEAM not measured: {why}"),
    }
    print_table(&systems);
    print_w4_floor(&systems, sizes);
}

/// W4 beside its floor on OS threads, one wake-up of a blocked thread (measured now):
/// how much of each system's kill -> DOWN is that wake.
fn print_w4_floor(systems: &[(&str, Figures)], sizes: Sizes) {
    let floor = stats(&mut raw_one_wake(sizes.kills)).median;
    println!("\nW4 floor on OS threads, one wake-up of a blocked thread: {floor:.2?}");
    for (name, figures) in systems {
        if let Some(w4) = figures.w4_median {
            println!("{:<10} W4 / floor {:.2}", name, ratio(w4, floor));
        }
    }
}
