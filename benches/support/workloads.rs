//! The runtime workloads W1-W6 on otp-threads and on their raw baselines (plain
//! `std::thread` + `crossbeam-channel`), shared by `benches/runtime.rs` and the peer
//! comparison `benches/peers` (both include this file), so that every table measures
//! the same code.
//!
//! Raw baselines are like-for-like:
//! - W1: a server thread and two fixed channels (request, reply), the least a blocking
//!   round trip can cost; the per-call reply channel is a second line.
//! - W3: a raw thread pool doing the same hand-off as a pooled spawn (a parked thread
//!   receives a boxed job, acknowledges its start, then finishes); a fresh thread
//!   spawned and joined is a second line.
//! - W4: the victim sends a message just before it exits, received by a separate
//!   watcher thread; a join at the watcher is a second line. One message to a blocked
//!   thread, nothing dying, is the floor of any DOWN to a blocked watcher (one wake-up).
#![allow(dead_code)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorRef};
use otp_threads::{
    Context, ExitReason, Pid, ReplyTo, Runtime, RuntimeHandle, Step, Worker, WorkerRef,
};

// ---------------------------------------------------------------- workers

/// Answers calls with the request plus one; sums casts. A request of `u64::MAX` asks
/// for the sum of the casts so far.
pub struct Echo {
    pub sum: u64,
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

/// Does nothing; used for spawn, exit, kill and idle memory.
pub struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

// ---------------------------------------------------------------- statistics

/// Median, mean and 99th percentile of latency samples.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: Duration,
    pub mean: Duration,
    pub p99: Duration,
}

pub fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort();
    let total: Duration = samples.iter().sum();
    Stats {
        median: samples[samples.len() / 2],
        mean: total / samples.len() as u32,
        p99: samples[samples.len() * 99 / 100],
    }
}

pub fn ratio(ours: Duration, theirs: Duration) -> f64 {
    ours.as_secs_f64() / theirs.as_secs_f64()
}

// ---------------------------------------------------------------- W1, W2: calls and casts

/// Back-to-back calls (after `idle` each), one latency sample per call.
pub fn otp_calls(
    worker: &WorkerRef<Echo>,
    count: u64,
    idle: Duration,
    samples: &mut Vec<Duration>,
) {
    for i in 0..count {
        if !idle.is_zero() {
            thread::sleep(idle);
        }
        let start = Instant::now();
        black_box(worker.call(i).unwrap());
        samples.push(start.elapsed());
    }
}

/// A raw server thread with two fixed channels, one request and one reply.
pub struct RawPair {
    requests: Sender<u64>,
    replies: Receiver<u64>,
    thread: thread::JoinHandle<()>,
}

impl RawPair {
    pub fn start() -> RawPair {
        let (requests, incoming) = unbounded::<u64>();
        let (outgoing, replies) = unbounded::<u64>();
        let thread = thread::spawn(move || {
            for request in incoming {
                if outgoing.send(request + 1).is_err() {
                    break;
                }
            }
        });
        RawPair {
            requests,
            replies,
            thread,
        }
    }

    pub fn call(&self, value: u64) -> u64 {
        self.requests.send(value).unwrap();
        self.replies.recv().unwrap()
    }

    pub fn calls(&self, count: u64, idle: Duration, samples: &mut Vec<Duration>) {
        for i in 0..count {
            if !idle.is_zero() {
                thread::sleep(idle);
            }
            let start = Instant::now();
            black_box(self.call(i));
            samples.push(start.elapsed());
        }
    }

    pub fn stop(self) {
        drop(self.requests);
        self.thread.join().unwrap();
    }
}

/// What a raw server with a reply channel per call is asked.
pub enum RawRequest {
    Call(u64, Sender<u64>),
    Cast(u64),
    Sum(Sender<u64>),
}

/// A raw server thread taking requests that carry their own reply channel (as a call
/// from any of many clients must): the second W1 line, and the W2 baseline.
pub struct RawServer {
    requests: Sender<RawRequest>,
    thread: thread::JoinHandle<()>,
}

