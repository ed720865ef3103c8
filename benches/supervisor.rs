//! Supervisor benchmarks.
//!
//! - `crash_to_replacement_answering`: from a child's crash (an exit signal) to its
//!   replacement answering a call, measured beside `std_thread_spawn_join`, the raw
//!   cost of spawning (and joining) a `std::thread` in the same run; the ratio is
//!   printed at the end.
//! - `one_for_one_restart`: restarts per second a one-for-one supervisor sustains
//!   (crash the child, wait until the supervisor has replaced it, again).
//!
//! Run briefly with `cargo bench --bench supervisor -- --warm-up-time 1 --measurement-time 2`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorRef};
use otp_threads::{Context, ExitReason, Pid, ReplyTo, Runtime, Step, Worker};

/// A worker answering calls.
struct Echo;

impl Worker for Echo {
    type Call = u64;
    type Reply = u64;
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_call(&mut self, n: u64, reply: ReplyTo<u64>, _: &mut Context<Self>) -> Step<Self> {
        reply.reply(n);
        Step::Next
    }
}

fn child(sup: &SupervisorRef) -> Pid {
    sup.which_children().unwrap()[0]
        .state
        .pid()
        .expect("the child runs")
}

/// Total time and iterations of one measurement, over all its samples.
#[derive(Clone, Default)]
struct Tally(Rc<Cell<(Duration, u64)>>);

impl Tally {
    fn add(&self, elapsed: Duration, iterations: u64) {
        let (time, count) = self.0.get();
        self.0.set((time + elapsed, count + iterations));
    }

    fn mean(&self) -> Duration {
        let (time, count) = self.0.get();
        time / count.max(1) as u32
    }
}

fn crash_restart_benches(c: &mut Criterion) -> (Duration, Duration, Duration) {
    let runtime = Runtime::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(ChildSpec::worker("echo", || Echo))
        .start(&runtime)
        .unwrap();

    let mut group = c.benchmark_group("supervisor");
    let replacement = Tally::default();
    {
        let tally = replacement.clone();
        group.bench_function("crash_to_replacement_answering", |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let pid = child(&sup);
                    let start = Instant::now();
                    runtime.exit(&pid, ExitReason::error("crash"));
                    // Served after the supervisor handled the EXIT: the replacement.
                    let new = child(&sup);
                    let echo = runtime.worker_ref::<Echo>(&new).unwrap();
                    assert_eq!(echo.call(7).unwrap(), 7);
                    total += start.elapsed();
                }
                tally.add(total, iterations);
                total
            })
        });
    }

    let spawn = Tally::default();
    {
        let tally = spawn.clone();
        group.bench_function("std_thread_spawn_join", |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    std::thread::spawn(|| std::hint::black_box(1))
                        .join()
                        .unwrap();
                }
                let total = start.elapsed();
                tally.add(total, iterations);
                total
            })
        });
    }

    group.throughput(Throughput::Elements(1));
    let restart = Tally::default();
    {
        let tally = restart.clone();
        group.bench_function("one_for_one_restart", |b| {
            b.iter_custom(|iterations| {
                let mut pid = child(&sup);
                let start = Instant::now();
                for _ in 0..iterations {
                    runtime.exit(&pid, ExitReason::error("crash"));
                    pid = child(&sup);
                }
                let total = start.elapsed();
                tally.add(total, iterations);
                total
            })
        });
    }
    group.finish();
    runtime.shutdown(Duration::from_secs(5)).unwrap();
    (replacement.mean(), spawn.mean(), restart.mean())
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let (replacement, spawn, restart) = crash_restart_benches(&mut criterion);
    criterion.final_summary();
    if spawn > Duration::ZERO && restart > Duration::ZERO {
        println!(
            "crash -> replacement answering: {replacement:?}; std::thread spawn+join: {spawn:?}; ratio {:.2}",
            replacement.as_secs_f64() / spawn.as_secs_f64()
        );
        println!(
            "one-for-one restarts sustained: {:.0}/s ({restart:?} each)",
            1.0 / restart.as_secs_f64()
        );
    }
}
