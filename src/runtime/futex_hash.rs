//! Keeping the kernel's futex hash table as large as the pool.
//!
//! Every parked thread waits on a futex, and the kernel finds a futex's waiters by
//! hashing its address into a table of buckets; a wake-up walks its bucket. Since Linux
//! 6.16 a process gets a table of its own, sized when it creates threads at four
//! buckets per online CPU (at least 16), whatever the number of threads: 16 buckets on
//! the 2-vCPU machines we measure on. With 10,000 idle workers each bucket then holds
//! some 600 waiters, and every wake-up in the process pays for the walk. Measured there
//! beside 10,000 idle workers: a call to an idle worker took 90-100 µs instead of
//! 12-16 µs, for raw threads as much as for ours, and exiting 10,000 threads one at a
//! time took 0.67-0.80 s instead of 0.42 s.
//!
//! So the pool enlarges the table as its threads grow
//! (`prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS)`): from 256 threads, whenever the
//! runtimes' threads exceed a quarter of the buckets, to 64 buckets per thread (rounded
//! up to a power of two, at most [`MAX_BUCKETS`], 64 bytes of kernel memory each): at
//! 256 threads to 16,384 buckets, at 4,097 to 65,536. Each resize blocks the spawn that
//! asks for it for 17-55 ms here (the kernel lets every user of the old table finish
//! first, however few the waiters: 25 ms at 32 threads), so there are only two; below
//! 256 threads a bucket holds at most 16 waiters, a walk of a microsecond or two. It
//! only ever grows the table, and leaves alone a process that uses the global table
//! (slots set to 0, which the kernel makes final) or a kernel without private tables.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// The most buckets the pool asks for: 4 MiB of kernel memory, asked for at 4,097
/// threads; a quarter of it is still more threads than the default 65,530 memory
/// mappings allow a process.
const MAX_BUCKETS: usize = 1 << 16;

/// The process's pool threads, over every runtime (the table is per process).
static POOL_THREADS: AtomicUsize = AtomicUsize::new(0);

/// The thread count at which the table is looked at next; `usize::MAX` once the table
/// is left alone for good.
static NEXT_LOOK: AtomicUsize = AtomicUsize::new(FIRST_LOOK);

/// Below this many threads the kernel's own table is ample.
const FIRST_LOOK: usize = 256;

/// Serialises the read-then-resize of the table between runtimes.
static RESIZING: Mutex<()> = Mutex::new(());

/// Counts one pool thread for as long as it lives (until dropped), and enlarges the
/// table when the count calls for it.
pub(crate) struct CountedThread(());

impl CountedThread {
    pub(crate) fn new() -> CountedThread {
        let threads = POOL_THREADS.fetch_add(1, Ordering::Relaxed) + 1;
        if threads >= NEXT_LOOK.load(Ordering::Relaxed) {
            grow_for(threads);
        }
        CountedThread(())
    }
}