impl RawServer {
    pub fn start() -> RawServer {
        let (requests, incoming) = unbounded::<RawRequest>();
        let thread = thread::spawn(move || {
            let mut sum = 0u64;
            for request in incoming {
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
        RawServer { requests, thread }
    }

    pub fn call(&self, value: u64) -> u64 {
        let (reply, answer) = bounded(1);
        self.requests.send(RawRequest::Call(value, reply)).unwrap();
        answer.recv().unwrap()
    }

    pub fn calls(&self, count: u64, idle: Duration, samples: &mut Vec<Duration>) {
        for i in 0..count {
            if !idle.is_zero() {
                thread::sleep(idle);
            }
            let start = Instant::now();
            black_box(self.call(i));
            samples.push(start.elapsed());
        }
    }

    fn sum(&self) -> u64 {
        let (reply, answer) = bounded(1);
        self.requests.send(RawRequest::Sum(reply)).unwrap();
        answer.recv().unwrap()
    }

    /// `count` casts, then a call that returns when all are handled.
    pub fn casts(&self, count: u64) -> Duration {
        let before = self.sum();
        let start = Instant::now();
        for _ in 0..count {
            self.requests.send(RawRequest::Cast(1)).unwrap();
        }
        let after = self.sum();
        let elapsed = start.elapsed();
        assert_eq!(after - before, count);
        elapsed
    }

    pub fn stop(self) {
        drop(self.requests);
        self.thread.join().unwrap();
    }
}

/// `count` casts, then a call that returns when all are handled (it is behind them).
pub fn otp_casts(worker: &WorkerRef<Echo>, count: u64) -> Duration {
    let before = worker.call(u64::MAX).unwrap();
    let start = Instant::now();
    for _ in 0..count {
        worker.cast(1);
    }
    let after = worker.call(u64::MAX).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(after - before, count);
    elapsed
}

// ---------------------------------------------------------------- W3: spawn + exit

/// Spawn a worker (returns after its init), then stop it and wait for its exit.
pub fn otp_spawn_exit(runtime: &RuntimeHandle, count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let worker = runtime.spawn_worker(Idle).unwrap();
        worker
            .stop(ExitReason::Normal, Duration::from_secs(10))
            .unwrap();
    }
    start.elapsed()
}

type Job = Box<dyn FnOnce() + Send>;

/// A raw pool of one parked thread: the same hand-off as a pooled spawn.
pub struct RawPool {
    jobs: Sender<Job>,
    thread: thread::JoinHandle<()>,
}

impl RawPool {
    pub fn start() -> RawPool {
        let (jobs, queue) = unbounded::<Job>();
        let thread = thread::spawn(move || {
            for job in queue {
                job();
            }
        });
        RawPool { jobs, thread }
    }

    /// Hand a job to the parked thread, wait for its start acknowledgement (as a spawn
    /// waits for `init`), then for its end (as a stop waits for the exit).
    pub fn spawn_exit(&self, count: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..count {
            let (started, start_seen) = bounded::<()>(1);
            let (stop, stopped) = bounded::<()>(1);
            let (exited, exit_seen) = bounded::<()>(1);
            self.jobs
                .send(Box::new(move || {
                    let _ = started.send(());
                    let _ = stopped.recv();
                    let _ = exited.send(());
                }))
                .unwrap();
            start_seen.recv().unwrap();
            stop.send(()).unwrap();
            exit_seen.recv().unwrap();
        }
        start.elapsed()
    }

    pub fn stop(self) {
        drop(self.jobs);
        self.thread.join().unwrap();
    }
}

/// Spawn a fresh thread that acknowledges its start, then exits; join it.
pub fn raw_spawn_join(count: usize) -> Duration {
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

// ---------------------------------------------------------------- W4: kill -> DOWN

/// How long a watcher is left to block before the victim dies, as an idle watcher is.
pub const WATCHER_SETTLE: Duration = Duration::from_micros(200);

/// The timing every W4 workload shares, so that they differ only in what the watcher
/// waits on. Each round makes a watch and its trigger; a watcher thread takes the watch
/// and blocks on it (`wait`); [`WATCHER_SETTLE`] later the trigger runs, and the sample
/// is the time from the trigger until the watcher is through. What the trigger returns
/// is kept until the sample is taken.
fn watched_rounds<Watch: Send + 'static, Kept, Trigger: FnOnce() -> Kept>(
    rounds: usize,
    wait: impl Fn(Watch) + Send + 'static,
    mut round: impl FnMut() -> (Watch, Trigger),
) -> Vec<Duration> {
    let (jobs, job_queue) = unbounded::<Watch>();
    let (seen, seen_at) = unbounded::<Instant>();
    let watcher = thread::spawn(move || {
        for watch in job_queue {
            wait(watch);
            seen.send(Instant::now()).unwrap();
        }
    });
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (watch, trigger) = round();
        jobs.send(watch).unwrap();
        thread::sleep(WATCHER_SETTLE);
        let start = Instant::now();
        let kept = trigger();
        samples.push(seen_at.recv().unwrap() - start);
        drop(kept);
    }
    drop(jobs);
    watcher.join().unwrap();
    samples
}

/// Kill a worker; time until a watcher thread blocked on its monitor has the DOWN.
pub fn otp_kill_to_down(runtime: &RuntimeHandle, rounds: usize) -> Vec<Duration> {
    watched_rounds(
        rounds,
        |monitor: otp_threads::Monitor| {
            monitor.receiver().recv().unwrap();
        },
        || {
            let worker = runtime.spawn_worker(Idle).unwrap();
            let monitor = runtime.monitor(&worker.pid());
            // The handle is dropped after the sample, as the raw victims' are.
            let kill = move || {
                runtime.kill(&worker.pid());
                worker
            };
            (monitor, kill)
        },
    )
}

/// W4 beside its floor under the same conditions, round by round: in turn, a worker is
/// killed with the watcher blocked on its monitor, or (with a worker spawned and
/// monitored all the same) the watcher, blocked on a channel, is sent one message.
/// Returns (kill -> DOWN, one wake-up).
///
/// Whether the kernel wakes the watcher on the killer's core (3-8 µs here) or on the
/// other, idle one (45-60 µs on these VMs: the idle vCPU must be woken) is decided by
/// where the watcher last ran, and holds for a whole run of rounds; a floor measured in
/// a run of its own may be in the other mode. In turn, both sides share the mode.
pub fn otp_kill_and_one_wake(
    runtime: &RuntimeHandle,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    enum Watch {
        Down(otp_threads::Monitor),
        Message(otp_threads::Monitor, Receiver<()>),
    }
    let mut turn = 0usize;
    let samples = watched_rounds(
        rounds * 2,
        |watch| match watch {
            Watch::Down(monitor) => {
                monitor.receiver().recv().unwrap();
            }
            Watch::Message(_monitor, woken) => {
                let _ = woken.recv();
            }
        },
        || {
            turn += 1;
            let worker = runtime.spawn_worker(Idle).unwrap();
            let monitor = runtime.monitor(&worker.pid());
            let pid = worker.pid();
            let (wake, woken) = bounded::<()>(1);
            let kill_now = turn % 2 == 1;
            let watch = if kill_now {
                Watch::Down(monitor)
            } else {
                Watch::Message(monitor, woken)
            };
            let trigger = move || {
                if kill_now {
                    runtime.kill(&pid);
                } else {
                    wake.send(()).unwrap();
                }
                // Killed after the sample when it was not the one measured.
                KillOnDrop(runtime, worker)
            };
            (watch, trigger)
        },
    );
    let (mut kills, mut wakes) = (Vec::new(), Vec::new());
    for (i, sample) in samples.into_iter().enumerate() {
        if i % 2 == 0 {
            kills.push(sample);
        } else {
            wakes.push(sample);
        }
    }
    (kills, wakes)
}

struct KillOnDrop<'a>(&'a RuntimeHandle, WorkerRef<Idle>);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        self.0.kill(&self.1.pid());
    }
}

