//! The worker thread pool.
//!
//! Creating an OS thread costs over 100 µs on the machines we measure on, and tearing
//! one down costs more; Erlang spawns a process in a few µs. So a worker's thread, once
//! its worker has exited, parks here and runs the next spawned worker. Nothing of the
//! previous worker survives except what the OS thread itself keeps: user thread-locals
//! (documented in SEMANTICS.md). [`RuntimeBuilder::reuse_threads`](crate::RuntimeBuilder::reuse_threads)
//! turns reuse off for users who need a fresh thread per worker.
//!
//! Idle threads leave after `idle_thread_timeout`. The pool joins every thread it
//! started when the runtime shuts down. Once shutdown has begun, a thread whose worker
//! exits stops taking jobs and parks until it is told to leave; the joining waits for
//! the count of threads still running a job to reach zero (one wake-up), then tells the
//! threads to leave one at a time, joining each before the next (all the rest together
//! if that falls behind, see [`Pace`]; from a fresh thread when there are many, see
//! [`FRESH_JOINER_FROM`]). On the 2-vCPU VMs we measure on, 10,000 raw threads exiting
//! together took 0.8-0.9 s (they contend for the process's memory-map lock and
//! interrupt each other's core to flush its TLB); one at a time, 0.40-0.45 s, once the
//! futex table is large enough for them (see `futex_hash`; with the kernel's 16
//! buckets, one at a time was slower than together). Shutting down 10,000 idle workers
//! (W7) went from 0.8-1.1 s in most runs to 0.52-0.67 s (18 of 20; two took 1.3 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, unbounded};
use parking_lot::{Condvar, Mutex};

use super::futex_hash::CountedThread;
use crate::pid::Pid;

/// A unit of work: runs one worker from start to exit.
pub(crate) type Job = Box<dyn FnOnce(&ThreadSlot) + Send>;

/// What a pool thread is doing, readable by the runtime (for zombie reports), and the
/// word that lets it leave once shutdown has begun.
#[derive(Default)]
pub(crate) struct ThreadSlot {
    running: Mutex<Option<Pid>>,
    /// Set by the thread once it has run its last user code: joining it cannot block
    /// on a worker then.
    past_user_code: AtomicBool,
    /// Set by the joining thread: this thread may now return (see
    /// [`Pool::close_and_join`]).
    may_leave: AtomicBool,
}

impl ThreadSlot {
    pub(crate) fn set_running(&self, pid: Option<Pid>) {
        *self.running.lock() = pid;
    }

    /// Parks the calling pool thread until the joining thread lets it leave.
    fn wait_for_leave(&self) {
        // `unpark` before `park` is not lost, and `park` may return spuriously: the
        // flag decides.
        while !self.may_leave.load(Ordering::Acquire) {
            std::thread::park();
        }
    }
}

struct PoolThread {
    handle: JoinHandle<()>,
    slot: Arc<ThreadSlot>,
}

impl PoolThread {
    /// Lets the thread leave once it has parked at shutdown. A thread still running
    /// user code is let go too, so that it leaves when that code returns instead of
    /// parking for good.
    fn let_go(&self) {
        self.slot.may_leave.store(true, Ordering::Release);
        self.handle.thread().unpark();
    }

    /// Joins the thread, or, if it is still in user code at `deadline`, adds its pid
    /// to `stuck` and leaves it detached. Only a thread not yet past its user code is
    /// polled; any other is joined at once.
    fn join_by(self, deadline: Instant, stuck: &mut Vec<Pid>) {
        let mut pause = Duration::from_micros(10);
        while !self.is_past_user_code() && Instant::now() < deadline {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        if self.is_past_user_code() {
            if self.handle.join().is_err() {
                log::error!("a worker thread panicked outside any worker callback");
            }
        } else {
            stuck.extend(*self.slot.running.lock());
        }
    }

    fn is_past_user_code(&self) -> bool {
        self.slot.past_user_code.load(Ordering::Acquire) || self.handle.is_finished()
    }
}

/// Whether threads let go one at a time keep pace: checked every [`Pace::BATCH`]
/// threads, they fall behind when a batch takes over [`Pace::PER_THREAD`] a thread.
///
/// On the VMs we measure on (10,000 idle workers, 20 runs), a batch of 64 took 2.1-3.4
/// ms in the median, 4.7-8.6 ms in the slowest tenth (the first 2,000 threads are the
/// slow ones), and at most 31 ms; exiting all together costs 85-110 µs a thread. But
/// every hand-off of a chain waits for a wake-up, and in 3 runs of about 40, when the
/// host was slow to run the VM's idle core, one at a time took 600-900 µs a thread
/// (10,000 in 6-9 s). A batch over 25.6 ms then sends the rest together.
struct Pace {
    batch_started: Instant,
    in_batch: u32,
}

impl Pace {
    const BATCH: u32 = 64;
    const PER_THREAD: Duration = Duration::from_micros(400);

