//! zen monitor against the per-monitor baseline (one plain distribution monitor per
//! target, `RuntimeHandle::monitor` of a remote pid), on one real BEAM node running
//! `tests/erlang/zen_proxy.erl`, in the same run:
//!
//! * wire messages and bytes to place N = 100,000 monitors;
//! * DOWNs per second for 10,000 killed targets (zen at the default rate, and with the
//!   Dispatcher's rate raised);
//! * nodedown fan-out of 100,000 monitors after `kill -9` of the BEAM node, both ways;
//!   and of 1,000,000 zen monitors of an unreachable node (no baseline: no BEAM holds a
//!   million processes here);
//! * memory per monitor (RSS growth of this process per monitor placed);
//! * criterion: monitor + demonitor of one remote target, both ways.
//!
//! `cargo bench -p otp-threads-zen-monitor --bench zen` runs criterion and the report;
//! `-- report` runs only the report, `-- report fanout` only the million fan-out.

#[allow(missing_docs)]
#[path = "../tests/support/beam.rs"]
mod beam;

use std::sync::Arc;
use std::time::{Duration, Instant};

use beam::Scene;
use criterion::Criterion;
use crossbeam_channel::unbounded;
use otp_threads::dist::{Atom, ToTerm};
use otp_threads::{Monitor, NodeName, Pid};
use otp_threads_zen_monitor::{
    BatchChannelSubscriber, ChannelSubscriber, Options, SharedSubscriber,
};

const N: usize = 100_000;
const KILLED: usize = 10_000;
const FAN_OUT: u32 = 1_000_000;

