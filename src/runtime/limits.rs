//! The scale ceiling: how many workers a runtime may run, and which limit stopped a
//! spawn.
//!
//! A thread per worker has a ceiling that BEAM's processes do not. Every Rust std
//! thread takes four memory mappings (its stack, the stack's guard page, the signal
//! stack and its guard), so the kernel's `vm.max_map_count` (65,530 by default) allows
//! about 16,000 threads per OS process; `kernel.threads-max`, `kernel.pid_max` and the
//! per-user process limit (`ulimit -u`, `RLIMIT_NPROC`) bound them too. When the OS
//! refuses a thread, a spawn fails with [`Error::SystemLimit`](crate::Error::SystemLimit)
//! saying which limit was reached (read from `/proc` at that moment), and nothing is
//! left half-started: no process, no name, no link. The runtime's own
//! [`max_workers`](crate::RuntimeBuilder::max_workers) setting turns the ceiling into a
//! limit of the application's choosing, checked before any thread is asked for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A limit that stopped a spawn; carried by [`Error::SystemLimit`](crate::Error::SystemLimit).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SystemLimit {
    /// The runtime already runs [`max_workers`](crate::RuntimeBuilder::max_workers)
    /// workers (counted until each worker's thread is free again).
    #[error("the runtime's max_workers limit of {limit} workers is reached")]
    MaxWorkers {
        /// The setting.
        limit: usize,
    },
    /// The process's memory mappings are at `vm.max_map_count` (four per thread).
    #[error(
        "the OS refused a thread: {mappings} memory mappings of vm.max_map_count {max} are in use \
         (four per thread); raise vm.max_map_count"
    )]
    MapCount {
        /// Mappings of this process when the thread was refused.
        mappings: usize,
        /// `/proc/sys/vm/max_map_count`.
        max: usize,
    },
    /// The machine's threads are at `kernel.threads-max` or `kernel.pid_max`.
    #[error(
        "the OS refused a thread: {threads} threads of this process, kernel.threads-max {threads_max}, \
         kernel.pid_max {pid_max}; raise them"
    )]
    KernelThreads {
        /// Threads of this process when the thread was refused.
        threads: usize,
        /// `/proc/sys/kernel/threads-max`.
        threads_max: usize,
        /// `/proc/sys/kernel/pid_max`.
        pid_max: usize,
    },
    /// The OS refused a thread for a reason `/proc` does not show: most often the
    /// per-user process limit (`ulimit -u`), or memory.
    #[error(
        "the OS refused a thread ({os_error}); check ulimit -u (max user processes) and memory"
    )]
    OsThreads {
        /// The OS's error, rendered.
        os_error: String,
    },
}

/// Says which limit made the OS refuse a thread, from what `/proc` shows now.
pub(crate) fn diagnose_thread_failure(error: &std::io::Error) -> SystemLimit {
    let mappings = line_count("/proc/self/maps");
    let max_map_count = read_number("/proc/sys/vm/max_map_count");
    if let (Some(mappings), Some(max)) = (mappings, max_map_count) {
        // A new thread needs four more mappings.
        if mappings.saturating_add(4) > max {
            return SystemLimit::MapCount { mappings, max };
        }
    }
    let threads = std::fs::read_dir("/proc/self/task").map(|dir| dir.count());
    let threads_max = read_number("/proc/sys/kernel/threads-max");
    let pid_max = read_number("/proc/sys/kernel/pid_max");
    if let (Ok(threads), Some(threads_max), Some(pid_max)) = (threads, threads_max, pid_max)
        && threads.saturating_add(1) >= threads_max.min(pid_max)
    {
        return SystemLimit::KernelThreads {
            threads,
            threads_max,
            pid_max,
        };
    }
    SystemLimit::OsThreads {
        os_error: error.to_string(),
    }
}

fn line_count(path: &str) -> Option<usize> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.lines().count())
}

fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Counts the workers of a runtime against its `max_workers` setting.
pub(crate) struct WorkerSlots {
    limit: usize,
    used: Arc<AtomicUsize>,
}

impl WorkerSlots {
    pub(crate) fn new(limit: usize) -> WorkerSlots {
        WorkerSlots {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a slot for a new worker, or says the limit is reached. Concurrent spawns
    /// cannot overshoot: the count only grows below the limit.
    pub(crate) fn acquire(&self) -> Result<WorkerSlot, SystemLimit> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .map(|_| WorkerSlot {
                used: self.used.clone(),
            })
            .map_err(|_| SystemLimit::MaxWorkers { limit: self.limit })
    }

    /// The `max_workers` setting (`usize::MAX` when unlimited).
    #[cfg_attr(not(feature = "dist"), allow(dead_code))]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Workers holding a slot now.
    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One worker's place under `max_workers`, given back when dropped: when the worker's
/// code has returned and its thread is free, or when its start was abandoned.
pub(crate) struct WorkerSlot {
    used: Arc<AtomicUsize>,
}

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_limit_and_come_back_when_dropped() {
        let slots = WorkerSlots::new(2);
        let first = slots.acquire().unwrap();
        let _second = slots.acquire().unwrap();
        assert_eq!(
            slots.acquire().err(),
            Some(SystemLimit::MaxWorkers { limit: 2 })
        );
        drop(first);
        assert_eq!(slots.in_use(), 1);
        assert!(slots.acquire().is_ok());
    }

    #[test]
    fn a_refused_thread_is_diagnosed_without_panicking() {
        let error = std::io::Error::from_raw_os_error(11);
        // On a machine far from its limits this is the catch-all; it must name the OS error.
        match diagnose_thread_failure(&error) {
            SystemLimit::OsThreads { os_error } => assert!(os_error.contains("11"), "{os_error}"),
            other => panic!("unexpected diagnosis on an idle machine: {other:?}"),
        }
    }
}