    fn new() -> Pace {
        Pace {
            batch_started: Instant::now(),
            in_batch: 0,
        }
    }

    fn keeps_up(&mut self) -> bool {
        self.in_batch += 1;
        if self.in_batch < Self::BATCH {
            return true;
        }
        let kept_up = self.batch_started.elapsed() <= Self::PER_THREAD * Self::BATCH;
        *self = Pace::new();
        kept_up
    }
}

/// The number of pool threads still running (a job, or the wait for one), and a
/// condvar signalled when the count reaches zero. A thread parked to leave at shutdown
/// no longer counts.
#[derive(Default)]
struct Running {
    count: Mutex<usize>,
    ended: Condvar,
}

/// Counts its thread in [`Running`] until [`RunningGuard::done`] or the thread's
/// closure ends, however it ends.
struct RunningGuard(Option<Arc<Running>>);

impl RunningGuard {
    fn done(&mut self) {
        if let Some(running) = self.0.take() {
            let mut count = running.count.lock();
            *count -= 1;
            if *count == 0 {
                running.ended.notify_all();
            }
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.done();
    }
}

pub(crate) struct Pool {
    jobs: Mutex<Option<Sender<Job>>>,
    /// Set when shutdown begins: threads whose worker exits then leave at once.
    closing: Arc<AtomicBool>,
    running: Arc<Running>,
    job_queue: Receiver<Job>,
    /// Idle threads not yet claimed by a spawn.
    idle: Arc<AtomicUsize>,
    threads: Mutex<Vec<PoolThread>>,
    stack_size: usize,
    reuse: bool,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(stack_size: usize, reuse: bool, idle_timeout: Duration) -> Pool {
        let (sender, receiver) = unbounded();
        Pool {
            jobs: Mutex::new(Some(sender)),
            closing: Arc::new(AtomicBool::new(false)),
            running: Arc::new(Running::default()),
            job_queue: receiver,
            idle: Arc::new(AtomicUsize::new(0)),
            threads: Mutex::new(Vec::new()),
            stack_size,
            reuse,
            idle_timeout,
        }
    }

    /// Runs `job` on an idle thread, or on a new one. Gives the job back if the pool is
    /// closed or no thread could be created.
    pub(crate) fn execute(&self, job: Job) -> Result<(), (Job, std::io::Error)> {
        // Held until the job is handed over or its new thread recorded, so that a
        // concurrent close cannot miss a thread it must join.
        let jobs = self.jobs.lock();
        let Some(jobs) = jobs.as_ref() else {
            let error = std::io::Error::other("the runtime is shut down");
            return Err((job, error));
        };
        if self.reuse && claim(&self.idle) {
            // A claimed idle thread is waiting on the queue (or about to be).
            return jobs
                .send(job)
                .map_err(|error| (error.0, std::io::Error::other("pool closed")));
        }
        self.start_thread(job)
    }