/// How a watcher learns that a raw thread is gone.
#[derive(Clone, Copy)]
pub enum RawDeath {
    /// The thread sends a message just before it exits: the like-for-like baseline.
    Message,
    /// The watcher joins the thread: proof that it has exited.
    Join,
}

/// A thread told to die exits; time until a watcher thread knows.
pub fn raw_signal_and_exit(rounds: usize, death: RawDeath) -> Vec<Duration> {
    enum Watch {
        Message(Receiver<()>),
        Join(thread::JoinHandle<()>),
    }
    watched_rounds(
        rounds,
        |watch| match watch {
            Watch::Message(exited) => {
                let _ = exited.recv();
            }
            Watch::Join(handle) => handle.join().unwrap(),
        },
        || {
            let (kill, killed) = bounded::<()>(1);
            let (exit_signal, exited) = bounded::<()>(1);
            let victim = thread::spawn(move || {
                let _ = killed.recv();
                let _ = exit_signal.send(());
            });
            let watch = match death {
                RawDeath::Message => Watch::Message(exited),
                RawDeath::Join => Watch::Join(victim),
            };
            (watch, move || kill.send(()).unwrap())
        },
    )
}

/// The floor of any W4 path on OS threads: one message to a watcher thread blocked for
/// [`WATCHER_SETTLE`], nothing dying; time until the watcher has it. A DOWN reaching a
/// blocked thread costs at least this one wake-up; BEAM avoids it when the killer, the
/// victim and the watcher share a scheduler thread.
pub fn raw_one_wake(rounds: usize) -> Vec<Duration> {
    watched_rounds(
        rounds,
        |woken: Receiver<()>| {
            let _ = woken.recv();
        },
        || {
            let (wake, woken) = bounded::<()>(1);
            (woken, move || wake.send(()).unwrap())
        },
    )
}