/// The fan-out size: `FAN_OUT`, or `ZEN_FAN_OUT` from the environment (smaller runs
/// under `valgrind --tool=callgrind`).
fn fan_out_size() -> u32 {
    std::env::var("ZEN_FAN_OUT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(FAN_OUT)
}
const LONG: Duration = Duration::from_secs(300);

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !done() {
        assert!(Instant::now() < deadline, "bench: {what} did not happen");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn options(fast_dispatch: bool) -> Options {
    let mut options = Options::default();
    if fast_dispatch {
        options.demand_amount = 1_000_000;
    }
    options
}

fn subscriber(
    scene: &Scene,
) -> (
    SharedSubscriber,
    crossbeam_channel::Receiver<otp_threads_zen_monitor::ZenDown>,
    otp_threads::Process<()>,
) {
    let process: otp_threads::Process<()> = scene.runtime.as_ref().unwrap().process().unwrap();
    let (sender, receiver) = unbounded();
    let subscriber: SharedSubscriber = Arc::new(ChannelSubscriber {
        pid: process.pid(),
        sender,
    });
    (subscriber, receiver, process)
}

/// Bytes a `stats` round trip puts on the wire towards the BEAM node.
fn stats_bytes(scene: &Scene) -> u64 {
    let before = scene.node().bytes_sent(&scene.beam.name);
    scene.proxy_stats();
    scene.node().bytes_sent(&scene.beam.name) - before
}

fn ratio(baseline: f64, zen: f64) -> String {
    if zen == 0.0 {
        "∞".into()
    } else {
        format!("{:.1}×", baseline / zen)
    }
}

fn report_with(fast_dispatch: bool) {
    let scene = Scene::start(options(fast_dispatch), true);
    let (subscriber, downs, _process) = subscriber(&scene);
    let runtime = scene.runtime.as_ref().unwrap().handle();
    let stats_cost = stats_bytes(&scene);
    let zen_victims = scene.victims(N);
    let plain_victims = scene.victims(N);

    // Wire cost: zen.
    let bytes_before = scene.node().bytes_sent(&scene.beam.name);
    let rss_before = rss_bytes();
    let started = Instant::now();
    for v in &zen_victims {
        scene.zen().monitor(*v, subscriber.clone()).unwrap();
    }
    let (casts, _, _, _) = {
        let mut stats = scene.proxy_stats();
        while stats.2 < N as u64 {
            std::thread::sleep(Duration::from_millis(5));
            stats = scene.proxy_stats();
        }
        stats
    };
    let zen_place = started.elapsed();
    let zen_rss = rss_bytes().saturating_sub(rss_before);
    let polls_bytes = scene.node().bytes_sent(&scene.beam.name) - bytes_before;
    // The stats polls above also crossed the wire; their count is unknown, so the
    // bytes are an upper bound. Ping (MONITOR_P + REG_SEND + DEMONITOR_P) and the
    // Proxy monitor (MONITOR_P) are 4 more messages.
    let zen_messages = casts + 4;

    // Wire cost: baseline.
    let bytes_before = scene.node().bytes_sent(&scene.beam.name);
    let rss_before = rss_bytes();
    let started = Instant::now();
    let plain: Vec<Monitor> = plain_victims.iter().map(|v| runtime.monitor(v)).collect();
    scene.proxy_stats(); // ordered after every MONITOR_P on the connection
    let plain_place = started.elapsed();
    let plain_bytes =
        (scene.node().bytes_sent(&scene.beam.name) - bytes_before).saturating_sub(stats_cost);
    let plain_rss = rss_bytes().saturating_sub(rss_before);

    println!(
        "zen_monitor vs one distribution monitor per target (dispatcher {}):",
        if fast_dispatch {
            "1,000,000 per 100 ms"
        } else {
            "default 1,000 per 100 ms"
        }
    );
    println!(
        "  place {N}: zen {zen_messages} messages, ≤ {polls_bytes} bytes, {zen_place:?}; plain {N} messages, {plain_bytes} bytes, {plain_place:?}; \
         messages {}, bytes {}",
        ratio(N as f64, zen_messages as f64),
        ratio(plain_bytes as f64, polls_bytes as f64)
    );
    println!(
        "  memory per monitor (RSS growth): zen {} B, plain {} B ({})",
        zen_rss / N as u64,
        plain_rss / N as u64,
        ratio(plain_rss as f64, zen_rss as f64)
    );

    // DOWNs per second.
    let zen_killed: Vec<Pid> = zen_victims.iter().take(KILLED).copied().collect();
    let started = Instant::now();
    scene.ctl(&(
        Atom::from("kill_all"),
        scene.reporter.pid(),
        zen_killed,
        Atom::from("boom"),
    ));
    for _ in 0..KILLED {
        downs.recv_timeout(LONG).expect("zen DOWN");
    }
    let zen_downs = started.elapsed();
    scene.report("killed");
    let plain_killed: Vec<Pid> = plain_victims.iter().take(KILLED).copied().collect();
    let started = Instant::now();
    scene.ctl(&(
        Atom::from("kill_all"),
        scene.reporter.pid(),
        plain_killed,
        Atom::from("boom"),
    ));
    for monitor in plain.iter().take(KILLED) {
        monitor.wait(LONG).expect("plain DOWN");
    }
    let plain_downs = started.elapsed();
    scene.report("killed");
    let per_second = |d: Duration| KILLED as f64 / d.as_secs_f64();
    println!(
        "  {KILLED} DOWNs: zen {:.0}/s ({zen_downs:?}, incl. the Batcher's 100 ms sweep), plain {:.0}/s ({plain_downs:?}); plain/zen time {}",
        per_second(zen_downs),
        per_second(plain_downs),
        ratio(zen_downs.as_secs_f64(), plain_downs.as_secs_f64()),
    );

    // Nodedown fan-out of the rest, from kill -9.
    let rest = N - KILLED;
    let mut scene = scene;
    let started = Instant::now();
    scene.beam.kill();
    let (zen_done, plain_done) = std::thread::scope(|s| {
        let zen = s.spawn(|| {
            for _ in 0..rest {
                downs.recv_timeout(LONG).expect("zen nodedown");
            }
            started.elapsed()
        });
        let plain = s.spawn(|| {
            for monitor in plain.iter().skip(KILLED) {
                monitor.wait(LONG).expect("plain noconnection");
            }
            started.elapsed()
        });
        (zen.join().unwrap(), plain.join().unwrap())
    });
    println!("  nodedown fan-out of {rest}: zen {zen_done:?}, plain {plain_done:?}");
    drop(plain);
}

/// 1,000,000 zen monitors of an unreachable node fire `nodedown` at the first sweep,
/// to a subscriber taking one DOWN per channel message (`ChannelSubscriber`), or, with
/// `batches`, a Dispatcher round's DOWNs in one message (`BatchChannelSubscriber`).
fn fan_out_million(batches: bool) {
    let server =
        otp_threads::dist::epmd::NameServer::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap();
    let runtime = otp_threads::Runtime::builder()
        .node_name(format!("bench{}@localhost", std::process::id()))
        .build()
        .unwrap();
    let node = Arc::new(
        otp_threads::dist::Node::builder()
            .cookie("sesame")
            .epmd(server.address())
            .start(&runtime.handle())
            .unwrap(),
    );
    let mut options = Options {
        demand_amount: 1_000_000,
        ..Options::default()
    };
    // No sweep before every monitor is placed: the fan-out is measured alone.
    options.connector_sweep_interval = Duration::from_secs(3600);
    let zen = otp_threads_zen_monitor::ZenMonitor::start(
        &runtime.handle(),
        node.clone(),
        options.clone(),
    )
    .unwrap();
    let process: otp_threads::Process<()> = runtime.process().unwrap();
    let (sender, downs) = unbounded();
    let (batch_sender, batch_downs) = unbounded();
    let subscriber: SharedSubscriber = if batches {
        Arc::new(BatchChannelSubscriber {
            pid: process.pid(),
            sender: batch_sender,
        })
    } else {
        Arc::new(ChannelSubscriber {
            pid: process.pid(),
            sender,
        })
    };
    let ghost = NodeName::new("ghost@nowhere");
    let rss_before = rss_bytes();
    let started = Instant::now();
    let fan_out = fan_out_size();
    for i in 1..=fan_out {
        zen.monitor(Pid::from_parts(ghost, i, 0, 1), subscriber.clone())
            .unwrap();
    }
    let placed = started.elapsed();
    let rss = rss_bytes().saturating_sub(rss_before);
    // Connect is what a sweep does first: it finds the node unavailable; the next sweep
    // (interval now 1 ms) fires every monitor.
    options.connector_sweep_interval = Duration::from_millis(1);
    let started = Instant::now();
    zen.connect("ghost@nowhere").unwrap();
    zen.set_options(options).unwrap();
    // The pending sweep timer is an hour away: a crash-free way to sweep now is a new
    // connector; instead kill the connector: its successor sweeps at 1 ms.
    let connector = zen.connector_pid("ghost@nowhere").unwrap();
    runtime.exit(&connector, otp_threads::ExitReason::Kill);
    // The successor's init resubscribes the million targets (the crash-safety of this
    // crate), then its first sweep, 1 ms later, fires them all.
    wait_until("the new connector", || {
        zen.connector_pid("ghost@nowhere")
            .is_some_and(|p| p != connector)
    });
    let restarted = started.elapsed();
    let fan_started = Instant::now();
    let mut received = 0usize;
    while received < fan_out as usize {
        if batches {
            received += batch_downs.recv_timeout(LONG).expect("nodedown").len();
        } else {
            downs.recv_timeout(LONG).expect("nodedown");
            received += 1;
        }
    }
    let fanned = fan_started.elapsed();
    let kind = if batches {
        "in batches"
    } else {
        "one per message"
    };
    println!(
        "  nodedown fan-out of {fan_out} zen monitors {kind} (unreachable node, dispatcher 1,000,000 per 100 ms): {fanned:?} \
         after the connector's restart ({restarted:?}, resubscribing all); placing them took {placed:?}; {} B RSS per monitor",
        rss / u64::from(fan_out)
    );
    zen.shutdown(Duration::from_secs(30));
    drop(process);
    wait_until("the node's last handle", || Arc::strong_count(&node) == 1);
    if let Ok(node) = Arc::try_unwrap(node) {
        node.shutdown();
    }
    runtime.shutdown(Duration::from_secs(30)).unwrap();
    server.shutdown();
}

fn criterion_benches(c: &mut Criterion) {
    let scene = Scene::start(Options::default(), true);
    let (subscriber, _downs, _process) = subscriber(&scene);
    let victim = scene.victims(1)[0];
    let runtime = scene.runtime.as_ref().unwrap().handle();
    let mut group = c.benchmark_group("monitor + demonitor of one remote target");
    group.bench_function("zen_monitor", |b| {
        b.iter(|| {
            let r = scene.zen().monitor(victim, subscriber.clone()).unwrap();
            scene.zen().demonitor(r, true)
        })
    });
    group.bench_function("plain distribution monitor", |b| {
        b.iter(|| runtime.monitor(&victim).demonitor())
    });
    group.finish();
    let _ = Atom::from("done").to_term();
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
    if !std::env::args().any(|argument| argument == "fanout") {
        report_with(false);
        report_with(true);
    }
    // `ZEN_FAN_OUT_KIND=single` or `=batches` runs one of the two (for callgrind).
    let kind = std::env::var("ZEN_FAN_OUT_KIND").unwrap_or_default();
    if kind != "batches" {
        fan_out_million(false);
    }
    if kind != "single" {
        fan_out_million(true);
    }
}