    fn start_thread(&self, job: Job) -> Result<(), (Job, std::io::Error)> {
        let slot = Arc::new(ThreadSlot::default());
        let thread_slot = slot.clone();
        let reuse = self.reuse;
        let queue = self.job_queue.clone();
        let idle = self.idle.clone();
        let idle_timeout = self.idle_timeout;
        let closing = self.closing.clone();
        *self.running.count.lock() += 1;
        let mut running = RunningGuard(Some(self.running.clone()));
        // Shared, not moved into the closure, so that a failed thread creation (which
        // drops the closure) can give the job back to the caller. (A bounded channel
        // did this at some 660 bytes a thread, kept for the thread's life.)
        let handoff = Arc::new(Mutex::new(Some(job)));
        let thread_job = handoff.clone();
        let counted = CountedThread::new();
        let spawned = std::thread::Builder::new()
            .name("otp-worker".into())
            .stack_size(self.stack_size)
            .spawn(move || {
                let _counted = counted;
                let job = thread_job.lock().take();
                drop(thread_job);
                if let Some(job) = job {
                    job(&thread_slot);
                }
                if reuse {
                    serve(&queue, &idle, idle_timeout, &closing, &thread_slot);
                }
                thread_slot.past_user_code.store(true, Ordering::Release);
                if closing.load(Ordering::Acquire) {
                    running.done();
                    thread_slot.wait_for_leave();
                }
            });
        match spawned {
            Ok(handle) => {
                let mut threads = self.threads.lock();
                // Forget threads that left (idle timeout, or one worker each).
                if threads.len() >= 64 && threads.len().is_power_of_two() {
                    threads.retain(|thread| !thread.handle.is_finished());
                }
                threads.push(PoolThread { handle, slot });
                Ok(())
            }
            Err(error) => {
                let job = handoff
                    .lock()
                    .take()
                    .expect("a thread that was never created left its job");
                Err((job, error))
            }
        }
    }

    /// Pids whose worker is dead while its thread still runs its code.
    pub(crate) fn running(&self) -> Vec<Pid> {
        self.threads
            .lock()
            .iter()
            .filter_map(|thread| *thread.slot.running.lock())
            .collect()
    }

    /// Number of OS threads the pool has started and that have not exited.
    pub(crate) fn live_threads(&self) -> usize {
        self.threads
            .lock()
            .iter()
            .filter(|thread| !thread.handle.is_finished())
            .count()
    }

    /// Tells threads whose worker exits from now on to leave instead of waiting for
    /// the next job: shutdown has begun, and no new job will come.
    pub(crate) fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Closes the pool and joins its threads until `deadline`. Returns the pids whose
    /// threads were still running user code then (those threads are left detached, and
    /// leave when that code returns).
    pub(crate) fn close_and_join(&self, deadline: Instant) -> Vec<Pid> {
        self.begin_close();
        // Dropping the only sender wakes every idle thread with `Disconnected`; each
        // then parks to leave.
        self.jobs.lock().take();
        {
            let mut count = self.running.count.lock();
            while *count > 0
                && !self
                    .running
                    .ended
                    .wait_until(&mut count, deadline)
                    .timed_out()
            {}
        }
        let mut threads = std::mem::take(&mut *self.threads.lock()).into_iter();
        let mut stuck = Vec::new();
        if threads.len() >= FRESH_JOINER_FROM {
            // On a thread of its own (see `FRESH_JOINER_FROM`); if the OS refuses one
            // (a pool at the thread limit), on this thread.
            let joined = std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("otp-shutdown".into())
                    .spawn_scoped(scope, || one_at_a_time(&mut threads, deadline, &mut stuck))
                    .is_ok()
            });
            if !joined {
                one_at_a_time(&mut threads, deadline, &mut stuck);
            }
        } else {
            one_at_a_time(&mut threads, deadline, &mut stuck);
        }
        let rest: Vec<PoolThread> = threads.collect();
        if !rest.is_empty() {
            log::debug!(
                "shutdown: one thread at a time fell behind, {} threads go together",
                rest.len()
            );
        }
        for thread in &rest {
            thread.let_go();
        }
        for thread in rest {
            thread.join_by(deadline, &mut stuck);
        }
        stuck
    }
}

/// From this many threads, the pool lets them go one at a time from a thread of its
/// own. The thread that stops the runtime has just woken every worker to deliver its
/// `Shutdown`; letting threads go right after, it took 5-6 ms per 64 for the first 2,000
/// or so, against 2.1-2.9 ms from a fresh thread, and 2.2-2.6 ms when it first slept
/// for a second (the scheduler's memory of its wake-ups fades; the system is idle
/// meanwhile). W7's joins went from 0.50-0.56 s to 0.35-0.41 s; the extra thread costs
/// one creation.
const FRESH_JOINER_FROM: usize = 256;