// ---------------------------------------------------------------- W5: idle memory

pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The stack size W5 gives workers and raw threads alike.
pub const W5_STACK: usize = 256 * 1024;

/// `count` idle workers on a runtime with the W5 stack size.
fn idle_workers(count: usize) -> (Runtime, Vec<WorkerRef<Idle>>) {
    let runtime = Runtime::builder().stack_size(W5_STACK).build().unwrap();
    let workers = (0..count)
        .map(|_| runtime.spawn_worker(Idle).unwrap())
        .collect();
    (runtime, workers)
}

/// `count` raw threads parked on a channel; dropping the sender lets them finish.
fn parked_threads(count: usize) -> (Sender<()>, Vec<thread::JoinHandle<()>>) {
    let (stop, stopped) = unbounded::<()>();
    let threads = (0..count)
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
    (stop, threads)
}

fn finish(stop: Sender<()>, threads: Vec<thread::JoinHandle<()>>) {
    drop(stop);
    for thread in threads {
        thread.join().unwrap();
    }
}

pub fn otp_idle_workers_rss(count: usize) -> u64 {
    let before = resident_bytes();
    let (runtime, workers) = idle_workers(count);
    let after = resident_bytes();
    drop(workers);
    runtime.shutdown(Duration::from_secs(30)).unwrap();
    (after.saturating_sub(before)) / count as u64
}

pub fn raw_idle_threads_rss(count: usize) -> u64 {
    let before = resident_bytes();
    let (stop, threads) = parked_threads(count);
    let after = resident_bytes();
    finish(stop, threads);
    (after.saturating_sub(before)) / count as u64
}

/// The argument that makes a bench binary measure one workload in a process of its own
/// and print the figure (see [`measure_in_child`]).
pub const MEASURE_IN_CHILD: &str = "--measure-in-child=";