impl Drop for CountedThread {
    fn drop(&mut self) {
        POOL_THREADS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the table should become for `threads`, given its current `buckets`: `None`
/// while it is large enough.
fn wanted_buckets(threads: usize, buckets: usize) -> Option<usize> {
    if threads < FIRST_LOOK || threads.saturating_mul(4) <= buckets {
        return None;
    }
    let wanted = threads
        .checked_next_power_of_two()
        .and_then(|threads| threads.checked_mul(64))
        .map_or(MAX_BUCKETS, |buckets| buckets.min(MAX_BUCKETS));
    (wanted > buckets).then_some(wanted)
}

fn grow_for(threads: usize) {
    let _resizing = RESIZING.lock();
    if threads < NEXT_LOOK.load(Ordering::Relaxed) {
        return;
    }
    let Some(buckets) = table::buckets() else {
        log::debug!("futex hash: the kernel has no private table, nothing to size");
        NEXT_LOOK.store(usize::MAX, Ordering::Relaxed);
        return;
    };
    if buckets == 0 {
        // The global table: chosen for this process, and final.
        NEXT_LOOK.store(usize::MAX, Ordering::Relaxed);
        return;
    }
    let Some(wanted) = wanted_buckets(threads, buckets) else {
        NEXT_LOOK.store(next_look(buckets), Ordering::Relaxed);
        return;
    };
    let started = std::time::Instant::now();
    match table::resize(wanted) {
        Ok(()) => {
            log::debug!(
                "futex hash: {buckets} -> {wanted} buckets for {threads} threads in {:?}",
                started.elapsed()
            );
            NEXT_LOOK.store(next_look(wanted), Ordering::Relaxed);
        }
        Err(error) => {
            log::warn!("futex hash: could not grow it to {wanted} buckets: {error}");
            NEXT_LOOK.store(usize::MAX, Ordering::Relaxed);
        }
    }
}

/// The thread count past which a table of `buckets` is grown.
fn next_look(buckets: usize) -> usize {
    if buckets >= MAX_BUCKETS {
        usize::MAX
    } else {
        (buckets / 4 + 1).max(FIRST_LOOK)
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod table {
    use std::ffi::{c_int, c_ulong};

    // From linux/prctl.h (6.16).
    const PR_FUTEX_HASH: c_int = 78;
    const PR_FUTEX_HASH_SET_SLOTS: c_ulong = 1;
    const PR_FUTEX_HASH_GET_SLOTS: c_ulong = 2;

    // The C library std links against on Linux (glibc or musl) has `prctl`: no crate
    // is needed for one declaration.
    unsafe extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }

    /// The buckets of the process's table (0: the global table), or `None` if the
    /// kernel has no per-process tables.
    pub(super) fn buckets() -> Option<usize> {
        usize::try_from(futex_hash(PR_FUTEX_HASH_GET_SLOTS, 0)).ok()
    }

    pub(super) fn resize(buckets: usize) -> std::io::Result<()> {
        let buckets = c_ulong::try_from(buckets).map_err(std::io::Error::other)?;
        match futex_hash(PR_FUTEX_HASH_SET_SLOTS, buckets) {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    fn futex_hash(operation: c_ulong, slots: c_ulong) -> c_int {
        let unused: c_ulong = 0;
        // SAFETY: PR_FUTEX_HASH takes integers only (no pointers), each passed as the
        // `unsigned long` the kernel reads: it reads or sets the size of this process's
        // futex table. A kernel without it fails the call with EINVAL.
        unsafe { prctl(PR_FUTEX_HASH, operation, slots, unused, unused) }
    }
}

#[cfg(not(target_os = "linux"))]
mod table {
    pub(super) fn buckets() -> Option<usize> {
        None
    }

    pub(super) fn resize(_buckets: usize) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_table_is_kept_below_two_hundred_fifty_six_threads() {
        assert_eq!(wanted_buckets(255, 16), None);
        assert_eq!(wanted_buckets(0, 0), None);
    }

    #[test]
    fn a_table_grows_to_sixty_four_buckets_a_thread_when_threads_pass_a_quarter() {
        assert_eq!(wanted_buckets(256, 16), Some(16384));
        assert_eq!(wanted_buckets(256, 64), Some(16384));
        assert_eq!(wanted_buckets(1024, 4096), None);
        assert_eq!(wanted_buckets(1025, 4096), Some(MAX_BUCKETS));
        assert_eq!(wanted_buckets(4096, 16384), None);
        assert_eq!(wanted_buckets(4097, 16384), Some(MAX_BUCKETS));
        assert_eq!(wanted_buckets(usize::MAX, 16384), Some(MAX_BUCKETS));
        assert_eq!(wanted_buckets(usize::MAX, MAX_BUCKETS), None);
    }

    #[test]
    fn a_table_someone_made_larger_is_left_alone() {
        assert_eq!(wanted_buckets(1000, 1 << 20), None);
    }

    #[test]
    fn the_next_look_comes_when_threads_pass_a_quarter_of_the_buckets() {
        assert_eq!(next_look(16), FIRST_LOOK);
        assert_eq!(next_look(4096), 1025);
        assert_eq!(next_look(16384), 4097);
        assert_eq!(next_look(MAX_BUCKETS), usize::MAX);
    }

    /// On a kernel with per-process tables, 260 pool threads leave one of at least
    /// 16,384 buckets behind (a table only grows, so other tests cannot shrink it).
    #[cfg(target_os = "linux")]
    #[test]
    fn two_hundred_sixty_counted_threads_grow_a_private_table() {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let threads: Vec<_> = (0..260)
            .map(|_| {
                let stopped = stopped.clone();
                let counted = CountedThread::new();
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let _counted = counted;
                        let _ = stopped.recv();
                    })
                    .unwrap()
            })
            .collect();
        match table::buckets() {
            None => log::info!("no per-process futex tables on this kernel"),
            Some(0) => log::info!("this process uses the global futex table"),
            Some(buckets) => assert!(buckets >= 16384, "{buckets} buckets"),
        }
        drop(stop);
        for thread in threads {
            thread.join().unwrap();
        }
    }
}