/// Lets `threads` go one at a time, each joined before the next, while that keeps
/// pace (see [`Pace`]); returns with the rest still in `threads` if it falls behind.
fn one_at_a_time(
    threads: &mut std::vec::IntoIter<PoolThread>,
    deadline: Instant,
    stuck: &mut Vec<Pid>,
) {
    let mut pace = Pace::new();
    for thread in threads.by_ref() {
        thread.let_go();
        thread.join_by(deadline, stuck);
        if !pace.keeps_up() {
            return;
        }
    }
}

/// Claims one idle thread, if there is one.
fn claim(idle: &AtomicUsize) -> bool {
    idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

/// How long a thread that just finished a worker, or a spawner waiting for `init`,
/// spins before it parks. Waking a parked thread costs 12-14 µs on the VMs we measure
/// on; spawns come in bursts (a supervisor restarting children, a pool filling up), and
/// a short spin lets the next hand-off skip that wake. Bounded, so an idle runtime
/// burns no CPU.
pub(crate) const HANDOFF_SPIN: Duration = Duration::from_micros(30);

/// How long a worker that has handled its messages, or a caller waiting for a reply,
/// spins before it parks: back-to-back calls then find each other awake, as raw
/// threads on a channel do, instead of paying a wake-up each way. Short, so an idle
/// worker parks at once for practical purposes.
pub(crate) const MESSAGE_SPIN: Duration = Duration::from_micros(10);

/// Waits up to `spin` for a value without parking, yielding the core between rounds of
/// tries (at most [`SPIN_YIELDS`] times, see [`spin_until`]); `Err` tells the caller
/// to block.
pub(crate) fn spin_recv<T>(receiver: &Receiver<T>, spin: Duration) -> Result<T, TryRecvError> {
    spin_with(spin, Some(SPIN_YIELDS), || try_take(receiver)).unwrap_or(Err(TryRecvError::Empty))
}

/// [`spin_recv`] for the whole of `spin`, however often it yields: for a hand-off
/// (a pool thread waiting for its next job, a spawner for `init`), whose other side is
/// not a thread this one has just woken onto its core, and for a reply from another
/// node, whose window the user set (`NodeBuilder::reply_spin`). [`HANDOFF_SPIN`]'s
/// 30 µs exist for spawns in bursts; capped at 16 yields, the pool's spin ended
/// sooner, and W3's spawn + exit cycle measured 29-45 µs against 23-24 µs uncapped
/// (a loaded machine, the same run).
pub(crate) fn spin_recv_whole<T>(
    receiver: &Receiver<T>,
    spin: Duration,
) -> Result<T, TryRecvError> {
    spin_with(spin, None, || try_take(receiver)).unwrap_or(Err(TryRecvError::Empty))
}

fn try_take<T>(receiver: &Receiver<T>) -> Option<Result<T, TryRecvError>> {
    match receiver.try_recv() {
        Err(TryRecvError::Empty) => None,
        other => Some(other),
    }
}

/// Tries `take` for up to `spin` without parking, yielding the core between rounds of
/// tries; `None` tells the caller to block.
///
/// The rounds start short (16 tries, doubling up to 64) and the spin yields at most
/// [`SPIN_YIELDS`] times. A thread usually wakes the thread it then waits for onto its
/// own core (callee and caller shared one in over 99% of W1i's calls, measured), which
/// runs only when the spinner yields; and under the EEVDF scheduler each `sched_yield`
/// moves the yielder's deadline back, so a spinner that has yielded many times gets its
/// core back only after the other thread has yielded as often. Long rounds and
/// unbounded yields left a caller 4.3 µs behind a reply it was spinning for; a raw
/// parked caller sees one 3.3 µs after it is sent.
pub(crate) fn spin_until<T>(spin: Duration, take: impl FnMut() -> Option<T>) -> Option<T> {
    spin_with(spin, Some(SPIN_YIELDS), take)
}

/// [`spin_until`] for the whole of `spin`, however often it yields (as
/// [`spin_recv_whole`]).
pub(crate) fn spin_until_whole<T>(spin: Duration, take: impl FnMut() -> Option<T>) -> Option<T> {
    spin_with(spin, None, take)
}

/// The most yields of one spin (see [`spin_until`]).
const SPIN_YIELDS: u32 = 16;

fn spin_with<T>(
    spin: Duration,
    max_yields: Option<u32>,
    mut take: impl FnMut() -> Option<T>,
) -> Option<T> {
    let started = Instant::now();
    let mut tries = 16;
    let mut yields = 0;
    loop {
        for _ in 0..tries {
            match take() {
                None => std::hint::spin_loop(),
                found => return found,
            }
        }
        if Some(yields) == max_yields || started.elapsed() >= spin {
            return None;
        }
        // Spin politely: on a machine with few cores the thread this one waits for (or
        // one that a kill or an exit just woke) may need this core; a pure spin held it
        // for the whole window and doubled kill -> DOWN and restart latencies (W4, W6).
        std::thread::yield_now();
        yields += 1;
        tries = (tries * 2).min(64);
    }
}

/// The loop of a reusable thread: wait for the next job, leave when idle too long or
/// when shutdown has begun.
fn serve(
    queue: &Receiver<Job>,
    idle: &AtomicUsize,
    idle_timeout: Duration,
    closing: &AtomicBool,
    slot: &ThreadSlot,
) {
    loop {
        if closing.load(Ordering::Acquire) {
            return;
        }
        idle.fetch_add(1, Ordering::AcqRel);
        if let Ok(job) = spin_recv_whole(queue, HANDOFF_SPIN) {
            job(slot);
            continue;
        }
        let job = loop {
            match queue.recv_timeout(idle_timeout) {
                Ok(job) => break job,
                // Leave only if no spawn has claimed this idle slot meanwhile; if one
                // has, its job is on the way.
                Err(RecvTimeoutError::Timeout) if claim(idle) => return,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        job(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace_begun(ago: Duration, in_batch: u32) -> Pace {
        Pace {
            batch_started: Instant::now().checked_sub(ago).unwrap(),
            in_batch,
        }
    }

    #[test]
    fn a_batch_is_judged_only_once_it_is_whole() {
        // Long past the batch's allowance, but 62 of 64: not judged yet.
        let mut pace = pace_begun(Duration::from_secs(1), Pace::BATCH - 2);
        assert!(pace.keeps_up());
    }

    #[test]
    fn a_whole_batch_over_its_allowance_falls_behind() {
        let mut pace = pace_begun(Pace::PER_THREAD * (Pace::BATCH + 1), Pace::BATCH - 1);
        assert!(!pace.keeps_up());
    }

    #[test]
    fn a_whole_batch_within_its_allowance_keeps_up_and_starts_the_next() {
        let mut pace = pace_begun(Duration::ZERO, Pace::BATCH - 1);
        assert!(pace.keeps_up());
        assert_eq!(pace.in_batch, 0);
    }

    /// Threads let go at shutdown: `count` parked pool threads are all joined, one at
    /// a time or (if that falls behind) the rest together, and none is reported stuck.
    fn closing_joins_every_parked_thread(count: usize) {
        let pool = Pool::new(64 * 1024, true, Duration::from_secs(30));
        let (started, starts) = crossbeam_channel::unbounded();
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        for _ in 0..count {
            let started = started.clone();
            let released = released.clone();
            // Each job holds its thread until all have started: `count` threads.
            pool.execute(Box::new(move |_slot: &ThreadSlot| {
                started.send(()).unwrap();
                let _ = released.recv();
            }))
            .map_err(|(_, error)| error)
            .unwrap();
        }
        for _ in 0..count {
            starts.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        drop(release);
        let slots: Vec<Arc<ThreadSlot>> = pool
            .threads
            .lock()
            .iter()
            .map(|thread| thread.slot.clone())
            .collect();
        assert_eq!(slots.len(), count);
        let stuck = pool.close_and_join(Instant::now() + Duration::from_secs(30));
        assert!(stuck.is_empty());
        // Each thread's closure held its slot: only ours is left once it has ended.
        for slot in &slots {
            assert!(slot.may_leave.load(Ordering::Acquire));
            assert_eq!(Arc::strong_count(slot), 1);
        }
    }

    #[test]
    fn closing_joins_every_parked_thread_from_the_closing_thread() {
        closing_joins_every_parked_thread(FRESH_JOINER_FROM - 1);
    }

    #[test]
    fn closing_joins_every_parked_thread_from_a_fresh_joiner() {
        closing_joins_every_parked_thread(FRESH_JOINER_FROM + 44);
    }
}