/// Runs this bench binary again with [`MEASURE_IN_CHILD`]`what` and reads the figure it
/// prints: for W5 the bytes per idle worker (`what` names the system), for W1i beside
/// idle workers the median of [`otp_idle_call_beside`] or [`raw_idle_call_beside`].
/// Each runs in a fresh process: in a process that has run other workloads, new
/// workers land on heap pages and cached thread stacks already counted (the runtime
/// report, measuring after W7, once gave otp and raw 7.9 KiB each against 11.2 and 9.6
/// in a fresh process), and the futex table an earlier workload grew stays grown.
#[allow(dead_code)]
pub fn measure_in_child(what: &str, count: usize) -> Option<f64> {
    let output = std::process::Command::new(std::env::current_exe().ok()?)
        .arg(format!("{MEASURE_IN_CHILD}{what}"))
        .arg(count.to_string())
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// The child's side of [`measure_in_child`]: `Some(what)` if this process was started
/// to measure it, with the count asked for.
#[allow(dead_code)]
pub fn child_measure_request() -> Option<(String, usize)> {
    let arguments: Vec<String> = std::env::args().collect();
    let what = arguments.get(1)?.strip_prefix(MEASURE_IN_CHILD)?.to_owned();
    let count = arguments
        .get(2)
        .and_then(|count| count.parse().ok())
        .unwrap_or(10_000);
    Some((what, count))
}

// ---------------------------------------------------------------- W1i beside a crowd

/// Median nanoseconds of `calls` calls, each after 1 ms idle, to one worker of a runtime
/// that also holds `crowd` idle workers. Run in a fresh process (see
/// [`measure_in_child`]): the runtime enlarges the process's futex table as its threads
/// grow, and a table only grows, so a process that has held many threads is no longer
/// what the kernel gives a new one.
pub fn otp_idle_call_beside(crowd: usize, calls: u64) -> u64 {
    let (runtime, workers) = idle_workers(crowd);
    let echo = runtime.spawn_worker(Echo { sum: 0 }).unwrap();
    let mut samples = Vec::new();
    otp_calls(&echo, calls, Duration::from_millis(1), &mut samples);
    drop((echo, workers));
    runtime.shutdown(Duration::from_secs(30)).unwrap();
    stats(&mut samples).median.as_nanos() as u64
}

/// [`otp_idle_call_beside`] on raw threads: a [`RawPair`] beside `crowd` parked threads.
pub fn raw_idle_call_beside(crowd: usize, calls: u64) -> u64 {
    let (stop, threads) = parked_threads(crowd);
    let pair = RawPair::start();
    let mut samples = Vec::new();
    pair.calls(calls, Duration::from_millis(1), &mut samples);
    pair.stop();
    finish(stop, threads);
    stats(&mut samples).median.as_nanos() as u64
}

/// Starts `count` idle workers, then times the runtime's shutdown (every thread joined).
pub fn otp_shutdown_idle(count: usize) -> Duration {
    let (runtime, workers) = idle_workers(count);
    drop(workers);
    let start = Instant::now();
    runtime.shutdown(Duration::from_secs(30)).unwrap();
    start.elapsed()
}

/// The raw floor of W7: `count` parked threads are told to finish, then joined.
pub fn raw_shutdown_idle(count: usize) -> Duration {
    let (stop, threads) = parked_threads(count);
    let start = Instant::now();
    finish(stop, threads);
    start.elapsed()
}

// ---------------------------------------------------------------- W6: restart

fn supervised_child(supervisor: &SupervisorRef) -> Pid {
    supervisor.which_children().unwrap()[0]
        .state
        .pid()
        .expect("the child runs")
}

/// A one-for-one supervisor's child crashes; time until its replacement has answered
/// a call.
pub fn otp_restart_to_answer(rounds: usize) -> Vec<Duration> {
    let runtime = Runtime::new();
    let supervisor = Supervisor::new(Strategy::OneForOne)
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(ChildSpec::worker("echo", || Echo { sum: 0 }))
        .start(&runtime)
        .unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let pid = supervised_child(&supervisor);
        let start = Instant::now();
        runtime.exit(&pid, ExitReason::error("crash"));
        // Served after the supervisor handled the EXIT: the replacement.
        let replacement = supervised_child(&supervisor);
        let echo = runtime.worker_ref::<Echo>(&replacement).unwrap();
        assert_eq!(echo.call(7).unwrap(), 8);
        samples.push(start.elapsed());
    }
    runtime.shutdown(Duration::from_secs(10)).unwrap();
    samples
}
